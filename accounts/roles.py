"""Staff roles: groups with explicit permissions. Migrations call roles_sync."""

from __future__ import annotations

from typing import Any

SUPPORT = "Support"
RETOUCHER = "Retoucher"
PRIVACY_OFFICER = "Privacy officer"
MARKETING = "Marketing"

ROLE_PERMISSIONS: dict[str, list[str]] = {
    SUPPORT: [
        "accounts.view_user",
        "accounts.change_user",
        "accounts.view_notification",
        "accounts.add_notification",
        # A customer who lost a device asks support to cut off its API tokens.
        "accounts.view_apitoken",
        "accounts.delete_apitoken",
        "axes.view_accessattempt",
        "axes.delete_accessattempt",
        "orders.view_order",
        "orders.view_all_orders",
        "orders.assign_retoucher",
        "orders.view_payment",
        "orders.view_invoice",
        "dsr.view_ticket",
        "dsr.add_ticket",
        "dsr.change_ticket",
        "dsr.process_ticket",
        "dsr.view_exportarchive",
        "dsr.view_erasurestep",
        "dsr.view_processingrestriction",
    ],
    # Only what is assigned to them: the admin filters orders to the retoucher's own.
    RETOUCHER: ["orders.view_order", "orders.work_on_order"],
    PRIVACY_OFFICER: [
        "accounts.view_user",
        "accounts.change_user",
        "accounts.view_notification",
        "accounts.view_auditevent",
        "axes.view_accessattempt",
        "axes.view_accesslog",
        "axes.view_accessfailurelog",
        "axes.delete_accessattempt",
        "accounts.view_requestlog",
        "accounts.export_requestlog",
        "accounts.view_dailyusage",
        "dsr.view_retentionrun",
        "dsr.view_personaldatamap",
        "orders.view_order",
        "orders.view_all_orders",
        "orders.view_invoice",
        "images.view_imagestat",
        "images.view_portfolioitem",
        "consent.view_consentpurpose",
        "consent.add_consentpurpose",
        "consent.change_consentpurpose",
        "consent.view_consentevent",
        "consent.record_consent",
        "consent.view_consentstate",
        "consent.view_subscriber",
        "consent.view_campaign",
        "consent.view_campaignsend",
        "consent.view_audience",
        "consent.view_policyversion",
        "consent.add_policyversion",
        "consent.change_policyversion",
        "consent.publish_policyversion",
        "consent.view_processingpurpose",
        "consent.change_processingpurpose",
        "consent.view_recipient",
        "consent.add_recipient",
        "consent.change_recipient",
        "consent.view_supervisoryauthority",
        "consent.add_supervisoryauthority",
        "consent.change_supervisoryauthority",
        "consent.view_disclosure",
        "consent.add_disclosure",
        "consent.view_marketingsuppression",
        "dsr.view_ticket",
        "dsr.add_ticket",
        "dsr.change_ticket",
        "dsr.process_ticket",
        "dsr.approve_ticket",
        "dsr.report_child",
        "dsr.view_exportarchive",
        "dsr.view_erasurestep",
        "dsr.view_processingrestriction",
        "dsr.change_processingrestriction",
        "dsr.view_incident",
        "dsr.add_incident",
        "dsr.change_incident",
        "dsr.confirm_incident",
        "dsr.view_incidentrecipient",
        "dsr.view_breachnotice",
    ],
    # Newsletters and the public portfolio; never a customer's private images or orders.
    MARKETING: [
        "consent.view_campaign",
        "consent.add_campaign",
        "consent.change_campaign",
        "consent.send_campaign",
        "consent.view_campaignsend",
        "consent.view_audience",
        "consent.add_audience",
        "consent.change_audience",
        "images.view_portfolioitem",
        "images.change_portfolioitem",
        "images.publish_portfolio",
    ],
}


def roles_sync(apps: Any, schema_editor: Any = None, *, strict: bool = True) -> None:
    """Create the groups and set exactly the listed permissions (idempotent).

    Migrations call roles_sync_lenient: at an old migration's point in history, models
    listed here may not exist yet, and a later migration sets them. A test checks that
    after all migrations every role has exactly the permissions listed here.
    """
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        # create_permissions skips apps without a models module; historical app configs
        # (migrations) have none, so lend one and put back whatever was there: on the
        # live registry, None would make later post_migrate signals skip every app.
        saved = getattr(app_config, "models_module", None)
        app_config.models_module = saved or True
        try:
            create_permissions(app_config, apps=apps, verbosity=0)
        finally:
            app_config.models_module = saved
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
                if strict:
                    raise RuntimeError(f"Permission {dotted} does not exist")
                continue
            wanted.append(perm)
        group.permissions.set(wanted)


def roles_sync_lenient(apps: Any, schema_editor: Any = None) -> None:
    roles_sync(apps, schema_editor, strict=False)
