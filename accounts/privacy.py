"""What the accounts app holds about people, and why (ACC-6).

Every personal field of the app is listed here with its data category and purpose.
The privacy-core registry (issue: privacy core) builds on these declarations; a test
checks that every concrete field of User is either listed here or is account plumbing.
"""

from __future__ import annotations

# field -> (data category, purpose)
USER_FIELDS: dict[str, tuple[str, str]] = {
    "email": ("contact", "Log in, order confirmations and delivery updates"),
    "full_name": ("identity", "Address the customer and put on invoices"),
    "phone": ("contact", "Optional: reach the customer about an order"),
    "country": ("identity", "Taxes, prices and passport photo defaults"),
    "company_name": ("identity", "Optional: invoices to a business"),
    "website": ("identity", "Optional: business customers' profile"),
    "street_address": ("contact", "Optional: invoice address"),
    "city": ("contact", "Optional: invoice address"),
    "region": ("contact", "Optional: invoice address"),
    "postal_code": ("contact", "Optional: invoice address"),
    "preferred_currency": ("preferences", "Show prices in the customer's currency"),
    "vat_id": ("identity", "Optional: reverse-charge invoices for businesses"),
    "profile_image": ("image", "Optional: shown to the customer on their own pages"),
    "age_confirmed_at": ("account", "Proof that the person confirmed being 13 or older"),
    "email_verified_at": ("account", "Only verified addresses may order"),
    "pending_email": ("contact", "A new address waiting for verification"),
    "password": ("credentials", "Log in (stored only as an Argon2id hash)"),
    "last_login": ("account", "Security: show account activity"),
}

# Fields that hold no personal data about the person themselves.
USER_PLUMBING = frozenset(
    {"id", "is_active", "is_staff", "is_superuser", "created_at", "updated_at"}
)
