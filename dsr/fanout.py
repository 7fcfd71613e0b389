"""The dsr app's fan-out kinds (common/fanout.py imports this module in workers)."""

from dsr.services import breach_notify  # noqa: F401  registers "dsr.breach"
