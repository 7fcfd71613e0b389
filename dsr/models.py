"""Models of the dsr app (filled by its own issue)."""
