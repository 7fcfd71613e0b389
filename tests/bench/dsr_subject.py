"""The heavy data subject shared by the DSR benchmarks (export: dsr_export.py, erasure:
dsr_erasure.py), and the S3 (moto server) bucket they run on.

``seed_heavy_subject(quick=False, storage=...)`` creates, in the bench database and on
*storage*:

* one customer with 500 orders (2 of them guest orders placed with the customer's
  verified email address, which belong to the subject too), each with 2 photos and 2
  results stored as ~200 KB objects (2,000 files), an order event, a payment and an
  invoice per order, 20,000 request-log lines with the user's id, 300 consent events,
  50 notifications, 3 earlier (closed) DSR tickets with their history;
* one OTHER customer with a little of everything (orders, files, log lines, consent
  events, an invoice, a notification, a ticket) who must never appear in the subject's
  export nor lose anything in the subject's erasure.

Quick mode makes a tenth of it (same shapes). The objects are random bytes framed as a
JPEG (SOI ... EOI): incompressible, like real photos, and real objects on the bucket,
uploaded concurrently so seeding takes seconds, not minutes.

``bench_s3(versioned=...)`` makes a fresh bucket on the moto server started by
scripts/testenv.py (TEST_S3_ENDPOINT_URL) and returns the STORAGES setting that makes
it the default storage; ``use_storages(storages)`` applies it for a block.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

FILE_BYTES = 200_000
UPLOAD_THREADS = 8


@dataclass(frozen=True)
class Shape:
    orders: int
    guest_orders: int
    photos_per_order: int
    results_per_order: int
    request_log: int
    consent_events: int
    notifications: int
    earlier_tickets: int
    file_bytes: int = FILE_BYTES


FULL = Shape(
    orders=500,
    guest_orders=2,
    photos_per_order=2,
    results_per_order=2,
    request_log=20_000,
    consent_events=300,
    notifications=50,
    earlier_tickets=3,
)
QUICK = Shape(
    orders=50,
    guest_orders=2,
    photos_per_order=2,
    results_per_order=2,
    request_log=2_000,
    consent_events=30,
    notifications=10,
    earlier_tickets=2,
)
OTHER = Shape(
    orders=5,
    guest_orders=1,
    photos_per_order=1,
    results_per_order=1,
    request_log=100,
    consent_events=10,
    notifications=3,
    earlier_tickets=1,
    file_bytes=20_000,
)


@dataclass(frozen=True)
class SubjectInfo:
    """What was seeded (ids, keys, counts), for the benchmarks' checks."""

    user_id: int
    email: str
    other_user_id: int
    other_email: str
    # Storage names (as the FileFields hold them) of the subject's and the other's files.
    file_keys: tuple[str, ...]
    other_file_keys: tuple[str, ...]
    # Rows of the subject per registry label (the other customer's are not counted).
    counts: dict[str, int]
    file_bytes: int
    seconds: float
    shape: Shape = field(default=FULL)


# --- S3 (moto server) ----------------------------------------------------------------------
@dataclass(frozen=True)
class BenchS3:
    endpoint: str
    bucket: str
    client: Any
    storages: dict[str, Any]


def bench_s3(*, versioned: bool = False) -> BenchS3:
    """A fresh bucket on the moto server of scripts/testenv.py, and STORAGES using it."""
    import boto3
    from django.conf import settings

    endpoint = os.environ.get("TEST_S3_ENDPOINT_URL", "")
    if not endpoint:
        raise RuntimeError("no S3 endpoint: run the benchmarks with `make bench`")
    bucket = f"pp-bench-{uuid.uuid4().hex[:10]}"
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
    storages = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": bucket,
                "endpoint_url": endpoint,
                "region_name": "us-east-1",
                "access_key": "test",
                "secret_key": "test",
                "default_acl": "private",
                "signature_version": "s3v4",
                "addressing_style": "path",
                "file_overwrite": True,
            },
        },
    }
    return BenchS3(endpoint=endpoint, bucket=bucket, client=client, storages=storages)


