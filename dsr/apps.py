from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class DsrConfig(AppConfig):
    name = "dsr"
    verbose_name = "Privacy and data-subject rights"

    def ready(self) -> None:
        from dsr import checks  # noqa: F401 - registers the system check

        # Every app's privacy.py declares its personal data, like admin.py for the admin.
        autodiscover_modules("privacy")
