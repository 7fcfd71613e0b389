"""Admin: policy."""
