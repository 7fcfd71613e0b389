from django.db import migrations

from accounts.roles import roles_sync_lenient
from consent.defaults import consent_purposes_sync, processing_purposes_sync


def forwards(apps, schema_editor):
    consent_purposes_sync(apps)
    processing_purposes_sync(apps)
    roles_sync_lenient(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("consent", "0001_initial"),
        ("images", "0002_portfolioitem"),
        ("accounts", "0005_alter_auditevent_action"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
