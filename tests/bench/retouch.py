"""retouch_vs_pyvips_ratio: RETOUCH_CHAIN at full resolution against its pyvips twin (IMG-6).

Input: the 12 MP portrait (tests.photos.portrait_jpeg(12)) decoded once, upright, 3000x4000
RGB. Ours: ``apply_chain(image, RETOUCH_CHAIN)`` from a Pillow image to a Pillow image (the
conversions to and from numpy are counted). Theirs: the same five operations written with
pyvips, from the raw pixel buffer to ``write_to_memory()`` (which forces evaluation of
the lazy pipeline; each step is rendered to memory with ``copy_memory()`` before the next
reads it in several branches, as a pyvips user would). Both run at full resolution with
their default threading (OpenCV's thread pool and libvips' concurrency, both the
machine's core count); a one-thread comparison is in the details too.

Honest twin, operation by operation (statistics, tables and shrink factors come from the
same helper functions in images/operations/retouch.py, so only the pixel work differs):
* auto contrast: histogram of every step-th pixel (``subsample``, ``hist_find``), the same
  levels, the same table (``maplut``);
* white balance: channel means of the same sample, the same gains and table (``maplut``);
* noise reduction: 3x3 median (``median``), blended by the strength (``linear`` maths);
* unsharp mask: Gaussian blur of the same extent (vips' ``min_ampl`` set so its kernel
  reaches 3 sigma, as OpenCV's does), the same weighted difference and threshold mask
  (``ifthenelse``);
* skin smoothing: box shrink by the same factor (``shrink``), the same YCrCb transform
  (``recomb``), skin range, Laplacian detail mask, feathering blur and bilinear enlargement
  (``resize`` with a linear kernel), and the same per-pixel blend.
The outputs are compared (mean absolute difference, in levels) to prove the twin does the
same thing; the headline is the median over rounds (alternating order) of ours / pyvips.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from tests.bench.common import BenchContext, BenchResult, log

NAME = "retouch_vs_pyvips_ratio"
GOAL = "<= 1.0"
ROUNDS, QUICK_ROUNDS = 7, 2
SAME_LEVELS = 3.0  # mean absolute difference allowed between the two outputs
GAUSS_MIN_AMPL = math.exp(-4.5)  # a Gaussian kernel reaching 3 sigma, like OpenCV's
# OpenCV's RGB -> YCrCb (8-bit): Y = .299R + .587G + .114B, Cr = (R - Y) * .713 + 128,
# Cb = (B - Y) * .564 + 128.
YCRCB = [
    [0.299, 0.587, 0.114],
    [0.713 * (1 - 0.299), -0.713 * 0.587, -0.713 * 0.114],
    [-0.564 * 0.299, -0.564 * 0.587, 0.564 * (1 - 0.114)],
]
LAPLACIAN = [[0, 1, 0], [1, -4, 1], [0, 1, 0]]


def _params() -> dict[str, dict[str, float]]:
    from images.operations.retouch import OPERATIONS, RETOUCH_CHAIN

    return {name: OPERATIONS[name].resolve(params) for name, params in RETOUCH_CHAIN}


# --- The pyvips twin ----------------------------------------------------------------------


def _round_uchar(img: Any) -> Any:
    """Round to nearest and clip to 0..255, as OpenCV's saturate_cast does."""
    return (img + 0.5).cast("uchar")


def _lut_image(pyvips: Any, table: np.ndarray) -> Any:
    bands = 1 if table.ndim == 1 else table.shape[-1]
    data = np.ascontiguousarray(table.reshape(256, bands).astype(np.uint8))
    return pyvips.Image.new_from_memory(data.tobytes(), 256, 1, bands, "uchar")


def vips_auto_contrast(pyvips: Any, img: Any, clip: float) -> Any:
    from images.operations.retouch import auto_contrast_lut, contrast_levels, sample_step

    step = sample_step(img.width, img.height)
    sample = img.subsample(step, step) if step > 1 else img
    hist = np.frombuffer(sample.hist_find().write_to_memory(), np.uint32).reshape(256, 3)
    lut = auto_contrast_lut(*contrast_levels(hist.sum(axis=1), clip))
    return img.maplut(_lut_image(pyvips, lut))


