"""Test photos built from skimage.data.astronaut(), a real frontal face (no files, no network).

Every helper returns encoded bytes and is cached: the 12 MP portrait takes about a second
to build, and tests ask for the same photos again and again.

The base is a 3:4 "selfie" crop of the astronaut: the head (crown to chin, hair included)
is about 36% of the frame height with room above it, as when someone frames a passport
selfie at arm's length. Upscaled versions get mild Gaussian noise, like a phone sensor,
so that their JPEG size and decoding cost are those of a real photo rather than of a
smooth, blurry upscale (which compresses several times smaller).
"""

from __future__ import annotations

import io
import math
import struct
from functools import lru_cache

import cv2
import numpy as np
from PIL import Image, ImageCms, ImageOps

# Where the astronaut's head is in the 512x512 original (measured by eye on the picture;
# the Haar frontal-face box is x 177..272, y 66..161).
_CROWN_Y = 16
_CHIN_Y = 172
_FACE_CX = 224
# The selfie frame: head 36% of the height, crown 12% below the top edge, 3:4.
_HEAD_SHARE = 0.36
_CROWN_MARGIN = 0.12

CAMERA_MAKE = "PhotoPrivacyTestCam"
CAMERA_MODEL = "Model 12"
# Somewhere in Berlin: tests check that these never reach a stored or delivered copy.
GPS_LATITUDE = (52.0, 31.0, 12.0)
GPS_LONGITUDE = (13.0, 24.0, 36.0)
ICC_DESCRIPTION = "Wide-gamut RGB test profile (Adobe RGB 1998 primaries, gamma 2.2)"

_ORIENTATION_TAG = 0x0112
_MAKE_TAG = 0x010F
_MODEL_TAG = 0x0110
_GPS_IFD = 0x8825
# What a camera stores for each EXIF orientation, given the upright picture: the inverse of
# what ImageOps.exif_transpose applies when reading.
_STORE_FOR_ORIENTATION = {
    2: [Image.Transpose.FLIP_LEFT_RIGHT],
    3: [Image.Transpose.ROTATE_180],
    4: [Image.Transpose.FLIP_TOP_BOTTOM],
    5: [Image.Transpose.TRANSPOSE],
    6: [Image.Transpose.ROTATE_90],
    7: [Image.Transpose.TRANSVERSE],
    8: [Image.Transpose.ROTATE_270],
}


def _astronaut() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.astronaut())


def _selfie_frame() -> tuple[int, int, int, int]:
    """(width, height, rows added above the original, left edge in the original)."""
    height = round((_CHIN_Y - _CROWN_Y) / _HEAD_SHARE)
    width = round(height * 3 / 4)
    return width, height, round(height * _CROWN_MARGIN) - _CROWN_Y, _FACE_CX - width // 2


@lru_cache(maxsize=1)
def _selfie_base() -> np.ndarray:
    """The 3:4 selfie framing of the astronaut (RGB uint8), 325x433."""
    src = _astronaut()
    width, height, top_pad, left = _selfie_frame()
    # The original has too little room above the hair: extend the wall upwards by
    # repeating its top row, softened so it reads as a plain background.
    padded = cv2.copyMakeBorder(src, top_pad, 0, 0, 0, cv2.BORDER_REPLICATE)
    padded[:top_pad] = cv2.GaussianBlur(padded[: top_pad + 8], (0, 0), 4)[:top_pad]
    return np.ascontiguousarray(padded[:height, left : left + width])


def _upscale(rgb: np.ndarray, width: int, height: int, *, noise: float = 2.5) -> np.ndarray:
    big = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_CUBIC)
    if noise:
        rng = np.random.default_rng(12)
        # One grain value per pixel for all three channels: luminance noise, like a sensor.
        grain = rng.normal(0.0, noise, size=(height, width, 1)).astype(np.float32)
        big = np.clip(big + grain.round().astype(np.int16), 0, 255).astype(np.uint8)
    return big


