from django.db import migrations

from accounts.roles import roles_sync_lenient


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("axes", "__latest__"),
    ]

    operations = [migrations.RunPython(roles_sync_lenient, migrations.RunPython.noop)]
