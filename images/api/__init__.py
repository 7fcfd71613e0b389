"""The images app's REST API (/api/v1/)."""
