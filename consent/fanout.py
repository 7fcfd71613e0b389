"""The consent app's fan-out kinds (common/fanout.py imports this module in workers)."""

from consent.services import (
    campaigns,  # noqa: F401  registers "consent.campaign"
    policy,  # noqa: F401  registers "consent.policy_notice"
)