@contextmanager
def use_storages(storages: dict[str, Any]) -> Iterator[None]:
    """Make *storages* the STORAGES setting (default_storage follows) for the block."""
    from django.test import override_settings

    with override_settings(STORAGES=storages):
        yield


def bucket_keys(client: Any, bucket: str, prefix: str = "") -> list[str]:
    """Every current key under *prefix* (a listing, as a check would do it)."""
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [obj["Key"] for obj in page.get("Contents", [])]
    return keys


def drop_bucket(client: Any, bucket: str) -> None:
    """Empty (every version) and delete a bench bucket: moto keeps objects in memory."""
    pages = client.get_paginator("list_object_versions").paginate(Bucket=bucket)
    for page in pages:
        doomed = [
            {"Key": v["Key"], "VersionId": v["VersionId"]}
            for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
        ]
        for start in range(0, len(doomed), 1000):
            client.delete_objects(
                Bucket=bucket, Delete={"Objects": doomed[start : start + 1000], "Quiet": True}
            )
    client.delete_bucket(Bucket=bucket)


# --- Seeding -------------------------------------------------------------------------------
def _jpeg_like(size: int) -> bytes:
    return b"\xff\xd8\xff\xe0" + os.urandom(max(0, size - 6)) + b"\xff\xd9"


def _upload_all(storage: Any, names: list[str], size: int) -> int:
    """Store one random object per name (concurrently on S3); returns the bytes stored."""
    bucket = getattr(storage, "bucket", None)
    if bucket is None:
        from django.core.files.base import ContentFile

        for name in names:
            storage.save(name, ContentFile(_jpeg_like(size)))
        return size * len(names)
    client = bucket.meta.client
    location = getattr(storage, "location", "") or ""

    def put(name: str) -> None:
        key = f"{location.rstrip('/')}/{name}" if location else name
        client.put_object(
            Bucket=bucket.name, Key=key, Body=_jpeg_like(size), ContentType="image/jpeg"
        )

    with ThreadPoolExecutor(max_workers=UPLOAD_THREADS) as pool:
        list(pool.map(put, names))
    return size * len(names)


def _user(email: str, name: str) -> Any:
    from django.utils import timezone

    from accounts.models import User

    now = timezone.now()
    user = User(
        email=email,
        full_name=name,
        country="IE",
        street_address="1 Bench Street",
        city="Dublin",
        email_verified_at=now,
        age_confirmed_at=now,
    )
    user.set_unusable_password()
    user.save()
    return user