def vips_white_balance(pyvips: Any, img: Any, strength: float) -> Any:
    from images.operations.retouch import sample_step, white_balance_gains, white_balance_lut

    step = sample_step(img.width, img.height)
    sample = img.subsample(step, step) if step > 1 else img
    means = np.array([sample.extract_band(band).avg() for band in range(3)])
    return img.maplut(_lut_image(pyvips, white_balance_lut(white_balance_gains(means, strength))))


def vips_denoise(img: Any, strength: float) -> Any:
    median = img.median(3)
    return _round_uchar(img * (1 - strength) + median * strength)


def vips_sharpen(img: Any, radius: float, amount: float, threshold: float) -> Any:
    blur = img.gaussblur(radius, min_ampl=GAUSS_MIN_AMPL)
    sharp = _round_uchar(img * (1 + amount) - blur * amount)
    if threshold <= 0:
        return sharp
    changed = (img.cast("short") - blur).abs() > threshold
    return changed.ifthenelse(sharp, img)


def vips_skin_smooth(img: Any, strength: float, radius: float) -> Any:
    from images.operations.retouch import (
        SKIN_DETAIL_LEVEL,
        SKIN_DETAIL_SIGMA,
        SKIN_HIGH,
        SKIN_LOW,
        shrink_factor,
    )

    width, height = img.width, img.height
    sigma = max(1.0, radius * min(width, height))
    factor = shrink_factor(sigma)
    small = img.shrink(factor, factor) if factor > 1 else img
    small_blur = small.gaussblur(sigma / factor, min_ampl=GAUSS_MIN_AMPL)
    ycc = _round_uchar(small.recomb(YCRCB).linear([1, 1, 1], [0, 128, 128]))
    skin = (ycc >= list(SKIN_LOW)) & (ycc <= list(SKIN_HIGH))
    skin = skin.extract_band(0) & skin.extract_band(1) & skin.extract_band(2)
    laplacian = ycc.extract_band(0).cast("short").conv(LAPLACIAN, precision="integer")
    detail = laplacian.abs().cast("uchar").gaussblur(SKIN_DETAIL_SIGMA, min_ampl=GAUSS_MIN_AMPL)
    mask = (skin & (detail <= SKIN_DETAIL_LEVEL)).cast("float") / 255
    weight = mask.gaussblur(sigma / factor, min_ampl=GAUSS_MIN_AMPL) * strength

    def grow(image: Any) -> Any:
        if (image.width, image.height) == (width, height):
            return image
        scale = width / image.width
        return image.resize(scale, vscale=height / image.height, kernel="linear")

    weight = grow(weight)
    return _round_uchar(grow(small_blur) * weight + img * (1 - weight))


def vips_chain_steps(pyvips: Any) -> dict[str, Callable[[Any], Any]]:
    params = _params()
    return {
        "auto_contrast": lambda im: vips_auto_contrast(pyvips, im, **params["auto_contrast"]),
        "white_balance": lambda im: vips_white_balance(pyvips, im, **params["white_balance"]),
        "denoise": lambda im: vips_denoise(im, **params["denoise"]),
        "sharpen": lambda im: vips_sharpen(im, **params["sharpen"]),
        "skin_smooth": lambda im: vips_skin_smooth(im, **params["skin_smooth"]),
    }


def vips_retouch(pyvips: Any, buffer: bytes, width: int, height: int) -> bytes:
    """The chain in pyvips, from raw RGB bytes to raw RGB bytes."""
    img = pyvips.Image.new_from_memory(buffer, width, height, 3, "uchar")
    for step in vips_chain_steps(pyvips).values():
        # Rendered once per step: the next step reads its input in several branches
        # (statistics, blur, blend), and a lazy libvips graph would recompute every
        # earlier step for each of them (about 30x slower on this chain).
        img = step(img).copy_memory()
    return bytes(img.write_to_memory())


# --- Measuring ----------------------------------------------------------------------------


