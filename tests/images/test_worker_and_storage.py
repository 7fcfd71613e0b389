"""Image work happens in workers (IMG-6), survives storage faults, runs once, and every
stored version goes on schedule (IMG-4)."""

from __future__ import annotations

import io
import time
from datetime import timedelta

import pytest
from celery.app.task import Context
from celery.contrib.testing.worker import start_worker
from celery.exceptions import Retry
from celery.signals import task_postrun
from django.core.files.storage import FileSystemStorage, default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connections
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from PIL import Image, ImageFile

from config.celery import app as celery_app
from dsr.services.retention import retention_run_all
from images import tasks
from images.models import Photo, PhotoStatus, Result, ResultKind
from images.services import processing
from orders.models import Order
from tests.conftest import login_client, need_service, s3_bucket
from tests.images.helpers import media_files, new_draft_order
from tests.photos import selfie_jpeg


def upload(client: Client, order: Order, count: int = 1, side: int = 400, files=None):
    if files is None:
        files = [
            SimpleUploadedFile(f"p{i}.jpg", selfie_jpeg(side), "image/jpeg") for i in range(count)
        ]
    return client.post(reverse("orders:photos_upload", args=[order.reference]), {"photos": files})


def jpeg_bytes(size: tuple[int, int] = (120, 90), colour=(200, 100, 50)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG")
    return out.getvalue()


# --- (a) A real worker, not the request, decodes the pixels -------------------------------


def _close_worker_db_connections(**_: object) -> None:
    connections.close_all()


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_upload_is_processed_by_a_real_worker_not_the_request_IMG_6(
    customer, settings, monkeypatch
) -> None:
    need_service("REDIS_URL", "Redis")
    celery_app.conf.task_always_eager = False
    assert celery_app.conf.broker_url.startswith(("redis://", "rediss://", "redis+socket://"))
    client = login_client(customer, verified=True)
    order = new_draft_order(client)

    decoded: list[str] = []

    def no_decoding(original):
        def load(self, *args, **kwargs):
            decoded.append(type(self).__name__)
            raise AssertionError("the web request decoded pixels")

        return load

    files = [SimpleUploadedFile(f"p{i}.jpg", selfie_jpeg(1200), "image/jpeg") for i in range(2)]
    # No worker is running yet, so anything that decodes now is the web request.
    with monkeypatch.context() as patch:
        patch.setattr(ImageFile.ImageFile, "load", no_decoding(ImageFile.ImageFile.load))
        patch.setattr(Image.Image, "load", no_decoding(Image.Image.load))
        started = time.monotonic()
        response = upload(client, order, files=files)
        elapsed = time.monotonic() - started
    assert response.status_code == 302, response.content[:800]
    assert decoded == []
    photos = list(Photo.objects.filter(order=order))
    assert len(photos) == 2
    for photo in photos:
        assert photo.status == PhotoStatus.PROCESSING  # the request returned before the work
        assert photo.upload and not photo.file
    assert elapsed < 30

    task_postrun.connect(_close_worker_db_connections, weak=False)
    try:
        with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                statuses = set(Photo.objects.filter(order=order).values_list("status", flat=True))
                if statuses == {PhotoStatus.READY}:
                    break
                time.sleep(0.2)
    finally:
        task_postrun.disconnect(_close_worker_db_connections)

    for photo in Photo.objects.filter(order=order):
        assert photo.status == PhotoStatus.READY, (photo.status, photo.reject_reason)
        assert photo.file and not photo.upload
        assert default_storage.exists(photo.file.name)
        with default_storage.open(photo.file.name) as fh:
            img = Image.open(io.BytesIO(fh.read()))
            assert img.format == "JPEG" and not img.getexif()
    assert not [f for f in media_files() if f.startswith("q/")]  # quarantine emptied


# --- (b) On a versioned S3 bucket, retention removes every version -------------------------


def _versions(client, bucket: str, prefix: str) -> tuple[list[dict], list[dict]]:
    reply = client.list_object_versions(Bucket=bucket, Prefix=prefix)
    return reply.get("Versions", []), reply.get("DeleteMarkers", [])


@pytest.mark.django_db
def test_s3_versions_and_delete_markers_are_all_gone_after_retention_IMG_4(
    customer, settings, django_capture_on_commit_callbacks
) -> None:
    s3, bucket = s3_bucket(settings, versioned=True)
    client = login_client(customer, verified=True)
    order = new_draft_order(client)
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(client, order, count=2)
    assert response.status_code == 302
    photos = list(Photo.objects.filter(order=order))
    assert [p.status for p in photos] == [PhotoStatus.READY] * 2
    prefix = f"q/{order.storage_token}/"
    # The quarantined raw uploads are already gone, every version (no delete markers left).
    assert _versions(s3, bucket, prefix) == ([], [])

    # An automated result, written twice (a retried task): two versions of one key on S3.
    photo = photos[0]
    for _ in range(2):
        processing.result_store(
            order=order, photo=photo, kind=ResultKind.AUTOMATED, data=jpeg_bytes(),
            width=120, height=90,
        )  # fmt: skip
    versions, _ = _versions(s3, bucket, f"o/{order.storage_token}/")
    assert len(versions) >= 3  # two originals, and the result (in two or more versions)

    now = timezone.now()
    retention_run_all(now=now + timedelta(hours=73), force=True)
    assert not Photo.objects.filter(order=order).exists()
    assert not Result.objects.filter(order=order).exists()
    for prefix in (f"q/{order.storage_token}/", f"o/{order.storage_token}/", ""):
        versions, markers = _versions(s3, bucket, prefix)
        assert versions == [] and markers == [], (prefix, versions, markers)


# --- (c) A transient storage fault: retried, claim released ---------------------------------


@pytest.fixture
def flaky_open(monkeypatch):
    """FileSystemStorage._open raises OSError for the first `fail_times` calls."""
    state = {"fail_times": 1, "calls": 0}
    real_open = FileSystemStorage._open

    def _open(self, name, mode="rb"):
        state["calls"] += 1
        if state["calls"] <= state["fail_times"]:
            raise OSError("storage is having a bad day")
        return real_open(self, name, mode)

    monkeypatch.setattr(FileSystemStorage, "_open", _open)
    return state


@pytest.fixture
def processing_photo(customer) -> Photo:
    """A photo uploaded through the view, its processing not yet run (on_commit withheld)."""
    client = login_client(customer, verified=True)
    order = new_draft_order(client)
    assert upload(client, order).status_code == 302
    photo = Photo.objects.get(order=order)
    assert photo.status == PhotoStatus.PROCESSING and photo.claimed_at is None
    return photo


def run_as_worker_delivery(photo_id: int, *, retries: int) -> str:
    """What a worker does with a delivery: push its request, then run the task body."""
    task = tasks.photo_process
    task.request_stack.push(
        Context(
            id=f"delivery-{retries}",
            args=[photo_id],
            kwargs={},
            retries=retries,
            called_directly=False,
            is_eager=False,
        )
    )
    try:
        return task.run(photo_id)
    finally:
        task.pop_request()


@pytest.mark.django_db
def test_transient_storage_fault_retries_and_releases_the_claim_IMG_6(
    processing_photo, flaky_open, monkeypatch
) -> None:
    photo = processing_photo
    scheduled: list[tuple] = []

    def record(*args, **options) -> None:
        scheduled.append((args, options))

    # Record the retry instead of sending it: we play the worker's next delivery by hand.
    monkeypatch.setattr(tasks.photo_process, "apply_async", record)
    with pytest.raises(Retry):
        run_as_worker_delivery(photo.pk, retries=0)
    assert flaky_open["calls"] == 1
    assert len(scheduled) == 1
    (args, options) = scheduled[0]
    assert list(args[0]) == [photo.pk] and options.get("countdown", 0) > 0
    photo.refresh_from_db()
    assert photo.status == PhotoStatus.PROCESSING
    assert photo.claimed_at is None  # released, so the retry can take it
    assert photo.attempts == 1
    assert photo.upload and default_storage.exists(photo.upload.name)  # raw upload kept

    assert tasks.photo_process(photo.pk) == "ready"
    photo.refresh_from_db()
    assert photo.status == PhotoStatus.READY and photo.claimed_at is None
    assert photo.attempts == 2
    assert photo.file and not photo.upload


@pytest.mark.django_db
def test_transient_fault_in_eager_mode_raises_retry_then_succeeds_IMG_6(
    processing_photo, flaky_open
) -> None:
    """Eager (with propagation) surfaces the Retry; the next delivery finds the claim free."""
    with pytest.raises(Retry):
        tasks.photo_process.delay(processing_photo.pk)
    processing_photo.refresh_from_db()
    assert processing_photo.status == PhotoStatus.PROCESSING
    assert processing_photo.claimed_at is None
    assert tasks.photo_process.delay(processing_photo.pk).get() == "ready"
    processing_photo.refresh_from_db()
    assert processing_photo.status == PhotoStatus.READY
    assert processing_photo.attempts == 2 and flaky_open["calls"] == 2


@pytest.mark.django_db
def test_storage_fault_on_the_last_retry_fails_the_photo_visibly_IMG_6(
    processing_photo, flaky_open
) -> None:
    flaky_open["fail_times"] = 10_000
    with pytest.raises(OSError, match="bad day"):
        run_as_worker_delivery(processing_photo.pk, retries=tasks.MAX_RETRIES)
    processing_photo.refresh_from_db()
    assert processing_photo.status == PhotoStatus.REJECTED
    assert "storage fault" in processing_photo.reject_reason
    assert processing_photo.claimed_at is None
    order = processing_photo.order
    order.refresh_from_db()
    assert "storage fault" in order.failure_message
    # Shown to the customer on the order page.
    page = login_client(order.customer, verified=True).get(
        reverse("orders:detail", args=[order.reference])
    )
    assert "storage fault" in page.content.decode()


# --- (d) Idempotency -----------------------------------------------------------------------


@pytest.mark.django_db
def test_processing_twice_gives_one_clean_file_IMG_6(processing_photo) -> None:
    photo = processing_photo
    token = photo.order.storage_token
    assert processing.photo_process(photo_id=photo.pk) == "ready"
    photo.refresh_from_db()
    first = photo.file.name
    assert processing.photo_process(photo_id=photo.pk) == "skipped"
    photo.refresh_from_db()
    assert photo.file.name == first and photo.status == PhotoStatus.READY
    assert photo.attempts == 1
    assert media_files() == [first] and first.startswith(f"o/{token}/p/")


@pytest.mark.django_db
def test_result_store_twice_keeps_one_row_and_one_file_IMG_6(processing_photo) -> None:
    photo = processing_photo
    processing.photo_process(photo_id=photo.pk)
    photo.refresh_from_db()
    order = photo.order
    first = processing.result_store(
        order=order, photo=photo, kind=ResultKind.AUTOMATED, data=jpeg_bytes(),
        width=120, height=90, operations=["brightness"],
    )  # fmt: skip
    second = processing.result_store(
        order=order, photo=photo, kind=ResultKind.AUTOMATED,
        data=jpeg_bytes(colour=(10, 20, 30)), width=120, height=90, operations=["contrast"],
    )  # fmt: skip
    assert first.pk == second.pk
    assert Result.objects.filter(order=order).count() == 1
    result = Result.objects.get(order=order)
    assert result.file.name == first.file.name and result.operations == ["contrast"]
    results = [f for f in media_files() if f.startswith(f"o/{order.storage_token}/r/")]
    assert results == [result.file.name]
    with default_storage.open(result.file.name) as fh:  # the second write won
        pixel = Image.open(io.BytesIO(fh.read())).getpixel((5, 5))
    assert isinstance(pixel, tuple) and pixel[0] < 60
