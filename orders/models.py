"""Models of the orders app (filled by its own issue)."""
