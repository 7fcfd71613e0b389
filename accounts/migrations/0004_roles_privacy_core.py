from django.db import migrations

from accounts.roles import roles_sync_lenient


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_alter_auditevent_action_dailyusage_requestlog"),
        ("dsr", "0001_initial"),
    ]

    operations = [migrations.RunPython(roles_sync_lenient, migrations.RunPython.noop)]
