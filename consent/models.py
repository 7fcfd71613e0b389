"""Models of the consent app (consent ledger, policy versions: filled by its own issue)."""
