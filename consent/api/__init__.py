"""The consent app's REST API (/api/v1/)."""