def _seconds(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _paired(ours: Callable[[], object], theirs: Callable[[], object], rounds: int) -> list[float]:
    for fn in (ours, theirs):
        fn()  # warm-up
    ratios = []
    for n in range(rounds):
        if n % 2 == 0:
            ours_s, theirs_s = _seconds(ours), _seconds(theirs)
        else:
            theirs_s, ours_s = _seconds(theirs), _seconds(ours)
        ratios.append(ours_s / theirs_s)
    return ratios


def _per_operation(pyvips: Any, pixels: np.ndarray) -> dict[str, dict[str, float]]:
    """Each operation alone, array in / array out, for the details (ms)."""
    from images.operations.retouch import OPERATIONS

    height, width = pixels.shape[:2]
    buffer = pixels.tobytes()
    params = _params()
    out: dict[str, dict[str, float]] = {}
    for name, step in vips_chain_steps(pyvips).items():
        op = OPERATIONS[name]

        def ours(op: Any = op, name: str = name) -> object:
            return op.func(pixels, **params[name])

        def theirs(step: Callable[[Any], Any] = step) -> object:
            img = pyvips.Image.new_from_memory(buffer, width, height, 3, "uchar")
            return step(img).write_to_memory()

        ours(), theirs()
        out[name] = {
            "ours_ms": round(statistics.median(_seconds(ours) for _ in range(3)) * 1000, 1),
            "pyvips_ms": round(statistics.median(_seconds(theirs) for _ in range(3)) * 1000, 1),
        }
    return out


def retouch_vs_pyvips_ratio(ctx: BenchContext) -> BenchResult:
    import pyvips

    from images.operations.retouch import RETOUCH_CHAIN, apply_chain, to_pixels
    from tests.photos import portrait_image

    image = portrait_image(12)
    pixels = to_pixels(image)
    height, width = pixels.shape[:2]
    buffer = pixels.tobytes()
    rounds = QUICK_ROUNDS if ctx.quick else ROUNDS
    pyvips.cache_set_max(0)  # no result reuse between rounds

    ours_out = to_pixels(apply_chain(image, RETOUCH_CHAIN)).astype(np.int16)
    theirs_out = np.frombuffer(vips_retouch(pyvips, buffer, width, height), np.uint8)
    difference = float(np.abs(ours_out - theirs_out.reshape(height, width, 3)).mean())
    if difference > SAME_LEVELS:
        raise RuntimeError(f"the pyvips twin differs by {difference:.2f} levels on average")

    def ours() -> object:
        return apply_chain(image, RETOUCH_CHAIN)

    def theirs() -> object:
        return vips_retouch(pyvips, buffer, width, height)

    threads = {"opencv": cv2.getNumThreads(), "vips": pyvips.concurrency_get()}
    ratios = _paired(ours, theirs, rounds)
    ours_ms = round(_seconds(ours) * 1000)
    theirs_ms = round(_seconds(theirs) * 1000)
    per_op = _per_operation(pyvips, pixels)
    before_cv, before_vips = cv2.getNumThreads(), pyvips.concurrency_get()
    cv2.setNumThreads(1)
    pyvips.concurrency_set(1)
    try:
        single = _paired(ours, theirs, max(2, rounds // 2))
    finally:
        cv2.setNumThreads(before_cv)
        pyvips.concurrency_set(before_vips)
    ratio = statistics.median(ratios)
    log(f"{NAME}: ours {ours_ms} ms, pyvips {theirs_ms} ms, ratio {ratio:.3f}")
    return BenchResult(
        name=NAME,
        value=round(ratio, 3),
        unit="x pyvips",
        goal=GOAL,
        details={
            "ours_ms_last": ours_ms,
            "pyvips_ms_last": theirs_ms,
            "round_ratios": [round(r, 3) for r in ratios],
            "threads": threads,
            "one_thread_ratio": round(statistics.median(single), 3),
            "per_operation_ms": per_op,
            "mean_abs_difference_levels": round(difference, 3),
            "pixels": f"{width}x{height}",
            "pyvips": pyvips.__version__,
            "libvips": f"{pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}",
        },
    )
