"""Idempotent demo accounts for `make run`.

Passwords are generated at first run and written to var/demo-credentials.txt (mode 600);
an existing account is never changed, so running it again is harmless.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from accounts import roles
from accounts.models import User
from accounts.services import notification_create

DEMO_USERS = [
    # email, full name, role group, superuser
    ("privacy@demo.test", "Pat Privacy (privacy officer)", roles.PRIVACY_OFFICER, True),
    ("support@demo.test", "Sam Support", roles.SUPPORT, False),
    ("retoucher@demo.test", "Robin Retoucher", roles.RETOUCHER, False),
    ("customer@demo.test", "Casey Customer", None, False),
]


class Command(BaseCommand):
    help = "Create the demo staff and customer accounts if missing."

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(settings.VAR_DIR) / "demo-credentials.txt"
        created: list[str] = []
        with transaction.atomic():
            for email, name, role, superuser in DEMO_USERS:
                if User.objects.filter(email=email).exists():
                    continue
                password = secrets.token_urlsafe(12)
                user = User.objects.create_user(
                    email,
                    password,
                    full_name=name,
                    country="IE",
                    is_staff=role is not None,
                    is_superuser=superuser,
                    email_verified_at=timezone.now(),
                    age_confirmed_at=timezone.now(),
                )
                if role:
                    user.groups.add(Group.objects.get(name=role))
                else:
                    notification_create(
                        user=user,
                        title="Welcome to the demo",
                        body="This is an in-site notification. Mark it as read when you like.",
                    )
                created.append(f"{email}\t{password}\t{role or 'customer'}")
        if created:
            path.parent.mkdir(parents=True, exist_ok=True)
            new_file = not path.exists()
            with path.open("a") as fh:
                if new_file:
                    fh.write(
                        "# Demo accounts (email, password, role). Staff must turn on 2FA\n"
                        "# at first login to the admin.\n"
                    )
                fh.write("\n".join(created) + "\n")
            path.chmod(0o600)
        self.stdout.write(f"Demo accounts: {len(created)} created; credentials in {path}")
