from __future__ import annotations

from functools import lru_cache

import factory
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.utils import timezone

from accounts.models import Notification, User

PASSWORD = "correct-horse-battery-9"


@lru_cache(maxsize=1)
def _password_hash() -> str:
    # One Argon2 hash reused by every factory user: hashing is deliberately slow.
    return make_password(PASSWORD)


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"person{n}@example.com")
    full_name = factory.Faker("name")
    country = "IE"
    email_verified_at = factory.LazyFunction(timezone.now)
    age_confirmed_at = factory.LazyFunction(timezone.now)
    password = factory.LazyFunction(_password_hash)

    @factory.post_generation
    def role(self, create: bool, extracted: str | None, **kwargs: object) -> None:
        if create and extracted:
            self.is_staff = True
            self.save(update_fields=["is_staff"])
            self.groups.add(Group.objects.get(name=extracted))


class NotificationFactory(factory.django.DjangoModelFactory[Notification]):
    class Meta:
        model = Notification

    user = factory.SubFactory(UserFactory)
    title = factory.Sequence(lambda n: f"Notice {n}")
    body = "Something happened."
