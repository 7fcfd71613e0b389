"""The dsr app's REST API (/api/v1/)."""
