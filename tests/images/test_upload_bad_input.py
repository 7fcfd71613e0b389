"""IMG-5: hostile or broken uploads are refused with a clear 400, and nothing is stored.

Every case goes through the real upload view as a logged-in customer with a draft retouch
order. A refusal must be a 400 whose page says what is wrong, with no Photo row and no
file written anywhere under the media root (and never a 500: the test client re-raises
any exception the view lets through). Valid images with hostile *names* are accepted and
stored under random keys that carry nothing of the client's name.
"""

from __future__ import annotations

import io
import json
import os
import re
import struct
import subprocess
import sys
import uuid
import zlib
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import Image

from accounts.models import AuditAction, AuditEvent
from images.models import Photo, PhotoStatus
from images.services.intake import UploadRefused, photos_add
from orders.models import Order
from tests.conftest import login_client, need_service
from tests.images.helpers import media_files, new_draft_order
from tests.photos import selfie_jpeg

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]

# The EICAR test string, in pieces so that this source file is not itself flagged.
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-" + b"TEST-FILE!$H+H*"

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# --- Hostile files, built by hand ------------------------------------------------------------


def png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def png_declaring(width: int, height: int, *, color_type: int = 0) -> bytes:
    """A tiny, well-formed PNG (correct CRCs) whose header declares *width* x *height*."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\0" * 16, 9))
        + png_chunk(b"IEND", b"")
    )


@lru_cache(maxsize=1)
def png_bomb_12000() -> bytes:
    """A real, complete RGB PNG of 12000x12000 black pixels (432 MB decoded), ~420 KB.

    Compressed row by row so that building it never holds the decoded pixels in memory.
    """
    side = 12000
    row = b"\0" * (1 + side * 3)  # filter byte "None", then RGB zeros
    deflate = zlib.compressobj(9)
    idat = b"".join(deflate.compress(row) for _ in range(side)) + deflate.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


@lru_cache(maxsize=1)
def gif_500_frames() -> bytes:
    frames = [Image.new("P", (16, 16), i % 256) for i in range(500)]
    for i, frame in enumerate(frames):
        frame.putpixel((i % 16, (i // 16) % 16), (i + 7) % 256)  # no two frames alike
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=20, loop=0)
    return out.getvalue()


@lru_cache(maxsize=1)
def apng_3_frames() -> bytes:
    """An animated PNG: a type the header check accepts, so only the frame cap stops it."""
    frames = [Image.new("RGB", (64, 64), (i * 80, 40, 200 - i * 60)) for i in range(3)]
    out = io.BytesIO()
    frames[0].save(out, "PNG", save_all=True, append_images=frames[1:], duration=100)
    return out.getvalue()


def small_png(size: tuple[int, int] = (40, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(out, "PNG")
    return out.getvalue()


def truncated_jpeg() -> bytes:
    data = selfie_jpeg(800)
    return data[: len(data) // 2]


HTML = b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>"
SVG = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    b'<script type="text/javascript">alert(document.domain)</script>'
    b'<rect width="10" height="10"/></svg>'
)
PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)
# A minimal Photoshop header: signature, version 1, 6 reserved bytes, 3 channels, 64x64,
# 8 bits, RGB; then empty colour-mode, resources and layer sections, raw image data.
PSD = (
    b"8BPS"
    + struct.pack(">H6xHIIHH", 1, 3, 64, 64, 8, 3)
    + struct.pack(">III", 0, 0, 0)
    + struct.pack(">H", 0)
    + b"\0" * (64 * 64 * 3)
)


# --- Helpers ----------------------------------------------------------------------------------


@pytest.fixture
def customer_web(customer) -> Client:
    return login_client(customer, verified=True)


@pytest.fixture
def draft(customer_web) -> Order:
    return new_draft_order(customer_web)


def upload(client: Client, order: Order, files: list[SimpleUploadedFile], note: str = ""):
    return client.post(
        reverse("orders:photos_upload", args=[order.reference]), {"photos": files, "note": note}
    )


def upload_raw(client: Client, order: Order, files: list[tuple[str, bytes]], **kwargs):
    """POST a multipart body built by hand, so file names reach the server unaltered.

    (Django's test client would apply os.path.basename to the names first.)
    """
    boundary = f"----pp-{uuid.uuid4().hex}"
    parts = []
    for name, data in files:
        head = (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="photos"; filename="{name}"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        )
        parts.append(head.encode("utf-8") + data + b"\r\n")
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="note"\r\n\r\n\r\n'.encode()
    )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return client.post(
        reverse("orders:photos_upload", args=[order.reference]),
        data=body,
        content_type=f"multipart/form-data; boundary={boundary}",
        **kwargs,
    )


def upload_error(response) -> str:
    """The text of the upload error box on the order page."""
    match = re.search(r'id="upload-error">(.*?)</div>', response.content.decode(), re.S)
    assert match, "the page shows no upload error"
    return match.group(1)


def assert_refused_and_nothing_stored(response, phrase: str) -> str:
    assert response.status_code == 400, (response.status_code, response.content[:500])
    message = upload_error(response)
    assert phrase in message, message
    assert not Photo.objects.exists()
    assert media_files() == []
    return message


# --- Bad files, one per upload -----------------------------------------------------------------

BAD_FILES: list[tuple[str, str, Callable[[], bytes], str]] = [
    # (case id, client file name, content factory, phrase the message must contain)
    ("png_declares_100000x100000", "big.png", lambda: png_declaring(100_000, 100_000),
     "too many pixels"),
    ("png_decodes_to_12000x12000", "bomb.png", png_bomb_12000, "more than 50 megapixels"),
    ("png_declares_1x80000000", "tall.png", lambda: png_declaring(1, 80_000_000),
     "pixels on a side"),
    ("gif_with_500_frames", "anim.gif", gif_500_frames, "not a JPEG, PNG or WebP image"),
    ("animated_png", "anim.png", apng_3_frames, "Animated images are not accepted"),
    ("truncated_jpeg", "half.jpg", truncated_jpeg, "truncated"),
    ("zero_bytes", "empty.jpg", lambda: b"", "is empty"),
    ("html_named_jpg", "page.jpg", lambda: HTML, "not a JPEG, PNG or WebP image"),
    ("svg_with_script", "drawing.svg", lambda: SVG, "not a JPEG, PNG or WebP image"),
    ("pdf_named_jpg", "scan.jpg", lambda: PDF, "not a JPEG, PNG or WebP image"),
    ("psd_named_jpg", "layers.jpg", lambda: PSD, "not a JPEG, PNG or WebP image"),
]  # fmt: skip


def test_hand_built_bombs_are_what_they_claim_IMG_5() -> None:
    """The test files themselves: tiny on disk, enormous when decoded."""
    tiny = png_declaring(100_000, 100_000)
    assert len(tiny) < 100
    with pytest.raises(Image.DecompressionBombError):  # Pillow's own hard limit
        Image.open(io.BytesIO(tiny))
    bomb = png_bomb_12000()
    assert 300_000 < len(bomb) < 600_000, len(bomb)
    with pytest.warns(Image.DecompressionBombWarning):
        assert Image.open(io.BytesIO(bomb)).size == (12_000, 12_000)
    # 80 MP is under Pillow's warning threshold (~89 MP): Pillow alone would decode it.
    assert Image.open(io.BytesIO(png_declaring(1, 80_000_000))).size == (1, 80_000_000)
    assert Image.open(io.BytesIO(gif_500_frames())).n_frames == 500
    assert Image.open(io.BytesIO(apng_3_frames())).n_frames == 3


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize(
    ("name", "factory", "phrase"),
    [case[1:] for case in BAD_FILES],
    ids=[case[0] for case in BAD_FILES],
)
def test_bad_file_is_refused_with_a_clear_400_and_nothing_stored_IMG_5(
    customer_web, draft, name, factory, phrase
) -> None:
    response = upload(customer_web, draft, [SimpleUploadedFile(name, factory(), "image/jpeg")])
    message = assert_refused_and_nothing_stored(response, phrase)
    assert "Traceback" not in response.content.decode()
    assert len(message) < 300


def test_a_bad_file_among_good_ones_refuses_the_whole_batch_IMG_5(customer_web, draft) -> None:
    files = [
        SimpleUploadedFile("good1.jpg", selfie_jpeg(300), "image/jpeg"),
        SimpleUploadedFile("bad.jpg", HTML, "image/jpeg"),
        SimpleUploadedFile("good2.png", small_png(), "image/png"),
    ]
    message = assert_refused_and_nothing_stored(
        upload(customer_web, draft, files), "not a JPEG, PNG or WebP image"
    )
    assert "bad.jpg" in message  # says which file


def test_file_over_the_size_cap_is_refused_IMG_5(customer_web, draft, settings) -> None:
    settings.UPLOAD_MAX_BYTES = 200_000
    data = selfie_jpeg(1200)
    assert len(data) > 200_000
    message = assert_refused_and_nothing_stored(
        upload(customer_web, draft, [SimpleUploadedFile("large.jpg", data, "image/jpeg")]),
        "is larger than",
    )
    # The limit it states must be the real one, not rounded down to "0 MB".
    assert not re.search(r"larger than 0 MB", message), message


def test_more_than_the_file_limit_is_refused_even_if_all_are_valid_IMG_5(
    customer_web, draft, settings
) -> None:
    assert settings.UPLOAD_MAX_FILES == 20
    files = [SimpleUploadedFile(f"p{i}.jpg", selfie_jpeg(200), "image/jpeg") for i in range(21)]
    message = assert_refused_and_nothing_stored(upload(customer_web, draft, files), "at most 20")
    assert "21" in message


def test_no_file_at_all_is_a_clear_400_IMG_5(customer_web, draft) -> None:
    assert_refused_and_nothing_stored(upload(customer_web, draft, []), "Choose at least one photo")


# --- Malware (needs clamd) ------------------------------------------------------------------


@pytest.fixture
def clamd(settings) -> str:
    address = need_service("TEST_CLAMD_ADDRESS", "clamd")
    settings.CLAMD_ADDRESS = address
    return address


def test_eicar_appended_to_a_jpeg_is_refused_and_audited_IMG_5(
    clamd, customer_web, draft, customer
) -> None:
    data = selfie_jpeg(400) + EICAR
    response = upload(customer_web, draft, [SimpleUploadedFile("holiday.jpg", data)])
    message = assert_refused_and_nothing_stored(response, "malware")
    assert "Nothing from this upload was stored" in message
    event = AuditEvent.objects.get(action=AuditAction.MALWARE_REJECTED)
    assert event.subject == customer and event.actor == customer
    assert event.detail["order"] == draft.reference
    assert "eicar" in event.detail["signature"].lower()


def test_eicar_alone_is_refused_and_audited_as_malware_IMG_5(
    clamd, customer_web, draft, customer
) -> None:
    """A bare malware file is refused, and the attempt is on the audit trail as malware."""
    response = upload(customer_web, draft, [SimpleUploadedFile("invoice.jpg", EICAR)])
    assert response.status_code == 400
    assert not Photo.objects.exists() and media_files() == []
    event = AuditEvent.objects.filter(action=AuditAction.MALWARE_REJECTED).first()
    assert event is not None, (
        "EICAR alone was refused as 'not an image' without being scanned: "
        f"no MALWARE_REJECTED audit event (message: {upload_error(response)!r})"
    )
    assert event.detail["order"] == draft.reference


# --- Hostile file names: the image is fine, the name must go nowhere ------------------------

HOSTILE_NAMES = {
    "dot_dot_slash": "../../../../tmp/hostileescape.jpg",
    "backslashes": "..\\..\\windows\\hostilewin.jpg",
    "nul_byte": "hostilenul\x00.php.jpg",
    "rtl_override": "hostilertl\u202egpj.exe",
    "300_characters": "hostilelong" + "x" * 285 + ".jpg",
    "html_in_name": "<img src=x onerror=alert(1)>hostilehtml.jpg",
}
NAME_STEMS = ["hostile", "tmp", "windows", "exe", "php", "xxxxxxxx", "onerror"]
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\u202a-\u202e\u2066-\u2069]")


@pytest.mark.parametrize("name", HOSTILE_NAMES.values(), ids=HOSTILE_NAMES.keys())
def test_valid_image_with_hostile_name_is_stored_under_a_random_key_IMG_5(
    customer_web, draft, name, tmp_path, django_capture_on_commit_callbacks
) -> None:
    assert len(HOSTILE_NAMES["300_characters"]) == 300
    with django_capture_on_commit_callbacks(execute=True):
        response = upload_raw(customer_web, draft, [(name, selfie_jpeg(300))], follow=True)
    assert response.status_code == 200, response.content[:500]
    page = response.content.decode()
    assert not CONTROL.search(page)
    assert "hostile" not in page and "onerror=" not in page

    photo = Photo.objects.get(order=draft)
    assert photo.status == PhotoStatus.READY
    assert photo.file.name.startswith(f"o/{draft.storage_token}/p/")
    assert re.fullmatch(rf"o/{draft.storage_token}/p/{photo.pk}\.jpg", photo.file.name)
    files = media_files()
    assert files == [photo.file.name]
    for stem in NAME_STEMS:
        assert all(stem not in f for f in files), (stem, files)
    # Nothing escaped the media root (it lives in tmp_path/media).
    assert sorted(os.listdir(tmp_path)) == ["media"]


@pytest.mark.parametrize("name", HOSTILE_NAMES.values(), ids=HOSTILE_NAMES.keys())
def test_refusal_page_never_echoes_control_characters_of_a_name_IMG_5(
    customer_web, draft, name
) -> None:
    response = upload_raw(customer_web, draft, [(name, HTML)])
    message = assert_refused_and_nothing_stored(response, "not a JPEG, PNG or WebP image")
    assert not CONTROL.search(response.content.decode())
    assert "../" not in message and "\\" not in message
    assert "<img src=x" not in response.content.decode()  # escaped, never markup


@pytest.mark.parametrize("name", HOSTILE_NAMES.values(), ids=HOSTILE_NAMES.keys())
def test_service_does_not_trust_names_either_IMG_5(customer, draft, name, tmp_path) -> None:
    """photos_add itself, given the raw name (no Django sanitising in front of it)."""
    raw = "\x00../\u202e" + name
    with pytest.raises(UploadRefused) as refused:
        photos_add(actor=customer, order=draft, files=[(io.BytesIO(HTML), raw, "")])
    assert not CONTROL.search(refused.value.message)
    assert "../" not in refused.value.message
    assert media_files() == []

    (photo,) = photos_add(actor=customer, order=draft, files=[(io.BytesIO(small_png()), raw, "")])
    assert photo.upload.name.startswith(f"q/{draft.storage_token}/")
    assert re.fullmatch(rf"q/{draft.storage_token}/[0-9a-f]{{32}}", photo.upload.name)
    assert media_files() == [photo.upload.name]
    assert sorted(os.listdir(tmp_path)) == ["media"]


# --- Other people's orders --------------------------------------------------------------------


def test_another_customers_order_upload_and_photo_are_404_IMG_2(
    customer_web, draft, other_customer, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(customer_web, draft, [SimpleUploadedFile("me.jpg", selfie_jpeg(300))])
    assert response.status_code == 302
    photo = Photo.objects.get(order=draft)
    assert photo.status == PhotoStatus.READY
    # The owner can open all three...
    assert customer_web.get(reverse("orders:detail", args=[draft.reference])).status_code == 200
    assert customer_web.get(reverse("images:photo", args=[photo.pk])).status_code == 302

    other = login_client(other_customer, verified=True)
    assert other.get(reverse("orders:detail", args=[draft.reference])).status_code == 404
    assert other.get(reverse("images:photo", args=[photo.pk])).status_code == 404
    response = upload(other, draft, [SimpleUploadedFile("x.jpg", selfie_jpeg(300))])
    assert response.status_code == 404
    assert Photo.objects.filter(order=draft).count() == 1
    assert media_files() == [photo.file.name]


# --- Memory: the header check never decodes a bomb -----------------------------------------

_MEASURE = """
import json, os, resource, sys
import django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()
from images.services.intake import UploadRefused, upload_check
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
outcomes = []
for path in sys.argv[1:]:
    with open(path, "rb") as fh:
        try:
            upload_check(stream=fh, name=os.path.basename(path), index=0)
            outcomes.append("accepted")
        except UploadRefused as exc:
            outcomes.append(exc.message)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with open("/proc/self/status") as fh:
    hwm = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))
