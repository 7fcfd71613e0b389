from django.db import migrations

from accounts.roles import roles_sync_lenient


class Migration(migrations.Migration):
    """Support, retoucher and privacy-officer permissions on orders and image statistics."""

    dependencies = [
        ("orders", "0001_initial"),
        ("images", "0001_initial"),
        ("accounts", "0005_alter_auditevent_action"),
    ]

    operations = [migrations.RunPython(roles_sync_lenient, migrations.RunPython.noop)]
