"""IMG-5: every upload is scanned by clamd, and the scan fails closed.

A scanner that is configured but down, slow or answering nonsense leaves the upload in
quarantine ("pending_scan", never served); the sweep scans it once clamd is back and then
either processes it or deletes it as malware (audited). With no scanner configured at all
uploads are marked "not_scanned", and `check --deploy` warns about it.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from django.core import checks
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from accounts.models import AuditAction, AuditEvent
from images import checks as image_checks
from images import tasks
from images.models import Photo, PhotoStatus, ScanVerdict
from images.scanning import ScannerUnavailable, ScanOutcome, scan_bytes
from images.services.processing import photos_rescan_pending
from orders.models import Order
from tests.conftest import login_client, need_service
from tests.images.helpers import media_files
from tests.photos import selfie_jpeg

pytestmark = pytest.mark.django_db

EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-" + b"TEST-FILE!$H+H*"


@pytest.fixture
def clamd() -> str:
    return need_service("TEST_CLAMD_ADDRESS", "clamd")


@pytest.fixture
def closed_port() -> str:
    """A local address nothing listens on (connections are refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"127.0.0.1:{port}"


class FakeScanner:
    """A local TCP server that accepts clamd connections and misbehaves in one way."""

    def __init__(self, behaviour: str) -> None:
        self.behaviour = behaviour
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.connections = 0
        self.stopping = threading.Event()
        self.open: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            self.open.append(conn)
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(0.2)
        if self.behaviour == "hangs_up":
            conn.close()
            return
        received = b""
        while not self.stopping.is_set():
            try:
                part = conn.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not part:
                return
            received += part
            if self.behaviour == "garbage" and received.endswith(b"\0\0\0\0"):
                conn.sendall(b"stream: INSTREAM size limit exceeded. ERROR\0")
                conn.close()
                return
            # "silent": read everything, never answer.

    def stop(self) -> None:
        self.stopping.set()
        self.sock.close()
        for conn in self.open:
            conn.close()
        self.thread.join(timeout=5)


@pytest.fixture
def fake_scanner(request) -> Iterator[FakeScanner]:
    server = FakeScanner(request.param)
    yield server
    server.stop()


@pytest.fixture
def customer_web(customer) -> Client:
    return login_client(customer, verified=True)


def new_draft_order(client: Client) -> Order:
    response = client.post(reverse("orders:retouch_new"), {"instructions": "Brighten, please"})
    assert response.status_code == 302, response.content[:500]
    return Order.objects.latest("id")


def upload_one(client: Client, data: bytes, name: str = "me.jpg") -> tuple[Order, object]:
    order = new_draft_order(client)
    response = client.post(
        reverse("orders:photos_upload", args=[order.reference]),
        {"photos": [SimpleUploadedFile(name, data, "image/jpeg")]},
    )
    return order, response


# --- clamd up ---------------------------------------------------------------------------------


def test_scan_bytes_talks_to_clamd_IMG_5(clamd) -> None:
    assert scan_bytes(selfie_jpeg(300), address=clamd).outcome is ScanOutcome.CLEAN
    report = scan_bytes(EICAR, address=clamd)
    assert report.outcome is ScanOutcome.INFECTED and "eicar" in report.signature.lower()
    appended = scan_bytes(selfie_jpeg(300) + EICAR, address=clamd)
    assert appended.outcome is ScanOutcome.INFECTED


def test_clean_upload_is_scanned_clean_and_processed_IMG_5(
    clamd, settings, customer_web, django_capture_on_commit_callbacks
) -> None:
    settings.CLAMD_ADDRESS = clamd
    with django_capture_on_commit_callbacks(execute=True):
        _, response = upload_one(customer_web, selfie_jpeg(400))
    assert response.status_code == 302
    photo = Photo.objects.get()
    assert photo.scan == ScanVerdict.CLEAN == "clean"
    assert photo.status == PhotoStatus.READY


# --- clamd down, then back --------------------------------------------------------------------


def test_scanner_down_quarantines_then_rescan_processes_IMG_5(
    clamd, closed_port, settings, customer_web, django_capture_on_commit_callbacks
) -> None:
    settings.CLAMD_ADDRESS = closed_port
    with django_capture_on_commit_callbacks(execute=True):
        _, response = upload_one(customer_web, selfie_jpeg(400))
    assert response.status_code == 302  # accepted, to be scanned later
    photo = Photo.objects.get()
    assert photo.status == PhotoStatus.PENDING_SCAN == "pending_scan"
    assert photo.scan == ScanVerdict.PENDING
    assert not photo.file and photo.upload and default_storage.exists(photo.upload.name)
    # The quarantined raw upload is not served, not even to its owner.
    assert customer_web.get(reverse("images:photo", args=[photo.pk])).status_code == 404

    # Still down: the sweep leaves it waiting.
    assert photos_rescan_pending()["waiting"] == 1
    photo.refresh_from_db()
    assert photo.status == PhotoStatus.PENDING_SCAN

    settings.CLAMD_ADDRESS = clamd
    with django_capture_on_commit_callbacks(execute=True):
        counts = tasks.photos_sweep.delay().get()
    assert counts["clean"] == 1 and counts["infected"] == 0
    photo.refresh_from_db()
    assert photo.scan == ScanVerdict.CLEAN
    assert photo.status == PhotoStatus.READY
    assert photo.file and default_storage.exists(photo.file.name)
    assert not photo.upload
    assert customer_web.get(reverse("images:photo", args=[photo.pk])).status_code == 302


def test_pending_upload_found_infected_on_rescan_is_deleted_and_audited_IMG_5(
    clamd, closed_port, settings, customer_web, customer, django_capture_on_commit_callbacks
) -> None:
    # While clamd is down the header check alone cannot tell: the JPEG is valid.
    settings.CLAMD_ADDRESS = closed_port
    with django_capture_on_commit_callbacks(execute=True):
        order, response = upload_one(customer_web, selfie_jpeg(400) + EICAR)
    assert response.status_code == 302
    photo = Photo.objects.get()
    assert photo.status == PhotoStatus.PENDING_SCAN
    quarantined = photo.upload.name
    assert default_storage.exists(quarantined)

    settings.CLAMD_ADDRESS = clamd
    with django_capture_on_commit_callbacks(execute=True):
        counts = photos_rescan_pending()
    assert counts == {"clean": 0, "infected": 1, "waiting": 0}
    photo.refresh_from_db()
    assert photo.status == PhotoStatus.REJECTED
    assert "malware" in photo.reject_reason
    assert not photo.upload and not photo.file
    assert not default_storage.exists(quarantined)
    event = AuditEvent.objects.get(action=AuditAction.MALWARE_REJECTED)
    assert event.subject == customer
    assert event.detail["order"] == order.reference and event.detail["late"] is True
    assert "eicar" in event.detail["signature"].lower()
    assert customer_web.get(reverse("images:photo", args=[photo.pk])).status_code == 404
    # Nothing left to scan, and a second sweep does not touch it again.
    assert photos_rescan_pending() == {"clean": 0, "infected": 0, "waiting": 0}


# --- Slow or broken scanners: fail closed -------------------------------------------------


@pytest.mark.parametrize("fake_scanner", ["silent", "garbage", "hangs_up"], indirect=True)
def test_slow_or_broken_scanner_fails_closed_IMG_5(
    fake_scanner, settings, customer_web, django_capture_on_commit_callbacks
) -> None:
    settings.CLAMD_ADDRESS = fake_scanner.address
    settings.CLAMD_TIMEOUT = 0.5
    started = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True):
        _, response = upload_one(customer_web, selfie_jpeg(400))
    assert time.monotonic() - started < 10  # the request is not held by the scanner
    assert response.status_code == 302
    assert fake_scanner.connections >= 1
    photo = Photo.objects.get()
    assert photo.status == PhotoStatus.PENDING_SCAN and photo.scan == ScanVerdict.PENDING
    assert not photo.file
    with pytest.raises(ScannerUnavailable):
        scan_bytes(b"x" * 10, address=fake_scanner.address)