def _orders(user: Any, shape: Shape, tag: str) -> tuple[list[Any], dict[str, int], list[str]]:
    """Orders with photos, results, events, payments and invoices; returns files to store."""
    from django.utils import timezone

    from images.models import Photo, PhotoStatus, Result, ResultKind, ScanVerdict
    from orders.models import Invoice, Order, OrderEvent, OrderKind, OrderStatus, Payment

    now = timezone.now()
    orders = []
    for n in range(shape.orders):
        guest = n < shape.guest_orders
        orders.append(
            Order(
                kind=OrderKind.PASSPORT if guest else OrderKind.RETOUCH,
                status=OrderStatus.DELIVERED,
                customer=None if guest else user,
                guest_email=user.email if guest else "",
                instructions=f"Please brighten photo set {n} ({tag}).",
                amount_minor=900 * shape.photos_per_order,
                currency="EUR",
                submitted_at=now - timedelta(days=20, minutes=n),
                paid_at=now - timedelta(days=20, minutes=n),
                delivered_at=now - timedelta(days=2, minutes=n),
            )
        )
    Order.objects.bulk_create(orders, batch_size=500)
    photos, events, payments, invoices = [], [], [], []
    for n, order in enumerate(orders):
        for p in range(shape.photos_per_order):
            photos.append(
                Photo(
                    order=order,
                    position=p,
                    instructions=f"photo {p} of order {n}",
                    file=f"o/{order.storage_token}/p/{p}.jpg",
                    status=PhotoStatus.READY,
                    scan=ScanVerdict.CLEAN,
                    size_bytes=shape.file_bytes,
                    width=1200,
                    height=1600,
                )
            )
        events.append(
            OrderEvent(
                order=order,
                from_status=OrderStatus.IN_PROGRESS,
                to_status=OrderStatus.DELIVERED,
                actor_role="staff",
                comment="Delivered.",
            )
        )
        payments.append(
            Payment(
                order=order,
                gateway="test",
                reference=f"pay-{tag}-{uuid.uuid4().hex[:16]}",
                amount_minor=order.amount_minor,
                currency="EUR",
                status="succeeded",
            )
        )
        invoices.append(
            Invoice(
                series=f"B{tag[:4].upper()}",
                number=n + 1,
                order=order,
                customer=order.customer,
                buyer_name=user.full_name,
                buyer_email=user.email,
                buyer_address="1 Bench Street\nDublin",
                buyer_country="IE",
                description=f"Retouching, {shape.photos_per_order} photos",
                total_minor=order.amount_minor,
                currency="EUR",
                payment_reference=f"pay-{tag}-{n}",
            )
        )
    Photo.objects.bulk_create(photos, batch_size=1000)
    OrderEvent.objects.bulk_create(events, batch_size=1000)
    Payment.objects.bulk_create(payments, batch_size=1000)
    Invoice.objects.bulk_create(invoices, batch_size=1000)
    results = []
    by_order: dict[int, list[Any]] = {}
    for photo in photos:
        by_order.setdefault(photo.order_id, []).append(photo)
    for order in orders:
        for r in range(shape.results_per_order):
            photo = by_order[order.pk][r % len(by_order[order.pk])]
            results.append(
                Result(
                    order=order,
                    photo=photo,
                    kind=ResultKind.AUTOMATED if r % 2 else ResultKind.RETOUCHED,
                    round=r // 2,
                    file=f"o/{order.storage_token}/r/{r}-{photo.pk}.jpg",
                    size_bytes=shape.file_bytes,
                    width=1200,
                    height=1600,
                    operations=["exposure"],
                )
            )
    Result.objects.bulk_create(results, batch_size=1000)
    names = [p.file.name for p in photos] + [r.file.name for r in results]
    counts = {
        "orders.Order": len(orders),
        "images.Photo": len(photos),
        "images.Result": len(results),
        "orders.OrderEvent": len(events),
        "orders.Payment": len(payments),
        "orders.Invoice": len(invoices),
    }
    return orders, counts, names


def _request_log(user: Any, n: int) -> None:
    from django.utils import timezone

    from accounts.models import RequestLog

    now = timezone.now()
    paths = ["/", "/orders/", "/accounts/profile/", "/privacy/", "/orders/new/retouch/"]
    rows = [
        RequestLog(
            request_id=uuid.uuid4(),
            time=now - timedelta(seconds=60 * k),
            ip_address=f"198.51.100.{k % 250 + 1}",
            method="POST" if k % 10 == 0 else "GET",
            path=paths[k % len(paths)],
            user_id=user.pk,
            status=200,
            bytes_sent=1000 + k,
            browser="Firefox",
            os="Linux",
            referrer="",
            language="en-IE",
        )
        for k in range(n)
    ]
    RequestLog.objects.bulk_create(rows, batch_size=5000)


