"""The same code stores files on an S3 bucket (moto server over HTTP) as on the local default."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.conftest import s3_bucket


@pytest.fixture
def s3_storage(settings):
    client, bucket = s3_bucket(
        settings, default_acl="private", querystring_auth=True, querystring_expire=300
    )
    yield client, bucket
    for obj in client.list_objects_v2(Bucket=bucket).get("Contents", []):
        client.delete_object(Bucket=bucket, Key=obj["Key"])
    client.delete_bucket(Bucket=bucket)


def _jpeg_with_gps() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "CameraMaker"
    exif.get_ifd(0x8825)[2] = (48.0, 51.0, 24.0)  # GPSLatitude
    buf = io.BytesIO()
    Image.new("RGB", (800, 600), (120, 160, 200)).save(buf, "JPEG", exif=exif)
    return buf.getvalue()


def test_profile_image_on_s3_is_private_and_stripped_IMG_5(s3_storage, customer_client, customer):
    client, bucket = s3_storage
    upload = io.BytesIO(_jpeg_with_gps())
    upload.name = "holiday-in-paris.jpg"
    response = customer_client.post("/accounts/profile/image/upload/", {"image": upload})
    assert response.status_code == 302
    customer.refresh_from_db()
    key = customer.profile_image.name
    assert key.startswith("profile-images/") and "paris" not in key
    stored = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert b"CameraMaker" not in stored
    assert not Image.open(io.BytesIO(stored)).getexif()
    acl = client.get_object_acl(Bucket=bucket, Key=key)
    assert all(g["Grantee"].get("URI", "").endswith("AllUsers") is False for g in acl["Grants"])
    served = customer_client.get("/accounts/profile/image/")
    assert served.status_code == 200
    assert b"".join(served.streaming_content) == stored

    from django.core.files.storage import default_storage

    url = default_storage.url(key)
    assert "X-Amz-Signature=" in url and "X-Amz-Expires=300" in url