# --- No scanner configured --------------------------------------------------------------------


def test_no_scanner_configured_marks_not_scanned_IMG_5(
    settings, customer_web, django_capture_on_commit_callbacks
) -> None:
    settings.CLAMD_ADDRESS = ""
    with django_capture_on_commit_callbacks(execute=True):
        _, response = upload_one(customer_web, selfie_jpeg(400))
    assert response.status_code == 302
    photo = Photo.objects.get()
    assert photo.scan == ScanVerdict.NOT_SCANNED == "not_scanned"
    assert photo.status == PhotoStatus.READY


def test_deploy_check_warns_without_a_scanner_IMG_5(settings) -> None:
    settings.CLAMD_ADDRESS = ""
    (warning,) = image_checks.scanner_configured()
    assert isinstance(warning, checks.Warning) and warning.id == "images.W001"
    found = checks.run_checks(include_deployment_checks=True, tags=[checks.Tags.security])
    assert "images.W001" in {m.id for m in found}
    # Not a deploy-less check: plain `check` stays quiet about it.
    assert "images.W001" not in {m.id for m in checks.run_checks(tags=[checks.Tags.security])}

    settings.CLAMD_ADDRESS = "127.0.0.1:3310"
    assert image_checks.scanner_configured() == []
    found = checks.run_checks(include_deployment_checks=True, tags=[checks.Tags.security])
    assert "images.W001" not in {m.id for m in found}


@pytest.mark.django_db
def test_retoucher_results_are_refused_while_the_scanner_is_down_IMG_5(
    closed_port, settings, customer, retoucher
) -> None:
    """Results have no pending-scan state, so a scanner that is down refuses them (fail closed)."""
    import io

    from images.models import Result
    from images.services.intake import UploadRefused
    from images.services.results import results_upload
    from orders.models import OrderKind, OrderStatus

    order = Order.objects.create(
        kind=OrderKind.RETOUCH,
        customer=customer,
        retoucher=retoucher,
        status=OrderStatus.IN_PROGRESS,
    )
    settings.CLAMD_ADDRESS = closed_port
    with pytest.raises(UploadRefused, match="scanner is not answering"):
        results_upload(
            actor=retoucher, order=order, files=[(io.BytesIO(selfie_jpeg(600)), "r.jpg")]
        )
    assert not Result.objects.exists()
    assert media_files() == []
