"""Safe image intake: header checks before decoding, then a clean re-encode.

Pillow only *warns* about decompression bombs below ~179 MP, and a tiny PNG can
declare enormous dimensions. So the declared size is checked from the header first,
the warning is turned into an error, and only then are pixels decoded. The stored copy
is re-encoded from pixels: EXIF orientation applied, no EXIF/GPS/XMP/ICC/comments.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from functools import cache
from typing import IO

from django.template.defaultfilters import filesizeformat
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

ACCEPTED_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


class ImageRejected(Exception):
    """The upload is not an acceptable image; message is safe to show the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class ImageLimits:
    max_bytes: int
    max_pixels: int
    max_side: int
    max_aspect: float = 20.0
    max_frames: int = 1


@dataclass(frozen=True)
class CleanImage:
    content: bytes
    content_type: str
    extension: str
    width: int
    height: int


def _read_limited(stream: IO[bytes], max_bytes: int) -> bytes:
    data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ImageRejected(f"The file is larger than {filesizeformat(max_bytes)}.")
    if not data:
        raise ImageRejected("The file is empty.")
    return data


def inspect_header(data: bytes, limits: ImageLimits) -> Image.Image:
    """Open lazily (header only) and enforce type, dimension, pixel, aspect and frame caps."""
    try:
        img = Image.open(io.BytesIO(data), formats=list(ACCEPTED_FORMATS))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageRejected("The file is not a JPEG, PNG or WebP image.") from exc
    except Image.DecompressionBombError as exc:
        raise ImageRejected("The image has too many pixels.") from exc
    width, height = img.size
    if width < 1 or height < 1:
        raise ImageRejected("The image has no pixels.")
    if width > limits.max_side or height > limits.max_side:
        raise ImageRejected(f"The image is larger than {limits.max_side} pixels on a side.")
    if width * height > limits.max_pixels:
        raise ImageRejected(f"The image has more than {limits.max_pixels // 1_000_000} megapixels.")
    if max(width, height) / min(width, height) > limits.max_aspect:
        raise ImageRejected("The image is too long and thin.")
    if getattr(img, "n_frames", 1) > limits.max_frames:
        raise ImageRejected("Animated images are not accepted.")
    return img


def check_complete(data: bytes, fmt: str) -> None:
    """Reject a truncated file without decoding its pixels (cheap enough for a web request).

    JPEG: the end-of-image marker must be in the tail (entropy-coded data escapes 0xFF,
    so FFD9 cannot appear inside it). PNG: every chunk and its CRC, up to IEND, without
    inflating IDAT. WebP: the RIFF length must match the bytes received.
    """
    if fmt == "JPEG":
        if b"\xff\xd9" not in data[-65536:]:
            raise ImageRejected("The JPEG file is truncated (it has no end).")
    elif fmt == "PNG":
        try:
            img = Image.open(io.BytesIO(data), formats=["PNG"])
            img.verify()
        except Exception as exc:  # Pillow raises many types for broken chunks
            raise ImageRejected("The PNG file is damaged or truncated.") from exc
    elif fmt == "WEBP":
        declared = int.from_bytes(data[4:8], "little") + 8 if len(data) >= 12 else -1
        if declared > len(data):
            raise ImageRejected("The WebP file is truncated.")


@cache
def _srgb() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def icc_to_srgb(img: Image.Image, icc: bytes | None) -> Image.Image:
    """Convert pixels described by the ICC profile *icc* to sRGB (the profile is then dropped).

    Dropping a profile without converting (e.g. Display P3 from a phone) would make the
    colours wrong. A broken profile leaves the pixels as they are.
    """
    if not icc or img.mode not in ("RGB", "RGBA", "CMYK", "L"):
        return img
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        out_mode = "RGBA" if img.mode == "RGBA" else "RGB"
        converted = ImageCms.profileToProfile(img, source, _srgb(), outputMode=out_mode)
    except (ImageCms.PyCMSError, OSError, ValueError):
        return img
    return converted or img


def to_srgb(img: Image.Image) -> Image.Image:
    return icc_to_srgb(img, img.info.get("icc_profile"))


def sanitize_image(
    stream: IO[bytes],
    limits: ImageLimits,
    *,
    fit_to: int | None = None,
    quality: int = 88,
) -> CleanImage:
    data = _read_limited(stream, limits.max_bytes)
    img = inspect_header(data, limits)
    fmt = img.format or "JPEG"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            if fit_to and fmt == "JPEG":
                img.draft("RGB", (fit_to, fit_to))  # decode at reduced scale: less memory
            img.load()
            img = ImageOps.exif_transpose(img) or img
            img = to_srgb(img)
    except (
        OSError,
        SyntaxError,
        ValueError,
        Image.DecompressionBombWarning,
        Image.DecompressionBombError,
    ) as exc:
        raise ImageRejected("The image is damaged or truncated.") from exc
    has_alpha = img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info)
    img = img.convert("RGBA" if has_alpha else "RGB")
    if fit_to:
        img.thumbnail((fit_to, fit_to), Image.Resampling.LANCZOS)
    # convert() copies .info, and Pillow's savers fall back to it (a JPEG comment, a PNG's
    # ICC profile): drop it so nothing from the upload reaches the stored copy.
    img.info = {}
    out = io.BytesIO()
    # Saving from fresh pixels with no exif/icc/comment arguments writes none of them.
    if has_alpha:
        img.save(out, format="PNG", optimize=True)
        content_type, ext = "image/png", "png"
    else:
        img.save(out, format="JPEG", quality=quality, optimize=True)
        content_type, ext = "image/jpeg", "jpg"
    return CleanImage(out.getvalue(), content_type, ext, img.width, img.height)
