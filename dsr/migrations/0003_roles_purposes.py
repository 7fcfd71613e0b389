from django.db import migrations

from accounts.roles import roles_sync_lenient
from consent.defaults import processing_purposes_sync


def forwards(apps, schema_editor):
    processing_purposes_sync(apps)
    roles_sync_lenient(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("dsr", "0002_tickets"),
        ("consent", "0003_suppression"),
        ("accounts", "0007_dsr_audit_actions"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
