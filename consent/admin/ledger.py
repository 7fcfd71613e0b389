"""Admin: ledger."""