def _consent(user: Any, n: int) -> None:
    from django.utils import timezone

    from consent.models import ConsentEvent, ConsentMethod, ConsentPurpose, ConsentState
    from consent.services.ledger import consent_text_get

    purpose = ConsentPurpose.objects.get(key=ConsentPurpose.MARKETING_EMAIL)
    wording = consent_text_get(text=purpose.wording)
    now = timezone.now()
    events = [
        ConsentEvent(
            created_at=now - timedelta(hours=n - k),
            subject=f"u:{user.pk}",
            user=user,
            email=user.email,
            purpose=purpose,
            granted=k % 2 == 0,
            wording=wording,
            method=ConsentMethod.FORM,
            ip_address="198.51.100.7",
            user_agent="Mozilla/5.0 (bench)",
        )
        for k in range(n)
    ]
    ConsentEvent.objects.bulk_create(events, batch_size=1000)
    last = events[-1]
    ConsentState.objects.create(
        subject=f"u:{user.pk}",
        user=user,
        email=user.email,
        purpose=purpose,
        granted=last.granted,
        event=last,
    )


def _notifications(user: Any, n: int) -> None:
    from accounts.models import Notification

    Notification.objects.bulk_create(
        [Notification(user=user, title=f"Order update {k}", body="Ready.") for k in range(n)]
    )


def _tickets(user: Any, n: int) -> int:
    """Earlier, closed access requests (with their history): part of what is exported."""
    from django.utils import timezone

    from dsr.models import Channel, RequestType, Ticket, TicketEvent, TicketStatus

    now = timezone.now()
    events = 0
    for k in range(n):
        received = now - timedelta(days=200 + 40 * k)
        ticket = Ticket.objects.create(
            reference=f"DSR-B{uuid.uuid4().hex[:7].upper()}",
            type=RequestType.ACCESS,
            status=TicketStatus.CLOSED,
            channel=Channel.ACCOUNT,
            user=user,
            email=user.email,
            received_at=received,
            calendar="IE",
            first_due=(received + timedelta(days=30)).date(),
            fulfilled_at=received + timedelta(days=3),
            closed_at=received + timedelta(days=10),
            outcome_note="Your archive was ready.",
        )
        TicketEvent.objects.bulk_create(
            [
                TicketEvent(ticket=ticket, kind="created", to_status="received"),
                TicketEvent(ticket=ticket, kind="transition", to_status="closed"),
            ]
        )
        events += 2
    return events


def _seed_one(user: Any, shape: Shape, tag: str, storage: Any) -> tuple[dict[str, int], list[str]]:
    _, counts, names = _orders(user, shape, tag)
    stored = _upload_all(storage, names, shape.file_bytes)
    _request_log(user, shape.request_log)
    _consent(user, shape.consent_events)
    _notifications(user, shape.notifications)
    ticket_events = _tickets(user, shape.earlier_tickets)
    counts.update(
        {
            "accounts.User": 1,
            "accounts.RequestLog": shape.request_log,
            "consent.ConsentEvent": shape.consent_events,
            "consent.ConsentState": 1,
            "accounts.Notification": shape.notifications,
            "dsr.Ticket": shape.earlier_tickets,
            "dsr.TicketEvent": ticket_events,
            "_bytes": stored,
        }
    )
    return counts, names


def seed_heavy_subject(*, quick: bool, storage: Any, tag: str = "") -> SubjectInfo:
    """Create the heavy subject and the other customer (see the module docstring).

    *storage* is where the files go (django Storage, e.g. ``default_storage`` inside
    ``use_storages(bench_s3().storages)``); *tag* makes emails unique when a run seeds
    more than one subject.
    """
    started = time.monotonic()
    tag = tag or uuid.uuid4().hex[:6]
    shape = QUICK if quick else FULL
    user = _user(f"heavy-{tag}@bench.example.com", "Heavy Subject")
    other = _user(f"other-{tag}@bench.example.com", "Other Customer")
    counts, names = _seed_one(user, shape, f"h{tag}", storage)
    _other_counts, other_names = _seed_one(other, OTHER, f"o{tag}", storage)
    stored = counts.pop("_bytes")
    return SubjectInfo(
        user_id=user.pk,
        email=user.email,
        other_user_id=other.pk,
        other_email=other.email,
        file_keys=tuple(names),
        other_file_keys=tuple(other_names),
        counts=counts,
        file_bytes=stored,
        seconds=round(time.monotonic() - started, 1),
        shape=shape,
    )
