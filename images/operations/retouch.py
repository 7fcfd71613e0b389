"""Retouching operations (IMG-6): plain functions over Pillow images, and a registry by name.

Each operation exists twice: ``*_pixels`` works on an RGB uint8 array (what a chain runs,
converting to and from Pillow once, not once per step), and the Pillow-level function of
the same name wraps it for single use. Everything stays uint8 and goes through OpenCV,
whose SIMD loops are several times faster than numpy float arithmetic on a 12 MP photo
and need no float64 copy of it. Statistics (histograms, channel means) are taken from a
nearest-neighbour sample of at most SAMPLE_PIXELS pixels: the result is the same to a
level or two and a 12 MP photo is not scanned once per statistic.

The operations are also written so that libvips can do exactly the same ones (median
rather than bilateral noise reduction, an edge-aware mask over a Gaussian blur for skin):
tests/bench/retouch.py compares this chain with its pyvips twin on full-resolution photos.

``encode`` is the only way pixels leave: it never writes EXIF, ICC profiles, XMP or
comments, whatever the image object carries.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFilter, ImageFont

Pixels = npt.NDArray[np.uint8]

SAMPLE_PIXELS = 250_000
WHITE = (255, 255, 255)
# YCrCb box of skin tones across complexions, after Chai & Ngan (1999), narrowed a little
# (Cr >= 137, Cb <= 120, some luma) so beige walls and blond hair mostly fall outside it.
SKIN_LOW = (40, 137, 77)
SKIN_HIGH = (255, 173, 120)
# Local detail (|Laplacian| of luma, averaged over ~1.5 px of the shrunk copy) above this
# marks eyes, lashes, lips, hair and edges, which are kept out of smoothing.
SKIN_DETAIL_LEVEL = 10
SKIN_DETAIL_SIGMA = 1.5


# --- Conversions --------------------------------------------------------------------------


def to_pixels(img: Image.Image) -> Pixels:
    """RGB uint8 array (H, W, 3) of *img*; transparency is flattened onto white."""
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        base = Image.new("RGB", img.size, WHITE)
        base.paste(rgba, mask=rgba.getchannel("A"))
        img = base
    elif img.mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img)


def to_image(pixels: Pixels) -> Image.Image:
    return Image.fromarray(np.ascontiguousarray(pixels), "RGB")


def sample_step(width: int, height: int) -> int:
    return max(1, math.ceil(math.sqrt(height * width / SAMPLE_PIXELS)))


def _sample(pixels: Pixels) -> Pixels:
    """Every step-th pixel of every step-th row, for statistics (real values, no averaging)."""
    height, width = pixels.shape[:2]
    step = sample_step(width, height)
    return pixels if step == 1 else np.ascontiguousarray(pixels[::step, ::step])


def _lut(values: npt.NDArray[np.floating[Any]]) -> Pixels:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


# --- Tone and colour ----------------------------------------------------------------------


def contrast_levels(hist: npt.NDArray[Any], clip: float) -> tuple[int, int]:
    """The darkest and lightest levels of a 256-bin histogram once *clip* percent is cut
    off each end."""
    counts = np.asarray(hist, np.float64).reshape(256)
    cdf = np.cumsum(counts) / max(counts.sum(), 1.0)
    low = int(np.searchsorted(cdf, clip / 100, side="right"))
    high = int(np.searchsorted(cdf, 1 - clip / 100, side="left"))
    return low, min(high, 255)


def auto_contrast_lut(low: int, high: int) -> Pixels:
    if high - low < 2:  # a flat image: stretching would only amplify noise
        return np.arange(256, dtype=np.uint8)
    return _lut((np.arange(256) - low) * (255 / (high - low)))


def auto_contrast_pixels(pixels: Pixels, clip: float = 0.5) -> Pixels:
    """Auto levels: map the clipped darkest/lightest levels to 0 and 255.

    One histogram over all three channels, so one stretch for all of them: the colour
    balance is white_balance's job, not this one's.
    """
    hist = np.bincount(_sample(pixels).ravel(), minlength=256)
    lut = auto_contrast_lut(*contrast_levels(hist, clip))
    return np.asarray(cv2.LUT(pixels, lut), np.uint8)


def white_balance_gains(means: npt.NDArray[Any], strength: float) -> npt.NDArray[np.float64]:
    """Grey-world gains per channel, limited to 0.5..2 and moved toward 1 by *strength*."""
    means = np.maximum(np.asarray(means, np.float64), 1.0)
    gains = np.clip(means.mean() / means, 0.5, 2.0)
    return np.asarray(1 + strength * (gains - 1), np.float64)


def white_balance_lut(gains: npt.NDArray[np.float64]) -> Pixels:
    """A (1, 256, 3) table scaling each channel by its gain (cv2.LUT's layout)."""
    return _lut(np.arange(256)[:, None] * gains[None, :]).reshape(1, 256, 3)


def white_balance_pixels(pixels: Pixels, strength: float = 0.8) -> Pixels:
    """Grey-world white balance: scale channels so their means come closer together."""
    means = _sample(pixels).reshape(-1, 3).mean(axis=0)
    lut = white_balance_lut(white_balance_gains(means, strength))
    return np.asarray(cv2.LUT(pixels, lut), np.uint8)


def exposure_pixels(pixels: Pixels, stops: float = 0.0) -> Pixels:
    """Exposure in stops, applied in linear light (gamma 2.2) so highlights roll off."""
    linear = (np.arange(256) / 255) ** 2.2 * (2.0**stops)
    lut = _lut(np.clip(linear, 0, 1) ** (1 / 2.2) * 255)
    return np.asarray(cv2.LUT(pixels, lut), np.uint8)


# --- Detail -------------------------------------------------------------------------------


def sharpen_pixels(
    pixels: Pixels, radius: float = 1.5, amount: float = 0.6, threshold: float = 3
) -> Pixels:
    """Unsharp mask: add *amount* of (image - blur), only where they differ by > threshold.

    The threshold keeps flat areas (skin, sky) from having their noise sharpened.
    """
    blur = cv2.GaussianBlur(pixels, (0, 0), radius)
    sharp = cv2.addWeighted(pixels, 1 + amount, blur, -amount, 0)
    if threshold > 0:
        diff = cv2.absdiff(pixels, blur)
        _, flat = cv2.threshold(diff, threshold, 255, cv2.THRESH_BINARY_INV)  # 255 where <=
        cv2.copyTo(pixels, flat, sharp)  # restore the original where below threshold
    return np.asarray(sharp, np.uint8)


def denoise_pixels(pixels: Pixels, strength: float = 0.5) -> Pixels:
    """Noise reduction: a 3x3 median (edge-preserving), blended in by *strength*.

    A median removes sensor speckle without blurring edges, at a cost linear in pixels
    (bilateral or non-local means cost 10-100x more on a 12 MP photo for a mild gain).
    """
    median = cv2.medianBlur(pixels, 3)
    if strength >= 1:
        return np.asarray(median, np.uint8)
    return np.asarray(cv2.addWeighted(pixels, 1 - strength, median, strength, 0), np.uint8)


def shrink_factor(sigma: float) -> int:
    """How much a blur of *sigma* can be done at reduced size: leave >= 2 px of sigma."""
    return max(1, min(8, int(sigma // 2)))


def _shrink(pixels: Pixels, factor: int) -> Pixels:
    if factor == 1:
        return pixels
    height, width = pixels.shape[:2]
    size = (math.ceil(width / factor), math.ceil(height / factor))
    return np.asarray(cv2.resize(pixels, size, interpolation=cv2.INTER_AREA))


def _grow(small: npt.NDArray[Any], size: tuple[int, int]) -> npt.NDArray[Any]:
    if small.shape[1::-1] == size:
        return small
    return np.asarray(cv2.resize(small, size, interpolation=cv2.INTER_LINEAR))


def skin_mask(small: Pixels, sigma: float) -> npt.NDArray[np.float32]:
    """Where skin smoothing applies (0..1): skin tones, minus detail, feathered by *sigma*."""
    ycrcb = cv2.cvtColor(small, cv2.COLOR_RGB2YCrCb)
    skin = cv2.inRange(ycrcb, SKIN_LOW, SKIN_HIGH)
    laplacian = cv2.convertScaleAbs(cv2.Laplacian(cv2.extractChannel(ycrcb, 0), cv2.CV_16S))
    detail = cv2.GaussianBlur(laplacian, (0, 0), SKIN_DETAIL_SIGMA)
    _, smooth_enough = cv2.threshold(detail, SKIN_DETAIL_LEVEL, 255, cv2.THRESH_BINARY_INV)
    mask = cv2.bitwise_and(skin, smooth_enough).astype(np.float32)
    mask *= 1 / 255
    return np.asarray(cv2.GaussianBlur(mask, (0, 0), sigma), np.float32)


def skin_smooth_pixels(pixels: Pixels, strength: float = 0.5, radius: float = 0.004) -> Pixels:
    """Soften skin: blend a Gaussian blur in where the skin mask is, by *strength*.

    *radius* is the blur's sigma as a fraction of the short side, so a 12 MP photo and its
    preview get the same look. Detail (eyes, lashes, hair, edges) is outside the mask, so
    the blur is not blended in across it the way a plain blur would be.

    Both the blur and the mask are wide and smooth, so they are computed on a copy shrunk
    by up to 8x (box filter) and enlarged back (bilinear): only the final blend touches
    every full-resolution pixel. That is what makes this affordable on 12 MP.
    """
    height, width = pixels.shape[:2]
    sigma = max(1.0, radius * min(height, width))
    factor = shrink_factor(sigma)
    small = _shrink(pixels, factor)
    small_blur = cv2.GaussianBlur(small, (0, 0), sigma / factor)
    weight = skin_mask(small, sigma / factor)
    weight *= strength
    weight = _grow(weight, (width, height))
    keep = 1 - weight
    blur = _grow(small_blur, (width, height))
    return np.asarray(cv2.blendLinear(blur, pixels, weight, keep), np.uint8)


# --- Geometry -----------------------------------------------------------------------------


def crop_pixels(
    pixels: Pixels, left: float = 0, top: float = 0, right: float = 1, bottom: float = 1
) -> Pixels:
    """Crop to a box given as fractions of the width and height (0..1)."""
    if not (left < right and top < bottom):
        raise ValueError("crop: the box must have left < right and top < bottom")
    height, width = pixels.shape[:2]
    x0, x1 = round(left * width), max(round(right * width), round(left * width) + 1)
    y0, y1 = round(top * height), max(round(bottom * height), round(top * height) + 1)
    return np.ascontiguousarray(pixels[y0:y1, x0:x1])


_QUARTER_TURNS = {90: cv2.ROTATE_90_COUNTERCLOCKWISE, 180: cv2.ROTATE_180}
_QUARTER_TURNS[270] = cv2.ROTATE_90_CLOCKWISE


def rotate_pixels(pixels: Pixels, degrees: float = 0, expand: float = 1) -> Pixels:
    """Turn counter-clockwise by *degrees*; expand=1 keeps the corners (filled white)."""
    turn = degrees % 360
    if turn == 0:
        return pixels
    if turn in _QUARTER_TURNS:  # exact, no resampling
        return np.asarray(cv2.rotate(pixels, _QUARTER_TURNS[int(turn)]), np.uint8)
    height, width = pixels.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    size = (width, height)
    if expand:
        cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
        size = (math.ceil(height * sin + width * cos), math.ceil(height * cos + width * sin))
        matrix[0, 2] += size[0] / 2 - width / 2
        matrix[1, 2] += size[1] / 2 - height / 2
    return np.asarray(
        cv2.warpAffine(
            pixels, matrix, size, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_CONSTANT,
            borderValue=WHITE,
        ),
        np.uint8,
    )  # fmt: skip


def resize_pixels(pixels: Pixels, max_side: float = 2048) -> Pixels:
    """Shrink so the longer side is at most *max_side* (never enlarges)."""
    height, width = pixels.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1:
        return pixels
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(cv2.resize(pixels, size, interpolation=cv2.INTER_AREA), np.uint8)


# --- Pillow-level functions ---------------------------------------------------------------


def auto_contrast(img: Image.Image, clip: float = 0.5) -> Image.Image:
    return to_image(auto_contrast_pixels(to_pixels(img), clip))


def white_balance(img: Image.Image, strength: float = 0.8) -> Image.Image:
    return to_image(white_balance_pixels(to_pixels(img), strength))


def exposure(img: Image.Image, stops: float) -> Image.Image:
    return to_image(exposure_pixels(to_pixels(img), stops))


def sharpen(
    img: Image.Image, radius: float = 1.5, amount: float = 0.6, threshold: float = 3
) -> Image.Image:
    return to_image(sharpen_pixels(to_pixels(img), radius, amount, threshold))


def denoise(img: Image.Image, strength: float = 0.5) -> Image.Image:
    return to_image(denoise_pixels(to_pixels(img), strength))


def skin_smooth(img: Image.Image, strength: float = 0.5, radius: float = 0.004) -> Image.Image:
    return to_image(skin_smooth_pixels(to_pixels(img), strength, radius))


def crop(img: Image.Image, box: tuple[int, int, int, int]) -> Image.Image:
    """Crop to a pixel box (left, top, right, bottom), clamped to the image."""
    left, top = max(0, box[0]), max(0, box[1])
    right, bottom = min(img.width, box[2]), min(img.height, box[3])
    if not (left < right and top < bottom):
        raise ValueError(f"crop box {box} is empty inside a {img.width}x{img.height} image")
    return img.crop((left, top, right, bottom))


def rotate(img: Image.Image, degrees: float, expand: bool = True) -> Image.Image:
    return to_image(rotate_pixels(to_pixels(img), degrees, 1 if expand else 0))


def resize(img: Image.Image, max_side: int) -> Image.Image:
    """Shrink (never enlarge) so the longer side is at most *max_side*."""
    scale = max_side / max(img.size)
    if scale >= 1:
        return img.copy()
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    return img.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


# --- Preview watermark --------------------------------------------------------------------


def _watermark_mask(size: tuple[int, int], text: str) -> Image.Image:
    """Rows of *text* over the whole of *size*, turned 30 degrees (an L mask)."""
    width, height = size
    font_size = max(12, min(width, height) // 14)
    font = ImageFont.load_default(size=font_size)
    left, top, right, bottom = font.getbbox(text)
    step_x = math.ceil(right - left) + font_size * 2
    step_y = math.ceil(bottom - top) + font_size * 2
    # Drawn on a square big enough to cover the image after turning, then cut out.
    side = math.ceil(math.hypot(width, height)) + step_x
    layer = Image.new("L", (side, side), 0)
    draw = ImageDraw.Draw(layer)
    for row, y in enumerate(range(0, side, step_y)):
        offset = (step_x // 2) * (row % 2)
        for x in range(-offset, side, step_x):
            draw.text((x, y), text, fill=255, font=font)
    layer = layer.rotate(30, resample=Image.Resampling.BILINEAR)
    x0, y0 = (side - width) // 2, (side - height) // 2
    return layer.crop((x0, y0, x0 + width, y0 + height))


def watermark_preview(img: Image.Image, text: str, max_side: int = 800) -> Image.Image:
    """A low-resolution copy with *text* tiled diagonally across all of it.

    Rows repeat every few text heights over the whole frame, so no crop larger than a
    small fraction of the picture is free of it; light text with a dark halo stays
    visible on both bright and dark areas.
    """
    small = resize(img, max_side).convert("RGB")
    mask = _watermark_mask(small.size, text)
    halo = mask.filter(ImageFilter.MaxFilter(3)).point(lambda v: v * 45 // 100)
    small.paste((40, 40, 40), mask=halo)
    small.paste(WHITE, mask=mask.point(lambda v: v * 60 // 100))
    small.info = {}
    return small


# --- Encoding -----------------------------------------------------------------------------


def encode(
    img: Image.Image,
    fmt: str = "JPEG",
    quality: int = 88,
    dpi: tuple[float, float] | None = None,
    *,
    optimize: bool = False,
) -> bytes:
    """Encode pixels only: no EXIF, ICC profile, XMP or comment ever reaches the file.

    Pillow's savers fall back to ``img.info`` for some of these (a JPEG comment, a PNG's
    ICC profile and text), so it is emptied for the save and restored afterwards.
    """
    fmt = fmt.upper()
    if fmt in ("JPEG", "JPG"):
        fmt = "JPEG"
        if img.mode not in ("RGB", "L"):
            img = to_image(to_pixels(img))
    options: dict[str, Any] = {}
    if fmt in ("JPEG", "WEBP"):
        options["quality"] = quality
    if optimize and fmt in ("JPEG", "PNG"):
        options["optimize"] = True
    if dpi is not None:
        options["dpi"] = dpi
    saved, img.info = img.info, {}
    try:
        out = io.BytesIO()
        img.save(out, format=fmt, **options)
    finally:
        img.info = saved
    return out.getvalue()


# --- The registry -------------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    default: float
    minimum: float
    maximum: float
    label: str = ""


@dataclass(frozen=True)
class Operation:
    """A retouching step the admin and the retouch task can name in a chain."""

    name: str
    label: str
    func: Callable[..., Pixels]  # (pixels, **params) -> pixels
    params: Mapping[str, Param] = field(default_factory=dict)
    check: Callable[[Mapping[str, float]], str | None] | None = None  # across parameters

    def resolve(self, given: Mapping[str, float]) -> dict[str, float]:
        """Defaults filled in; ValueError on an unknown, non-numeric or out-of-bounds value."""
        unknown = sorted(set(given) - set(self.params))
        if unknown:
            known = ", ".join(self.params) or "none"
            raise ValueError(
                f"{self.name}: unknown parameter {', '.join(unknown)} (known: {known})"
            )
        values: dict[str, float] = {}
        for key, param in self.params.items():
            value = given.get(key, param.default)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{self.name}: {key} must be a number, not {value!r}")
            if not (param.minimum <= value <= param.maximum and math.isfinite(value)):
                raise ValueError(
                    f"{self.name}: {key}={value} is outside {param.minimum}..{param.maximum}"
                )
            values[key] = float(value)
        problem = self.check(values) if self.check else None
        if problem:
            raise ValueError(f"{self.name}: {problem}")
        return values

    def __call__(self, img: Image.Image, **params: float) -> Image.Image:
        return to_image(self.func(to_pixels(img), **self.resolve(params)))


def _crop_box_problem(values: Mapping[str, float]) -> str | None:
    if values["left"] < values["right"] and values["top"] < values["bottom"]:
        return None
    return "the box must have left < right and top < bottom"


OPERATIONS: dict[str, Operation] = {
    op.name: op
    for op in (
        Operation(
            "auto_contrast",
            "Auto contrast",
            auto_contrast_pixels,
            {"clip": Param(0.5, 0, 10, "percent clipped at each end")},
        ),
        Operation(
            "white_balance",
            "White balance",
            white_balance_pixels,
            {"strength": Param(0.8, 0, 1)},
        ),
        Operation("exposure", "Exposure", exposure_pixels, {"stops": Param(0, -3, 3)}),
        Operation("denoise", "Noise reduction", denoise_pixels, {"strength": Param(0.5, 0, 1)}),
        Operation(
            "sharpen",
            "Unsharp mask",
            sharpen_pixels,
            {
                "radius": Param(1.5, 0.3, 10, "blur sigma in pixels"),
                "amount": Param(0.6, 0, 3),
                "threshold": Param(3, 0, 64, "levels"),
            },
        ),
        Operation(
            "skin_smooth",
            "Skin smoothing",
            skin_smooth_pixels,
            {
                "strength": Param(0.5, 0, 1),
                "radius": Param(0.004, 0.0005, 0.02, "blur sigma, fraction of the short side"),
            },
        ),
        Operation(
            "crop",
            "Crop",
            crop_pixels,
            {
                "left": Param(0, 0, 1),
                "top": Param(0, 0, 1),
                "right": Param(1, 0, 1),
                "bottom": Param(1, 0, 1),
            },
            check=_crop_box_problem,
        ),
        Operation(
            "rotate",
            "Rotate",
            rotate_pixels,
            {"degrees": Param(0, -360, 360), "expand": Param(1, 0, 1)},
        ),
        Operation("resize", "Resize", resize_pixels, {"max_side": Param(2048, 16, 20000)}),
    )
}

# The standard retouch, in this order (noise is reduced before sharpening amplifies it).
RETOUCH_CHAIN: tuple[tuple[str, Mapping[str, float]], ...] = (
    ("auto_contrast", {}),
    ("white_balance", {}),
    ("denoise", {}),
    ("sharpen", {}),
    ("skin_smooth", {}),
)


def resolve_chain(
    steps: Sequence[tuple[str, Mapping[str, float]]],
) -> list[tuple[Operation, dict[str, float]]]:
    """Check a whole chain before any pixel is touched: ValueError names the bad step."""
    resolved = []
    for number, (name, params) in enumerate(steps, start=1):
        op = OPERATIONS.get(name)
        if op is None:
            known = ", ".join(OPERATIONS)
            raise ValueError(f"step {number}: unknown operation {name!r} (known: {known})")
        try:
            resolved.append((op, op.resolve(params)))
        except ValueError as exc:
            raise ValueError(f"step {number}: {exc}") from None
    return resolved


def apply_chain_pixels(pixels: Pixels, steps: Sequence[tuple[str, Mapping[str, float]]]) -> Pixels:
    for op, params in resolve_chain(steps):
        pixels = op.func(pixels, **params)
    return pixels


def apply_chain(img: Image.Image, steps: Sequence[tuple[str, Mapping[str, float]]]) -> Image.Image:
    """Apply named operations in order, converting to and from Pillow only once."""
    resolve_chain(steps)  # a bad chain fails before the photo is converted
    return to_image(apply_chain_pixels(to_pixels(img), steps))
