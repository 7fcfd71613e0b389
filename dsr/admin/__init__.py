"""The dsr admin: retention reports and the registry page, and data-subject requests."""

from dsr.admin import breach, retention, tickets  # noqa: F401 - registers the admins
from dsr.admin.retention import registry_rows

__all__ = ["registry_rows"]
