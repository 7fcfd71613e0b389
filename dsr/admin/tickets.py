"""Data-subject requests in the admin: the support staff's and privacy officers' workbench."""

from __future__ import annotations
