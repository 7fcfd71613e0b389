"""The consent app's admin, one module per area."""

from consent.admin import ledger, marketing, policy, register, suppression  # noqa: F401