def _exif(orientation: int, gps: bool) -> Image.Exif:
    exif = Image.Exif()
    exif[_MAKE_TAG] = CAMERA_MAKE
    exif[_MODEL_TAG] = CAMERA_MODEL
    if orientation != 1:
        exif[_ORIENTATION_TAG] = orientation
    if gps:
        exif[_GPS_IFD] = {
            1: "N",
            2: GPS_LATITUDE,
            3: "E",
            4: GPS_LONGITUDE,
        }
    return exif


def _jpeg(
    img: Image.Image,
    *,
    orientation: int = 1,
    gps: bool = False,
    icc: bool = False,
    quality: int = 92,
    camera: bool = True,
) -> bytes:
    if icc:
        converted = ImageCms.profileToProfile(img, ImageCms.createProfile("sRGB"), _wide_profile())
        assert converted is not None
        img = converted
    for step in _STORE_FOR_ORIENTATION.get(orientation, []):
        img = img.transpose(step)
    out = io.BytesIO()
    kwargs: dict[str, object] = {}
    if camera or gps or orientation != 1:
        kwargs["exif"] = _exif(orientation, gps).tobytes()
    if icc:
        kwargs["icc_profile"] = wide_gamut_icc()
    img.save(out, "JPEG", quality=quality, **kwargs)
    return out.getvalue()


def _portrait_size(megapixels: float) -> tuple[int, int]:
    width = round(math.sqrt(megapixels * 1_000_000 * 3 / 4))
    return width, round(width * 4 / 3)


@lru_cache(maxsize=8)
def portrait_jpeg(
    megapixels: float = 12, orientation: int = 1, gps: bool = True, icc: bool = False
) -> bytes:
    """A 3:4 portrait selfie of *megapixels* (12 -> 3000x4000) as a camera would write it.

    EXIF has a camera make/model, the orientation tag (pixels are stored turned so that
    applying it gives the upright portrait) and, with *gps*, a GPS position. With *icc*
    the pixels are converted to, and tagged with, a wide-gamut RGB profile (see
    wide_gamut_icc): shown without colour management they look washed out, so a pipeline
    must convert them to sRGB before it drops the profile.
    """
    width, height = _portrait_size(megapixels)
    pixels = _upscale(_selfie_base(), width, height)
    return _jpeg(Image.fromarray(pixels), orientation=orientation, gps=gps, icc=icc)


def portrait_image(megapixels: float = 12) -> Image.Image:
    """The upright pixels of portrait_jpeg (a decoded copy the caller may modify)."""
    return ImageOps.exif_transpose(Image.open(io.BytesIO(portrait_jpeg(megapixels)))).convert("RGB")


@lru_cache(maxsize=8)
def selfie_jpeg(side: int = 1200, orientation: int = 1, gps: bool = True) -> bytes:
    """A smaller portrait selfie, *side* pixels tall (3:4), for fast tests."""
    width = round(side * 3 / 4)
    pixels = _upscale(_selfie_base(), width, side)
    return _jpeg(Image.fromarray(pixels), orientation=orientation, gps=gps)


def selfie_image(side: int = 1200) -> Image.Image:
    """selfie_jpeg decoded to an RGB image (no EXIF), for pure image-operation tests."""
    return Image.open(io.BytesIO(selfie_jpeg(side))).convert("RGB")


@lru_cache(maxsize=1)
def no_face_jpeg() -> bytes:
    """A real photo without a person: skimage's cup of coffee, 1200x800."""
    from skimage import data

    pixels = _upscale(np.ascontiguousarray(data.coffee()), 1200, 800)
    return _jpeg(Image.fromarray(pixels))


@lru_cache(maxsize=1)
def two_faces_jpeg() -> bytes:
    """Two astronaut selfies side by side (two people in one photo), 1800x1200."""
    base = _selfie_base()
    pair = np.ascontiguousarray(np.hstack([base, base[:, ::-1]]))
    return _jpeg(Image.fromarray(_upscale(pair, 1800, 1200)))


