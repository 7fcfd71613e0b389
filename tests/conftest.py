"""Shared fixtures: personas, logged-in clients, services started by scripts/testenv.py."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import roles
from accounts.models import User
from config.celery import app as celery_app
from tests.factories import PASSWORD, UserFactory

IN_CI = os.environ.get("CI", "").lower() == "true"


def need_service(env_var: str, what: str) -> str:
    """The address of an optional service; skip without it, but fail under CI=true."""
    value = os.environ.get(env_var, "")
    if not value:
        message = f"{what} is not available ({env_var} unset): run the suite with `make test`"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return value


@pytest.fixture(autouse=True)
def _celery_eager() -> Iterator[None]:
    """Unit tests run tasks in-process; tests marked celery_worker use a real worker."""
    old = celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = old


@pytest.fixture(autouse=True)
def _request_log_unbatched(settings) -> None:
    """Each request's log line reaches Redis at once, so tests can count them."""
    settings.REQUEST_LOG_BATCH_SIZE = 1


@pytest.fixture(autouse=True)
def _private_media(settings, tmp_path) -> None:
    if "S3Storage" not in settings.STORAGES["default"]["BACKEND"]:
        settings.STORAGES = {
            **settings.STORAGES,
            "default": {
                **settings.STORAGES["default"],
                "OPTIONS": {
                    **settings.STORAGES["default"]["OPTIONS"],
                    "location": str(tmp_path / "media"),
                },
            },
        }


@pytest.fixture
def password() -> str:
    return PASSWORD


@pytest.fixture
def customer(db) -> User:
    return UserFactory(email="casey@example.com", full_name="Casey Customer")


@pytest.fixture
def other_customer(db) -> User:
    return UserFactory(email="olive@example.com", full_name="Olive Other")


@pytest.fixture
def roles_present(db) -> None:
    """The role groups come from a data migration, which a transactional test's flush empties."""
    from django.apps import apps as django_apps
    from django.contrib.auth.models import Group

    if Group.objects.filter(name__in=list(roles.ROLE_PERMISSIONS)).count() < len(
        roles.ROLE_PERMISSIONS
    ):
        roles.roles_sync(django_apps)


@pytest.fixture
def support(db, roles_present) -> User:
    return UserFactory(email="support@example.com", role=roles.SUPPORT)


@pytest.fixture
def retoucher(db, roles_present) -> User:
    return UserFactory(email="retoucher@example.com", role=roles.RETOUCHER)


@pytest.fixture
def privacy_officer(db, roles_present) -> User:
    return UserFactory(email="privacy@example.com", role=roles.PRIVACY_OFFICER)


def login_client(user: User, *, verified: bool = False) -> Client:
    """A client logged in as *user*; verified=True also passes the second factor."""
    client = Client()
    client.force_login(user)
    if verified:
        device = TOTPDevice.objects.filter(
            user=user, confirmed=True
        ).first() or TOTPDevice.objects.create(user=user, name="test", confirmed=True)
        session = client.session
        session["otp_device_id"] = device.persistent_id
        session.save()
    return client


@pytest.fixture
def customer_client(customer: User) -> Client:
    return login_client(customer)


@pytest.fixture
def other_client(other_customer: User) -> Client:
    return login_client(other_customer)


def s3_bucket(settings, *, versioned: bool = False, **options):
    """A fresh bucket on the moto S3 server, made the default storage; returns (client, name)."""
    import uuid

    import boto3

    endpoint = need_service("TEST_S3_ENDPOINT_URL", "S3 endpoint (moto server)")
    bucket = f"pp-test-{uuid.uuid4().hex[:10]}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    client.create_bucket(Bucket=bucket)
    if versioned:
        client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": bucket,
                "endpoint_url": endpoint,
                "region_name": "us-east-1",
                "access_key": "test",
                "secret_key": "test",
                "signature_version": "s3v4",
                "addressing_style": "path",
                **options,
            },
        },
    }
    return client, bucket
