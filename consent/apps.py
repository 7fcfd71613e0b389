from typing import Any

from django.apps import AppConfig, apps
from django.db.models.signals import post_migrate


def _sync_builtins(sender: AppConfig, **kwargs: Any) -> None:
    # After every migrate (and test-database flush): the built-in consent purposes and
    # every registry purpose key exist, while rows staff edited stay as they are.
    from consent.defaults import consent_purposes_sync, processing_purposes_sync

    consent_purposes_sync(apps)
    processing_purposes_sync(apps)


class ConsentConfig(AppConfig):
    name = "consent"
    verbose_name = "Consent and transparency"

    def ready(self) -> None:
        from consent import checks  # noqa: F401  (registers the deploy checks)

        post_migrate.connect(_sync_builtins, sender=self, dispatch_uid="consent_builtins")