@lru_cache(maxsize=1)
def small_face_jpeg() -> bytes:
    """A 2400x1800 frame with the astronaut small in it (face box about 80 px, 1/22 of
    the height): detectable, but far too few pixels for a passport photo."""
    frame = np.full((1800, 2400, 3), (214, 206, 198), np.uint8)
    base = _selfie_base()
    scale = 80 / 95  # the Haar face box is 95 px in the 512 px original
    small = cv2.resize(base, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    top, left = 700, 1100
    frame[top : top + small.shape[0], left : left + small.shape[1]] = small
    return _jpeg(Image.fromarray(_upscale(frame, 2400, 1800, noise=1.5)))


@lru_cache(maxsize=1)
def tilted_face_jpeg(degrees: float = 25) -> bytes:
    """The selfie with the head tilted by *degrees* (turned about the face, 900x1200)."""
    width, _, top_pad, _ = _selfie_frame()
    base = _upscale(_selfie_base(), 900, 1200, noise=0)
    scale = 900 / width
    centre = (450.0, ((_CROWN_Y + _CHIN_Y) / 2 + top_pad) * scale)
    turn = cv2.getRotationMatrix2D(centre, degrees, 1.0)
    tilted = cv2.warpAffine(
        base, turn, (900, 1200), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE
    )
    return _jpeg(Image.fromarray(tilted))


# --- A wide-gamut ICC profile, built by hand -------------------------------------------
#
# Pillow can only create sRGB, LAB and XYZ profiles, and a LAB/XYZ profile is not valid
# for an RGB JPEG; an sRGB one would not show whether a pipeline converts colours. So this
# writes a minimal ICC v2 RGB display profile with Adobe RGB (1998) primaries (D50-adapted
# colorants, D65 white point) and a plain gamma of 563/256 = 2.2, which LittleCMS accepts.


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _xyz_tag(x: float, y: float, z: float) -> bytes:
    return b"XYZ " + b"\0" * 4 + _s15(x) + _s15(y) + _s15(z)


def _desc_tag(text: str) -> bytes:
    ascii_text = text.encode("ascii") + b"\0"
    return (
        b"desc"
        + b"\0" * 4
        + struct.pack(">I", len(ascii_text))
        + ascii_text
        + struct.pack(">II", 0, 0)  # no Unicode description
        + struct.pack(">HB", 0, 0)
        + b"\0" * 67  # no ScriptCode description
    )


@lru_cache(maxsize=1)
def wide_gamut_icc() -> bytes:
    """A valid ICC v2 RGB profile with Adobe RGB (1998)-like primaries (~560 bytes)."""
    gamma = b"curv" + b"\0" * 4 + struct.pack(">IH", 1, 563) + b"\0\0"
    tags = [
        (b"desc", _desc_tag(ICC_DESCRIPTION)),
        (b"cprt", b"text" + b"\0" * 4 + b"No copyright, test data\0"),
        (b"wtpt", _xyz_tag(0.95045, 1.0, 1.08905)),
        (b"rXYZ", _xyz_tag(0.60974, 0.31111, 0.01947)),
        (b"gXYZ", _xyz_tag(0.20528, 0.62567, 0.06087)),
        (b"bXYZ", _xyz_tag(0.14919, 0.06322, 0.74457)),
        (b"rTRC", gamma),
        (b"gTRC", gamma),
        (b"bTRC", gamma),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for signature, payload in tags:
        padded = payload + b"\0" * (-len(payload) % 4)
        table += signature + struct.pack(">II", offset + len(body), len(payload))
        body += padded
    size = offset + len(body)
    header = (
        struct.pack(">I", size)
        + b"\0" * 4  # preferred CMM
        + struct.pack(">I", 0x02100000)  # version 2.1
        + b"mntrRGB XYZ "
        + struct.pack(">6H", 2024, 1, 1, 0, 0, 0)
        + b"acsp"
        + b"\0" * 24  # platform, flags, manufacturer, model, attributes
        + struct.pack(">I", 0)  # perceptual intent
        + _s15(0.9642)
        + _s15(1.0)
        + _s15(0.8249)
        + b"\0" * 48  # creator, profile ID, reserved
    )
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + body


def _wide_profile() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(io.BytesIO(wide_gamut_icc()))
