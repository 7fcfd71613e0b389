"""The accounts app's REST API (/api/v1/)."""