report = {"before_kb": before, "after_kb": after, "vm_hwm_kb": hwm, "outcomes": outcomes}
print(json.dumps(report))
"""
# Linux carries a process's peak RSS across fork/vfork + exec: a child started straight
# from pytest (hundreds of MB) would report pytest's peak as its own ru_maxrss. So a small
# launcher process starts the measuring one, whose ru_maxrss is then its own.
_LAUNCH = "import subprocess, sys; sys.exit(subprocess.call(sys.argv[1:]))"


def test_header_check_of_bombs_stays_under_200_mb_IMG_5(tmp_path) -> None:
    paths = []
    for name, data in [
        ("bomb12000.png", png_bomb_12000()),
        ("bomb100000.png", png_declaring(100_000, 100_000)),
        ("tall.png", png_declaring(1, 80_000_000)),
    ]:
        path = tmp_path / name
        path.write_bytes(data)
        paths.append(str(path))
    done = subprocess.run(
        [sys.executable, "-c", _LAUNCH, sys.executable, "-W", "ignore", "-c", _MEASURE, *paths],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(report["outcomes"]) == 3
    assert all(o != "accepted" for o in report["outcomes"]), report
    # Linux reports ru_maxrss (and VmHWM) in KiB.
    assert report["after_kb"] / 1024 < 200, report
    assert report["vm_hwm_kb"] / 1024 < 200, report
    # And the checks themselves added next to nothing to what Django's start-up used.
    assert (report["after_kb"] - report["before_kb"]) / 1024 < 30, report
