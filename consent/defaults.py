"""Built-in consent purposes and their wording, copied into the database by migrations.

Staff may reword them in the admin; each consent records the exact wording shown then.
"""

from __future__ import annotations

from typing import Any

BUILTIN_PURPOSES: list[dict[str, Any]] = [
    {
        "key": "marketing_email",
        "name": "Newsletter by email",
        "kind": "marketing",
        "is_marketing": True,
        "per_object": False,
        "position": 1,
        "wording": "Send me your newsletter by email: news and offers about your photo "
        "services, at most a few times a month. I can unsubscribe at any time with the "
        "link at the bottom of every newsletter or on my privacy page.",
    },
    {
        "key": "analytics",
        "name": "Analytics cookies",
        "kind": "cookie",
        "is_marketing": False,
        "per_object": False,
        "position": 2,
        "wording": "Analytics: count visits and pages with first-party tools run on this "
        "site, to improve it. Nothing is shared with anyone else.",
    },
    {
        "key": "advertising",
        "name": "Advertising cookies",
        "kind": "cookie",
        "is_marketing": True,
        "per_object": False,
        "position": 3,
        "wording": "Advertising: measure whether our advertisements work and show you "
        "relevant offers.",
    },
    {
        "key": "portfolio",
        "name": "Portfolio use of one image",
        "kind": "image",
        "is_marketing": False,
        "per_object": True,
        "position": 4,
        "wording": "I allow you to show this photo, before and after editing, in the public "
        "portfolio on your website. I can withdraw this at any time: the photo is then "
        "removed from the portfolio at once and its portfolio copies are deleted.",
    },
]


def consent_purposes_sync(apps: Any, schema_editor: Any = None) -> None:
    """Create the built-in purposes that are missing; never overwrite staff's edits."""
    model = apps.get_model("consent", "ConsentPurpose")
    for spec in BUILTIN_PURPOSES:
        model.objects.get_or_create(key=spec["key"], defaults=spec)


def processing_purposes_sync(apps: Any, schema_editor: Any = None) -> None:
    """Copy the registry's purpose keys that are missing into the editable register."""
    from dsr.purposes import PURPOSES

    model = apps.get_model("consent", "ProcessingPurpose")
    for position, (key, default) in enumerate(PURPOSES.items()):
        model.objects.get_or_create(
            key=key,
            defaults={
                "name": default.name,
                "lawful_basis": default.basis,
                "legitimate_interest": default.interest,
                "position": position,
            },
        )
