"""Profile images: real images only, metadata stripped, random key, owner-only (IMG-5, ACC-1)."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from accounts.models import AuditAction, AuditEvent

pytestmark = pytest.mark.django_db

UPLOAD = "/accounts/profile/image/upload/"
SERVE = "/accounts/profile/image/"
GPS_IFD = 0x8825


def jpeg_with_gps(size: tuple[int, int] = (640, 480)) -> bytes:
    img = Image.new("RGB", size, (200, 30, 40))
    exif = Image.Exif()
    exif[0x010F] = "SpyCam Inc."  # Make
    exif[0x0110] = "Model X"  # Model
    exif[GPS_IFD] = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 36.0)}
    out = io.BytesIO()
    img.save(out, format="JPEG", exif=exif, comment=b"secret comment")
    data = out.getvalue()
    # The fixture itself really carries the GPS position.
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(GPS_IFD)
    return data


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims *width* x *height* pixels."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def stored_files(settings) -> list[Path]:
    root = Path(settings.STORAGES["default"]["OPTIONS"]["location"])
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def _upload(client, name: str, content: bytes, content_type: str = "image/jpeg"):
    return client.post(UPLOAD, {"image": SimpleUploadedFile(name, content, content_type)})


def test_jpeg_is_stored_without_exif_or_gps_under_a_random_key_IMG_5(
    customer_client, customer, settings
):
    response = _upload(customer_client, "my-house-at-home-gps.jpg", jpeg_with_gps())

    assert response.status_code == 302
    customer.refresh_from_db()
    name = customer.profile_image.name
    assert name.startswith("profile-images/")
    assert "my-house" not in name
    assert "gps" not in name
    assert len(Path(name).stem) == 32
    with default_storage.open(name, "rb") as fh:
        data = fh.read()
    img = Image.open(io.BytesIO(data))
    assert img.format == "JPEG"
    assert len(img.getexif()) == 0
    assert not img.getexif().get_ifd(GPS_IFD)
    assert "exif" not in img.info
    assert "comment" not in img.info
    assert b"SpyCam" not in data
    assert b"secret comment" not in data
    assert max(img.size) <= settings.PROFILE_IMAGE_OUTPUT_SIDE
    assert [p.name for p in stored_files(settings)] == [Path(name).name]
    assert AuditEvent.objects.filter(
        action=AuditAction.PROFILE_UPDATED, subject=customer, detail={"fields": ["profile_image"]}
    ).exists()


def test_same_filename_twice_gets_two_different_keys(
    customer_client, customer, settings, django_capture_on_commit_callbacks
):
    _upload(customer_client, "me.jpg", jpeg_with_gps())
    customer.refresh_from_db()
    first = customer.profile_image.name
    with django_capture_on_commit_callbacks(execute=True):
        _upload(customer_client, "me.jpg", jpeg_with_gps())
    customer.refresh_from_db()
    assert customer.profile_image.name != first
    # The replaced file is gone: only the current image is kept.
    assert not default_storage.exists(first)
    assert len(stored_files(settings)) == 1


def test_image_is_served_only_to_its_owner_IMG_1(customer_client, other_client, customer, client):
    _upload(customer_client, "me.jpg", jpeg_with_gps())

    response = customer_client.get(SERVE)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert "no-store" in response["Cache-Control"]
    body = b"".join(response.streaming_content)
    assert Image.open(io.BytesIO(body)).format == "JPEG"

    # Another customer only ever gets their own (missing) image.
    assert other_client.get(SERVE).status_code == 404
    assert other_client.get(SERVE + f"?user={customer.pk}").status_code == 404
    anonymous = client.get(SERVE)
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/accounts/login/")


def test_xmp_is_stripped_from_jpeg_IMG_5(customer_client, customer):
    out = io.BytesIO()
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/">home-location</x:xmpmeta>'
    Image.new("RGB", (64, 64), "blue").save(out, format="JPEG", xmp=xmp)
    assert b"home-location" in out.getvalue()
    assert _upload(customer_client, "x.jpg", out.getvalue()).status_code == 302
    customer.refresh_from_db()
    with default_storage.open(customer.profile_image.name, "rb") as fh:
        data = fh.read()
    assert b"home-location" not in data
    assert "xmp" not in Image.open(io.BytesIO(data)).info


def test_png_metadata_and_icc_profile_are_stripped_IMG_5(customer_client, customer):
    from PIL import ImageCms, PngImagePlugin

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    text = PngImagePlugin.PngInfo()
    text.add_text("Comment", "taken at home-location")
    out = io.BytesIO()
    Image.new("RGBA", (64, 64), (0, 0, 0, 0)).save(out, format="PNG", pnginfo=text, icc_profile=icc)
    assert "icc_profile" in Image.open(io.BytesIO(out.getvalue())).info

    assert _upload(customer_client, "x.png", out.getvalue(), "image/png").status_code == 302

    customer.refresh_from_db()
    with default_storage.open(customer.profile_image.name, "rb") as fh:
        data = fh.read()
    stored = Image.open(io.BytesIO(data))
    assert stored.format == "PNG"
    assert "icc_profile" not in stored.info
    assert "Comment" not in stored.info
    assert b"home-location" not in data


def test_png_with_transparency_is_kept_as_png(customer_client, customer):
    img = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    out = io.BytesIO()
    img.save(out, format="PNG")
    assert _upload(customer_client, "x.png", out.getvalue(), "image/png").status_code == 302
    customer.refresh_from_db()
    assert customer.profile_image.name.endswith(".png")
    assert customer_client.get(SERVE)["Content-Type"] == "image/png"


def test_removing_the_image_deletes_the_file(customer_client, customer, settings):
    _upload(customer_client, "me.jpg", jpeg_with_gps())
    customer.refresh_from_db()
    name = customer.profile_image.name
    assert customer_client.post("/accounts/profile/image/remove/").status_code == 302
    customer.refresh_from_db()
    assert not customer.profile_image
    assert not default_storage.exists(name)
    assert customer_client.get(SERVE).status_code == 404
    assert stored_files(settings) == []


def _truncated_jpeg() -> bytes:
    img = Image.effect_noise((400, 400), 64).convert("RGB")
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=95)
    data = out.getvalue()
    return data[: len(data) // 2]


BAD_UPLOADS = {
    "text file": ("notes.txt", b"just some words\n" * 20, "text/plain", b"not a JPEG, PNG"),
    "html named jpg": (
        "photo.jpg",
        b"<html><script>alert(1)</script></html>",
        "image/jpeg",
        b"not a JPEG, PNG",
    ),
    "zero bytes": ("empty.jpg", b"", "image/jpeg", b"empty"),
    "truncated jpeg": ("cut.jpg", _truncated_jpeg(), "image/jpeg", b"damaged or truncated"),
    "oversize file": (
        "big.jpg",
        jpeg_with_gps() + b"\0" * (5 * 1024 * 1024),
        "image/jpeg",
        b"larger than 5.0\xc2\xa0MB",
    ),
    "png declaring huge dimensions": (
        "bomb.png",
        png_declaring(100_000, 100_000),
        "image/png",
        b"pixels",
    ),
    "png wider than the side cap": (
        "wide.png",
        png_declaring(9000, 2000),
        "image/png",
        b"larger than 8000 pixels",
    ),
    "png over the pixel cap": ("mp.png", png_declaring(6000, 6000), "image/png", b"megapixels"),
    "gif": ("anim.gif", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "image/gif", b"not a JPEG, PNG"),
}


@pytest.mark.parametrize("case", list(BAD_UPLOADS), ids=list(BAD_UPLOADS))
def test_bad_upload_is_refused_with_a_message_and_nothing_stored_IMG_5(
    customer_client, customer, settings, case
):
    name, content, content_type, message = BAD_UPLOADS[case]
    audit_before = AuditEvent.objects.count()

    response = _upload(customer_client, name, content, content_type)

    assert response.status_code == 400
    assert message in response.content
    customer.refresh_from_db()
    assert not customer.profile_image
    assert stored_files(settings) == []
    assert AuditEvent.objects.count() == audit_before


def test_bad_upload_keeps_the_previous_image(customer_client, customer, settings):
    _upload(customer_client, "me.jpg", jpeg_with_gps())
    customer.refresh_from_db()
    name = customer.profile_image.name

    assert _upload(customer_client, "x.jpg", b"<html></html>").status_code == 400

    customer.refresh_from_db()
    assert customer.profile_image.name == name
    assert default_storage.exists(name)


def test_upload_without_a_file_is_refused(customer_client, customer):
    assert customer_client.post(UPLOAD, {}).status_code == 400
    customer.refresh_from_db()
    assert not customer.profile_image
