"""Retouching operations, their registry and the metadata-free encoder (IMG-6)."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from images.operations import retouch
from images.operations.retouch import (
    OPERATIONS,
    RETOUCH_CHAIN,
    apply_chain,
    auto_contrast,
    crop,
    denoise,
    encode,
    exposure,
    resize,
    rotate,
    sharpen,
    skin_smooth,
    to_pixels,
    watermark_preview,
    white_balance,
)
from tests import photos

# In selfie_image() (900x1200): a patch of cheek and a patch of the plain wall.
CHEEK = (380, 420, 440, 480)
WALL = (40, 40, 200, 200)


def _pixels(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"), dtype=np.float64)


def _noisy_grey(level: int = 128, sigma: float = 12, size: int = 300) -> Image.Image:
    rng = np.random.default_rng(3)
    noise = rng.normal(0, sigma, (size, size, 1))
    return Image.fromarray(np.clip(level + noise, 0, 255).repeat(3, axis=2).astype(np.uint8))


def test_auto_contrast_widens_the_histogram_IMG_6() -> None:
    flat = _pixels(photos.selfie_image()) * 0.35 + 80  # squeezed into 80..170
    before = Image.fromarray(flat.astype(np.uint8))
    after = _pixels(auto_contrast(before))
    low, high = np.percentile(flat, [1, 99])
    new_low, new_high = np.percentile(after, [1, 99])
    assert new_high - new_low > 1.8 * (high - low)
    assert new_low < 20 and new_high > 235


def test_auto_contrast_leaves_a_flat_image_alone_IMG_6() -> None:
    grey = Image.new("RGB", (64, 64), (120, 120, 120))
    assert _pixels(auto_contrast(grey)).max() == 120


def test_white_balance_brings_channel_means_closer_IMG_6() -> None:
    cast = _pixels(photos.selfie_image()) * [0.65, 0.9, 1.0]  # a blue cast
    before = Image.fromarray(cast.astype(np.uint8))
    means_before = cast.reshape(-1, 3).mean(axis=0)
    means_after = _pixels(white_balance(before)).reshape(-1, 3).mean(axis=0)
    assert np.ptp(means_after) < 0.5 * np.ptp(means_before)


def test_exposure_brightens_and_darkens_by_stops_IMG_6() -> None:
    img = photos.selfie_image()
    mean = _pixels(img).mean()
    assert _pixels(exposure(img, 1)).mean() > mean + 15
    assert _pixels(exposure(img, -1)).mean() < mean - 15
    assert np.array_equal(_pixels(exposure(img, 0)), _pixels(img))


def _laplacian_energy(img: Image.Image) -> float:
    gray = np.asarray(img.convert("L"))
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def test_sharpen_increases_edge_contrast_IMG_6() -> None:
    img = photos.selfie_image()
    sharper = sharpen(img, radius=2, amount=1.0, threshold=0)
    assert _laplacian_energy(sharper) > 1.5 * _laplacian_energy(img)


def test_sharpen_threshold_leaves_faint_noise_alone_IMG_6() -> None:
    faint = _noisy_grey(sigma=0.8)
    assert np.abs(_pixels(sharpen(faint, threshold=6)) - _pixels(faint)).max() == 0


def test_denoise_reduces_noise_IMG_6() -> None:
    noisy = _noisy_grey()
    assert _pixels(denoise(noisy, 1.0)).std() < 0.7 * _pixels(noisy).std()
    assert _pixels(denoise(noisy, 0.0)).std() == pytest.approx(_pixels(noisy).std())


def test_skin_smooth_softens_skin_not_the_background_IMG_6() -> None:
    img = photos.selfie_image()
    smooth = skin_smooth(img, strength=1.0)
    before, after = _pixels(img), _pixels(smooth)

    def change(box: tuple[int, int, int, int]) -> float:
        left, top, right, bottom = box
        return float(np.abs(after[top:bottom, left:right] - before[top:bottom, left:right]).mean())

    def roughness(pixels: np.ndarray, box: tuple[int, int, int, int]) -> float:
        left, top, right, bottom = box
        return float(np.diff(pixels[top:bottom, left:right], axis=1).std())

    assert change(CHEEK) > 3 * change(WALL)
    assert roughness(after, CHEEK) < 0.7 * roughness(before, CHEEK)


def test_geometry_crop_rotate_resize_IMG_6() -> None:
    img = photos.selfie_image()
    assert crop(img, (100, 50, 400, 450)).size == (300, 400)
    assert crop(img, (-10, -10, 5000, 5000)).size == img.size  # clamped
    with pytest.raises(ValueError):
        crop(img, (400, 50, 100, 450))
    turned = rotate(img, 90)
    assert turned.size == (img.height, img.width)
    assert np.array_equal(_pixels(turned), _pixels(img.transpose(Image.Transpose.ROTATE_90)))
    assert rotate(img, 30, expand=True).width > img.width
    assert rotate(img, 30, expand=False).size == img.size
    small = resize(img, 300)
    assert small.size == (225, 300)
    assert resize(img, 5000).size == img.size  # never enlarges


def test_watermark_preview_is_small_and_marked_everywhere_IMG_6() -> None:
    img = photos.selfie_image()
    preview = watermark_preview(img, "PREVIEW", max_side=400)
    assert max(preview.size) == 400
    assert preview.info == {}
    plain = _pixels(img.resize(preview.size, Image.Resampling.LANCZOS))
    marked = _pixels(preview)
    height, width = marked.shape[:2]
    # No third of the picture in either direction is free of the watermark.
    for row in range(3):
        for column in range(3):
            cell = (
                slice(row * height // 3, (row + 1) * height // 3),
                slice(column * width // 3, (column + 1) * width // 3),
            )
            changed = np.abs(marked[cell] - plain[cell]).max(axis=2) > 40
            assert changed.mean() > 0.02, (row, column)


def test_encode_writes_no_exif_icc_or_comment_IMG_6() -> None:
    source = Image.open(io.BytesIO(photos.portrait_jpeg(2, gps=True, icc=True)))
    source.load()
    source.info["comment"] = b"taken at home"
    assert source.info.get("icc_profile") and source.info.get("exif")
    for fmt in ("JPEG", "PNG", "WEBP"):
        data = encode(source, fmt)
        out = Image.open(io.BytesIO(data))
        assert out.format == fmt
        assert not out.getexif(), fmt
        for key in ("icc_profile", "exif", "comment", "xmp"):
            assert key not in out.info, (fmt, key)
        assert b"PhotoPrivacyTestCam" not in data
    assert source.info.get("icc_profile"), "the caller's image keeps its info"


def test_encode_writes_the_requested_density_IMG_6() -> None:
    data = encode(photos.selfie_image(), dpi=(300, 300))
    assert Image.open(io.BytesIO(data)).info["dpi"] == pytest.approx((300, 300))


def test_apply_chain_runs_the_retouch_chain_IMG_6() -> None:
    img = photos.selfie_image()
    out = apply_chain(img, RETOUCH_CHAIN)
    assert out.size == img.size and out.mode == "RGB"
    assert np.abs(_pixels(out) - _pixels(img)).mean() > 1


def test_apply_chain_with_geometry_IMG_6() -> None:
    steps = [
        ("crop", {"left": 0.25, "top": 0.0, "right": 0.75, "bottom": 0.5}),
        ("rotate", {"degrees": 90}),
        ("resize", {"max_side": 200}),
    ]
    assert apply_chain(photos.selfie_image(), steps).size == (200, 150)


@pytest.mark.parametrize(
    ("steps", "words"),
    [
        ([("blur_everything", {})], ["step 1", "unknown operation", "blur_everything"]),
        ([("sharpen", {"amount": 7})], ["sharpen", "amount=7", "0..3"]),
        ([("exposure", {"stops": -9})], ["exposure", "stops", "-3"]),
        ([("denoise", {"radius": 2})], ["denoise", "unknown parameter", "radius"]),
        ([("denoise", {"strength": "lots"})], ["strength", "must be a number"]),
        ([("auto_contrast", {}), ("crop", {"left": 0.8, "right": 0.2})], ["step 2", "left"]),
    ],
)
def test_apply_chain_refuses_bad_steps_IMG_6(steps, words) -> None:
    with pytest.raises(ValueError) as caught:
        apply_chain(photos.selfie_image(), steps)
    for word in words:
        assert word in str(caught.value)


def test_every_operation_is_callable_by_name_with_defaults_IMG_6() -> None:
    img = photos.selfie_image().resize((150, 200))
    for name, op in OPERATIONS.items():
        out = op(img)
        assert out.mode == "RGB", name
        assert op.label


def test_transparent_input_is_flattened_onto_white_IMG_6() -> None:
    clear = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    assert to_pixels(clear).min() == 255
    assert retouch.to_image(to_pixels(clear)).mode == "RGB"
