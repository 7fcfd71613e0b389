"""Models of the images app (filled by its own issue)."""
