"""Staff roles: groups with explicit permissions. Migrations call roles_sync."""

from __future__ import annotations

from typing import Any

SUPPORT = "Support"
RETOUCHER = "Retoucher"
PRIVACY_OFFICER = "Privacy officer"

ROLE_PERMISSIONS: dict[str, list[str]] = {
    SUPPORT: [
        "accounts.view_user",
        "accounts.change_user",
        "accounts.view_notification",
        "accounts.add_notification",
        "axes.view_accessattempt",
        "axes.delete_accessattempt",
    ],
    # Retouchers get order and image permissions from the orders/images migrations.
    RETOUCHER: [],
    PRIVACY_OFFICER: [
        "accounts.view_user",
        "accounts.change_user",
        "accounts.view_notification",
        "accounts.view_auditevent",
        "axes.view_accessattempt",
        "axes.view_accesslog",
        "axes.view_accessfailurelog",
        "axes.delete_accessattempt",
    ],
}


def roles_sync(apps: Any, schema_editor: Any = None) -> None:
    """Create the groups and set exactly the listed permissions (idempotent)."""
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    for role, perms in ROLE_PERMISSIONS.items():
        group, _ = group_model.objects.get_or_create(name=role)
        wanted = []
        for dotted in perms:
            app_label, codename = dotted.split(".")
            perm = permission_model.objects.filter(
                content_type__app_label=app_label, codename=codename
            ).first()
            if perm is None:
                raise RuntimeError(f"Permission {dotted} does not exist")
            wanted.append(perm)
        group.permissions.set(wanted)
