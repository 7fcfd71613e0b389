"""Admin: marketing."""
