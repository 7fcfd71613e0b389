"""The orders app's REST API (/api/v1/)."""
