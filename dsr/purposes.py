"""Purposes of processing and their lawful basis (GDPR Art. 6), keyed for the registry.

These are the defaults: a migration (and every later ``migrate``) copies missing keys into
the admin-editable ProcessingPurpose table, where staff may reword them; the keys stay
fixed because the registry's declarations name them (dsr.E004 checks them).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PurposeDefault:
    name: str
    basis: str  # a consent.models.LawfulBasis value
    interest: str = ""  # the legitimate interest, stated, when basis is legitimate_interest


PURPOSES: dict[str, PurposeDefault] = {
    "account": PurposeDefault("Provide the customer account and its orders", "contract"),
    "security": PurposeDefault(
        "Keep accounts and the service secure",
        "legitimate_interest",
        "Protecting customers' accounts and our service against attacks and abuse",
    ),
    "operations": PurposeDefault(
        "Run the service and investigate faults and attacks",
        "legitimate_interest",
        "Operating a reliable and secure website",
    ),
    "communication": PurposeDefault(
        "Tell account holders about their account, orders and policy changes", "contract"
    ),
    "orders": PurposeDefault("Carry out the customer's order: the edit they asked for", "contract"),
    "payments": PurposeDefault("Take payment through a payment gateway", "contract"),
    "tax": PurposeDefault(
        "Keep the invoices and records that tax law requires", "legal_obligation"
    ),
    "marketing": PurposeDefault(
        "Send our newsletter to people who asked for it, and measure the site with permission",
        "consent",
    ),
    "consent_records": PurposeDefault(
        "Keep proof of each consent given or withdrawn (GDPR Art. 7(1))", "legal_obligation"
    ),
    "portfolio": PurposeDefault(
        "Show customers' before/after images in our public portfolio, with their permission",
        "consent",
    ),
    "accountability": PurposeDefault(
        "Record every disclosure of personal data to a third party (GDPR Art. 5(2), Art. 30)",
        "legal_obligation",
    ),
    "rights": PurposeDefault(
        "Answer requests to exercise data-protection rights, and prove we did (GDPR Art. 12-22)",
        "legal_obligation",
    ),
    "breach": PurposeDefault(
        "Tell people affected by a personal-data breach, and keep the breach register "
        "(GDPR Art. 33-34)",
        "legal_obligation",
    ),
}
