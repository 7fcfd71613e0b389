"""ISO code lists, built once from pycountry / django-countries."""

from __future__ import annotations

import pycountry

CURRENCY_CHOICES: list[tuple[str, str]] = sorted(
    ((c.alpha_3, f"{c.alpha_3} - {c.name}") for c in pycountry.currencies),
    key=lambda pair: pair[0],
)
CURRENCY_CODES = frozenset(code for code, _ in CURRENCY_CHOICES)
