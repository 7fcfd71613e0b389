"""Purposes of processing and their lawful basis (GDPR Art. 6), keyed for the registry.

The consent issue moves these into admin-editable tables; the keys stay.
"""

from __future__ import annotations

PURPOSES: dict[str, tuple[str, str]] = {
    "account": ("Provide the customer account and its orders", "contract"),
    "security": (
        "Keep accounts and the service secure",
        "legitimate interest: protecting customers' accounts against attacks",
    ),
    "operations": (
        "Run the service and investigate faults and attacks",
        "legitimate interest: operating a reliable and secure website",
    ),
    "communication": ("Tell account holders about their account and orders", "contract"),
    "orders": ("Carry out the customer's order: the edit they asked for", "contract"),
    "payments": ("Take payment through a payment gateway", "contract"),
    "tax": ("Keep the invoices and records that tax law requires", "legal obligation"),
}
