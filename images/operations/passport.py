"""Passport and ID photos (IMG-6): find the face, crop to the document's rules, print sheets.

The work is sized to the output, not to the upload. A 12 MP JPEG is decoded at reduced
scale (libjpeg's scaled IDCT through ``Image.draft``: 1/2, 1/4 or 1/8 of the pixels),
chosen from the header so that the expected crop still has at least the output's pixels;
only if the face turns out smaller than expected is it decoded again at a finer scale. The
face is found on a grayscale copy about DETECT_SIDE pixels long, and the crop is cut from
the decoded image in its stored orientation and turned upright afterwards, so no upright
copy of the whole photo is ever made.

No beauty filters or retouching here, on purpose: several authorities (the US, the UK,
Canada, the Schengen states) refuse photos that were digitally altered beyond cropping,
scaling and colour conversion.

Head height is estimated from the Haar face box (see HEAD_PER_FACE): an approximation,
calibrated on a frontal face with a normal hairstyle; a landmark model would be more
precise. The result is meant for a person (the customer, or staff on review) to confirm,
not a guarantee of acceptance.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache, cached_property

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw

from common.imaging import icc_to_srgb
from images.operations.retouch import encode, watermark_preview
from images.passport_specs import PRINT_DPI, DocumentSpec

Box = tuple[float, float, float, float]  # left, top, width, height
Rect = tuple[float, float, float, float]  # left, top, right, bottom
_Eyes = tuple[tuple[float, float], tuple[float, float]]  # left and right eye centres

# Decoding.
ACCEPTED_FORMATS = ["JPEG", "PNG", "WEBP"]
DRAFT_SCALES = (8, 4, 2, 1)
ASSUMED_HEAD_SHARE = 0.33  # head height / frame height in a typical passport selfie
DRAFT_UPSCALE_OK = 1.1  # enlarging the crop by up to 10% is invisible; beyond, decode finer
MAX_UPSCALE = 1.5  # beyond this even at full resolution the face is too small
# Detection (Haar cascades shipped with OpenCV).
FACE_CASCADE = "haarcascade_frontalface_alt2.xml"  # fewer false positives than _default
EYE_CASCADE = "haarcascade_eye.xml"
# The fast search looks for faces at least DETECT_MIN_SHARE of the short side on a copy
# DETECT_SIDE long: a passport selfie's face is 25-40% of it. Only when it finds nothing
# does a slower search on a larger copy look for small faces.
DETECT_SIDE = 160
DETECT_MIN_SHARE = 0.12
DETECT_STEP = 1.25
DETECT_MIN = 20  # the alt2 cascade's window
SMALL_FACE_SIDE = 800
SMALL_FACE_MIN = 24
REFINE_FACE = 96  # candidates are confirmed, measured and their eyes found at this width
# Haar's size estimate for one window is rough (+-15%); the grouped average of the windows
# a 5% size step yields around a face is stable to a few percent.
REFINE_STEP = 1.05
# A face seen this close passes the cascade in 50-70 windows of that search; a chance
# pattern (a crease, a badge) that fooled the fast search in a handful.
REFINE_VOTES = 12
REFINE_MARGIN = 0.2  # the close-up shows the candidate with this much around it
TILT_ANGLES = (25.0, -25.0, 15.0, -15.0, 35.0, -35.0)
MAX_TILT_DEGREES = 10.0
EYE_TURNS = (20.0, -20.0)
# Geometry: crown-to-chin height, hair included, is about 1.55 face-box heights, and the
# chin about 0.1 box below the box (measured on frontal portraits with Haar's alt2 box).
HEAD_PER_FACE = 1.55
CHIN_BELOW_FACE = 0.10
TOP_SHARE = 0.3  # of the space not taken by the head, the share above the crown
MAX_PAD_SHARE = 0.08  # white added beyond an image edge, as a share of the crop side
# Outputs.
DIGITAL_MAX_QUALITY = 95  # above this JPEG grows without visible gain
DIGITAL_MIN_QUALITY = 40
SHEET_QUALITY = 92
PREVIEW_SIDE = 360
PREVIEW_TEXT = "PREVIEW · NOT FOR SUBMISSION"
PAPERS = {"4x6": (1800, 1200), "10x15": (1772, 1181)}  # landscape, pixels at 300 dpi
SHEET_GAP = 12  # 1 mm between copies, with the cut guide in its middle
SHEET_MARGIN = 24
GUIDE_GREY = (170, 170, 170)
WHITE = (255, 255, 255)

_ORIENTATION_TAG = 0x0112
# What exif_transpose applies for each EXIF orientation (stored -> upright).
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

MESSAGES = {
    "unreadable": "We could not read this photo. Please upload a JPEG, PNG or WebP image.",
    "too_large": "This photo has too many pixels for us to process. Please upload a smaller one.",
    "no_face": "We could not find a face. Please upload a photo of you facing the camera.",
    "several_faces": "We found more than one face. A passport photo must show only you.",
    "face_too_small": (
        "Your face is too small in this photo. Please take it closer, so that your head "
        "and shoulders fill most of the picture."
    ),
    "face_tilted": "Your head is tilted. Please keep your head straight and look at the camera.",
    "face_off_edge": (
        "Your head is too close to the edge of the photo. Please take it again with space "
        "around your head and shoulders."
    ),
    "too_detailed": "We could not make this photo small enough for the online form.",
}


class PassportRejected(Exception):
    """The photo cannot become this passport photo; ``message`` is for the customer."""

    def __init__(self, code: str, message: str | None = None) -> None:
        self.code = code
        self.message = message or MESSAGES[code]
        super().__init__(f"{code}: {self.message}")


@dataclass(frozen=True)
class PassportOutput:
    digital: bytes  # JPEG at spec.digital_size, density matching the document's size
    sheet: bytes  # JPEG print sheet at 300 dpi
    preview: bytes  # watermarked low-resolution JPEG for guests
    width: int
    height: int
    quality: int  # of the digital JPEG
    copies: int  # on the sheet


@dataclass(frozen=True)
class SheetLayout:
    width: int
    height: int
    columns: int
    rows: int
    gap: int
    left: int
    top: int

    @property
    def copies(self) -> int:
        return self.columns * self.rows


# --- Cascades -----------------------------------------------------------------------------


@cache
def _cascade(name: str) -> cv2.CascadeClassifier:
    """Loaded once per process, on first use (a worker that never makes passports never
    pays for it). Celery's prefork workers are processes, so nothing is shared."""
    classifier = cv2.CascadeClassifier(cv2.data.haarcascades + name)  # type: ignore[attr-defined]
    if classifier.empty():
        raise RuntimeError(f"OpenCV cascade {name} could not be loaded")
    return classifier


def _detect(
    gray: npt.NDArray[np.uint8],
    cascade: str,
    *,
    scale: float,
    neighbours: int,
    min_side: int,
    max_side: int | None = None,
) -> list[Box]:
    classifier = _cascade(cascade)
    limit = (max_side, max_side) if max_side else (0, 0)
    found = classifier.detectMultiScale(
        gray, scaleFactor=scale, minNeighbors=neighbours, minSize=(min_side, min_side),
        maxSize=limit,
    )  # fmt: skip
    return [(float(x), float(y), float(w), float(h)) for x, y, w, h in found]


# --- Decoding -----------------------------------------------------------------------------


@contextmanager
def _decoding() -> Iterator[None]:
    """Decompression-bomb warnings become errors; decoder failures become rejections."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise PassportRejected("too_large") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise PassportRejected("unreadable") from exc


@dataclass
class _Source:
    """The photo decoded at 1/scale in its stored orientation, and how to turn it upright."""

    data: bytes
    image: Image.Image
    scale: int
    orientation: int
    full_size: tuple[int, int]  # stored, full resolution

    @property
    def turned(self) -> bool:
        return self.orientation in (5, 6, 7, 8)

    @property
    def size(self) -> tuple[int, int]:
        """Upright size at the decoded scale."""
        width, height = self.image.size
        return (height, width) if self.turned else (width, height)

    @cached_property
    def gray(self) -> Image.Image:
        """Grayscale of the decoded image (stored orientation), made once for all searches."""
        return self.image if self.image.mode == "L" else self.image.convert("L")

    def upright(self, img: Image.Image) -> Image.Image:
        method = _TRANSPOSE.get(self.orientation)
        return img.transpose(method) if method is not None else img

    def stored_rect(self, rect: Rect) -> Rect:
        """The rectangle of the decoded stored image that shows upright *rect*."""
        width, height = self.image.size
        left, top, right, bottom = rect
        corners = [
            _to_stored(x, y, self.orientation, width, height)
            for x, y in ((left, top), (right, bottom))
        ]
        xs, ys = [c[0] for c in corners], [c[1] for c in corners]
        return min(xs), min(ys), max(xs), max(ys)


def _to_stored(
    x: float, y: float, orientation: int, width: int, height: int
) -> tuple[float, float]:
    """Map an upright point to the stored image (width, height: the stored size)."""
    return {
        1: (x, y),
        2: (width - x, y),
        3: (width - x, height - y),
        4: (x, height - y),
        5: (y, x),
        6: (y, height - x),
        7: (width - y, height - x),
        8: (width - y, x),
    }.get(orientation, (x, y))


def _open(data: bytes) -> tuple[Image.Image, int]:
    img = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    orientation = img.getexif().get(_ORIENTATION_TAG, 1)
    return img, orientation if orientation in range(1, 9) else 1


def _pick_scale(upright: tuple[int, int], needed_height: float) -> int:
    """The largest draft reduction whose upright height is still at least *needed_height*."""
    for scale in DRAFT_SCALES:
        if upright[1] / scale >= needed_height:
            return scale
    return 1


def _decode(data: bytes, scale: int, opened: tuple[Image.Image, int] | None = None) -> _Source:
    img, orientation = opened or _open(data)
    full_size = img.size
    if scale > 1 and img.format == "JPEG":
        # Asking for exactly 1/scale of each side makes draft() choose that reduction.
        img.draft("RGB", (full_size[0] // scale, full_size[1] // scale))
        scale = round(full_size[0] / img.size[0])
    else:
        scale = 1  # PNG and WebP decode at full size (their caps were checked upstream)
    img.load()
    return _Source(data, img, scale, orientation, full_size)


def _first_decode(data: bytes, spec: DocumentSpec, size: tuple[int, int]) -> _Source:
    img, orientation = opened = _open(data)
    width, height = img.size
    upright = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
    needed = size[1] * spec.head_target / (ASSUMED_HEAD_SHARE * DRAFT_UPSCALE_OK)
    return _decode(data, _pick_scale(upright, needed), opened)


# --- Finding the face ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Face:
    box: Box  # upright, in the decoded image's pixels
    eyes: _Eyes | None

    @property
    def centre_x(self) -> float:
        if self.eyes:
            return (self.eyes[0][0] + self.eyes[1][0]) / 2
        return self.box[0] + self.box[2] / 2


def _gray_upright(source: _Source, long_side: int) -> tuple[npt.NDArray[np.uint8], float]:
    """An upright grayscale copy about *long_side* long, and its size factor to the source."""
    gray = source.gray
    factor = max(1, round(max(gray.size) / long_side))
    if factor > 1:
        gray = gray.reduce(factor)
    return np.asarray(source.upright(gray)), float(factor)


def _scale_box(box: Box, factor: float) -> Box:
    return box[0] * factor, box[1] * factor, box[2] * factor, box[3] * factor


def _candidates(source: _Source) -> list[Box]:
    """The fast search: where faces of passport size may be (cheap, over-eager).

    A Haar search with a coarse size step on a small copy, keeping every window that
    passes the cascade (no neighbour vote): a face always leaves a few, and clusters of
    them are the candidates that _refine then confirms or drops. Voting here instead
    (minNeighbors) would need a finer size step, a larger copy and twice the time to
    stay as reliable.
    """
    gray, factor = _gray_upright(source, DETECT_SIDE)
    short = min(gray.shape)
    min_side = max(DETECT_MIN, round(short * DETECT_MIN_SHARE))
    windows = _detect(
        gray, FACE_CASCADE, scale=DETECT_STEP, neighbours=0, min_side=min_side, max_side=short
    )
    return [_scale_box(box, factor) for box in _clusters(windows)]


def _clusters(boxes: list[Box]) -> list[Box]:
    """Average boxes that overlap a lot (centres within half a box, similar sizes)."""
    groups: list[list[Box]] = []
    for box in sorted(boxes, key=lambda b: -b[2]):
        for group in groups:
            x, y, w, _ = _mean_box(group)
            near = abs(box[0] + box[2] / 2 - x - w / 2) < w / 2
            near = near and abs(box[1] + box[3] / 2 - y - w / 2) < w / 2
            if near and 0.66 < box[2] / w < 1.5:
                group.append(box)
                break
        else:
            groups.append([box])
    return [_mean_box(group) for group in groups]


def _mean_box(boxes: list[Box]) -> Box:
    count = len(boxes)
    x, y, w, h = (sum(box[i] for box in boxes) / count for i in range(4))
    return x, y, w, h


def _turned_face_present(source: _Source) -> bool:
    """Whether a face appears in turned copies: a tilted head rather than no head."""
    gray, _ = _gray_upright(source, DETECT_SIDE)
    short = min(gray.shape)
    min_side = max(DETECT_MIN, round(short * DETECT_MIN_SHARE))
    for degrees in TILT_ANGLES:
        turned = _rotated(gray, degrees)
        if _detect(turned, FACE_CASCADE, scale=1.1, neighbours=3, min_side=min_side):
            return True
    return False


def _small_faces(source: _Source) -> list[Box]:
    """The slow search, on a larger copy: only run when the fast one found nothing."""
    gray, factor = _gray_upright(source, SMALL_FACE_SIDE)
    found = _detect(gray, FACE_CASCADE, scale=1.1, neighbours=5, min_side=SMALL_FACE_MIN)
    return [_scale_box(box, factor) for box in found]


def _confirmed(source: _Source, boxes: list[Box]) -> list[_Face]:
    """The candidates the close-up search confirms, measured; one per face."""
    faces: list[_Face] = []
    for box in boxes:
        face = _refine(source, box)
        if face is not None and not any(_same(face.box, other.box) for other in faces):
            faces.append(face)
    return faces


def _same(a: Box, b: Box) -> bool:
    dx = abs(a[0] + a[2] / 2 - b[0] - b[2] / 2)
    dy = abs(a[1] + a[3] / 2 - b[1] - b[3] / 2)
    return dx < a[2] / 2 and dy < a[3] / 2


def _find_faces(source: _Source) -> list[_Face]:
    """Faces in the upright decoded image's pixels; PassportRejected for a tilted head.

    The fast search only looks for faces of passport size (DETECT_MIN_SHARE of the short
    side or more), so a much smaller second face next to a large one goes unnoticed;
    faces of similar size are all found. A head tilted by more than ~15 degrees escapes
    the upright search: it is looked for in turned copies before the search for small
    faces, whose chance hits (on clothes, say) must not turn "tilted" into "too small".
    """
    faces = _confirmed(source, _candidates(source))
    if faces:
        return faces
    if _turned_face_present(source):
        raise PassportRejected("face_tilted")
    return _confirmed(source, _small_faces(source))


def _rotated(gray: npt.NDArray[np.uint8], degrees: float) -> npt.NDArray[np.uint8]:
    height, width = gray.shape
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    return np.asarray(
        cv2.warpAffine(gray, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE),
        np.uint8,
    )


def _region(source: _Source, img: Image.Image, rect: Rect) -> Image.Image:
    """Upright *rect* (inside the image) of *img*, a same-size copy of the stored image."""
    left, top, right, bottom = source.stored_rect(rect)
    box = (round(left), round(top), round(right), round(bottom))
    return source.upright(img.crop(box))


def _refine(source: _Source, box: Box) -> _Face | None:
    """Confirm a candidate and measure it on a close-up with a fine size step; find its
    eyes there. None when the close-up shows no face.

    The fast search steps sizes by 25%, so its box may be off by ~10%: too much for specs
    that allow +-6% of head height. The close-up search only tries sizes near it, on a
    copy where the face is about REFINE_FACE wide, so it costs a few milliseconds.
    """
    x, y, w, h = box
    width, height = source.size
    margin = REFINE_MARGIN * w
    rect = (
        max(0.0, x - margin),
        max(0.0, y - margin),
        min(float(width), x + w + margin),
        min(float(height), y + h + margin),
    )
    zoom = REFINE_FACE / w
    close = _region(source, source.gray, rect)
    size = (max(1, round(close.width * zoom)), max(1, round(close.height * zoom)))
    gray = np.asarray(close.resize(size, Image.Resampling.BILINEAR))
    found = _detect(
        gray,
        FACE_CASCADE,
        scale=REFINE_STEP,
        neighbours=REFINE_VOTES,
        min_side=round(REFINE_FACE * 0.75),
        max_side=round(REFINE_FACE * 1.33),
    )
    if not found:
        return None
    centre = (x - rect[0] + w / 2) * zoom, (y - rect[1] + h / 2) * zoom
    local = min(found, key=lambda c: math.dist(centre, (c[0] + c[2] / 2, c[1] + c[3] / 2)))
    eyes = _find_eyes(gray, local) or _turned_eyes(gray, local)

    def back(px: float, py: float) -> tuple[float, float]:
        return rect[0] + px / zoom, rect[1] + py / zoom

    refined = (*back(local[0], local[1]), local[2] / zoom, local[3] / zoom)
    if eyes is None:
        return _Face(refined, None)
    return _Face(refined, (back(*eyes[0]), back(*eyes[1])))


def _find_eyes(gray: npt.NDArray[np.uint8], face: Box) -> _Eyes | None:
    """Centres of the left and right eye (in *gray*'s pixels) when both are found."""
    x, y, w, h = (round(v) for v in face)
    top, bottom = max(0, y + round(0.2 * h)), max(0, y + round(0.55 * h))
    left, right = max(0, x), max(0, x + w)
    strip = np.ascontiguousarray(gray[top:bottom, left:right])
    if strip.size == 0:
        return None
    # Eyes are about a quarter of the face's width: only sizes near that are tried.
    found = _detect(
        strip,
        EYE_CASCADE,
        scale=1.15,
        neighbours=3,
        min_side=max(DETECT_MIN, round(w * 0.18)),
        max_side=max(DETECT_MIN + 1, round(w * 0.32)),
    )
    middle = w / 2
    sides: dict[bool, list[Box]] = {True: [], False: []}
    for eye in found:
        sides[eye[0] + eye[2] / 2 < middle].append(eye)
    if not sides[True] or not sides[False]:
        return None

    def centre(eye: Box) -> tuple[float, float]:
        return left + eye[0] + eye[2] / 2, top + eye[1] + eye[3] / 2

    # Of several candidates on a side, the largest: eyebrows and nostrils come out smaller.
    return (
        centre(max(sides[True], key=lambda e: e[2])),
        centre(max(sides[False], key=lambda e: e[2])),
    )


def _turned_eyes(gray: npt.NDArray[np.uint8], face: Box) -> _Eyes | None:
    """Eyes found once the close-up is turned (the eye cascade, like the face one, misses
    eyes tilted by more than ~15 degrees), mapped back to the close-up's pixels."""
    centre = (face[0] + face[2] / 2, face[1] + face[3] / 2)
    for degrees in EYE_TURNS:
        matrix = cv2.getRotationMatrix2D(centre, degrees, 1.0)
        size = (gray.shape[1], gray.shape[0])
        turned = cv2.warpAffine(gray, matrix, size, borderMode=cv2.BORDER_REPLICATE)
        eyes = _find_eyes(np.asarray(turned, np.uint8), face)
        if eyes is not None:
            back = cv2.invertAffineTransform(matrix)
            points = np.array(eyes) @ back[:, :2].T + back[:, 2]
            return (float(points[0, 0]), float(points[0, 1])), (
                float(points[1, 0]),
                float(points[1, 1]),
            )
    return None


def _locate_face(source: _Source) -> _Face:
    faces = _find_faces(source)
    if not faces:
        raise PassportRejected("no_face")
    if len(faces) > 1:
        raise PassportRejected("several_faces")
    face = faces[0]
    if face.eyes is not None:
        (lx, ly), (rx, ry) = face.eyes
        if abs(math.degrees(math.atan2(ry - ly, rx - lx))) > MAX_TILT_DEGREES:
            raise PassportRejected("face_tilted")
    return face


# --- The crop -----------------------------------------------------------------------------


def head_height(face_box: Box) -> float:
    """Crown-to-chin height estimated from a face box (same pixels)."""
    return face_box[3] * HEAD_PER_FACE


def crop_rect(face: _Face, spec: DocumentSpec) -> Rect:
    """Where the photo is cut, in the upright decoded image's pixels.

    The head's height lands in the middle of the spec's range, the face is centred
    between the eyes (or on the face box), and the crown sits TOP_SHARE of the spare
    height below the top edge.
    """
    _, y, _, h = face.box
    head = head_height(face.box)
    chin = y + h * (1 + CHIN_BELOW_FACE)
    crop_h = head / spec.head_target
    crop_w = crop_h * spec.width_mm / spec.height_mm
    top = chin - head - TOP_SHARE * (crop_h - head)
    left = face.centre_x - crop_w / 2
    return left, top, left + crop_w, top + crop_h


def _check_room(rect: Rect, size: tuple[int, int]) -> None:
    left, top, right, bottom = rect
    spare_w, spare_h = (right - left) * MAX_PAD_SHARE, (bottom - top) * MAX_PAD_SHARE
    width, height = size
    if left < -spare_w or right > width + spare_w or top < -spare_h or bottom > height + spare_h:
        raise PassportRejected("face_off_edge")


def _finer_source(source: _Source, rect: Rect, out_height: int) -> tuple[_Source, Rect]:
    """Decode again at a finer scale when the crop would be enlarged too much."""
    crop_h = rect[3] - rect[1]
    if crop_h * DRAFT_UPSCALE_OK >= out_height or source.scale == 1:
        return source, rect
    full_crop_h = crop_h * source.scale
    scale = next(
        (
            s
            for s in DRAFT_SCALES
            if s < source.scale and full_crop_h / s * DRAFT_UPSCALE_OK >= out_height
        ),
        1,
    )
    finer = _decode(source.data, scale)
    factor = source.scale / finer.scale
    return finer, (rect[0] * factor, rect[1] * factor, rect[2] * factor, rect[3] * factor)


def _cut(source: _Source, rect: Rect, size: tuple[int, int]) -> Image.Image:
    """Cut upright *rect* from the decoded image and scale it to *size*; white beyond edges.

    Cut in the stored orientation and turned afterwards: only the small result is turned.
    """
    width, height = source.size
    left, top, right, bottom = rect
    inside = (max(0.0, left), max(0.0, top), min(float(width), right), min(float(height), bottom))
    part = _rgb(_region(source, source.image, inside))
    if inside != rect:  # partly outside the photo: extend with white
        canvas = Image.new("RGB", (round(right - left), round(bottom - top)), WHITE)
        canvas.paste(part, (round(inside[0] - left), round(inside[1] - top)))
        part = canvas
    return _resized(part, size)


def _resized(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Scale with OpenCV (several times faster than Pillow's filters at this size): area
    averaging when shrinking to less than 2/3 (where aliasing would show), bicubic
    otherwise (the usual case: the decode scale was chosen to land near the output)."""
    if img.size == size:
        return img
    method = cv2.INTER_AREA if size[1] / img.height < 2 / 3 else cv2.INTER_CUBIC
    return Image.fromarray(cv2.resize(np.asarray(img), size, interpolation=method), "RGB")


def _rgb(img: Image.Image) -> Image.Image:
    """RGB, with any transparency flattened onto white (the passport background)."""
    if img.mode == "RGB":
        return img
    if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        flat = Image.new("RGB", img.size, WHITE)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return img.convert("RGB")


def passport_crop(
    data: bytes, spec: DocumentSpec, *, size: tuple[int, int] | None = None
) -> Image.Image:
    """The passport photo cut from encoded *data*: RGB, *size* (default the digital size).

    Raises PassportRejected when the photo cannot make a compliant passport photo.
    """
    size = size or spec.digital_size
    with _decoding():
        source = _first_decode(data, spec, size)
        face = _locate_face(source)
        rect = crop_rect(face, spec)
        _check_room(rect, source.size)
        if (rect[3] - rect[1]) * source.scale * MAX_UPSCALE < size[1]:
            raise PassportRejected("face_too_small")
        source, rect = _finer_source(source, rect, size[1])
        photo = _rgb(_cut(source, rect, size))
        icc = source.image.info.get("icc_profile")
    photo = icc_to_srgb(photo, icc)
    photo.info = {}
    return photo


# --- Outputs ------------------------------------------------------------------------------


def encode_digital(photo: Image.Image, spec: DocumentSpec) -> tuple[bytes, int]:
    """The digital JPEG and its quality: the highest that fits the spec's byte limit.

    The density written (JFIF) makes the physical size the document's (px / dpi = inches).
    """
    dpi = (spec.digital_dpi, spec.digital_dpi)
    best = encode(photo, quality=DIGITAL_MAX_QUALITY, dpi=dpi)
    limit = spec.digital_max_bytes
    if limit is None or len(best) <= limit:
        return best, DIGITAL_MAX_QUALITY
    # Too big: optimised Huffman tables (~5% smaller, slower) and a lower quality.
    low, high, found = DIGITAL_MIN_QUALITY, DIGITAL_MAX_QUALITY - 1, None
    while low <= high:  # size grows with quality: binary search for the last fit
        quality = (low + high) // 2
        data = encode(photo, quality=quality, dpi=dpi, optimize=True)
        if len(data) <= limit:
            found, low = (data, quality), quality + 1
        else:
            high = quality - 1
    if found is None:
        raise PassportRejected("too_detailed")
    return found


def sheet_layout(photo_size: tuple[int, int], paper: str = "4x6") -> SheetLayout:
    """How many copies fit on *paper*, either way round, with or without gaps.

    Gaps (with a cut guide in each) are preferred; going gapless is worth it only when it
    fits more copies (2 x 2 in on 4 x 6 in: 6 instead of 2), and the guides are then drawn
    on the shared edges, where the cut goes anyway.
    """
    if paper not in PAPERS:
        raise ValueError(f"unknown paper {paper!r}; known: {', '.join(PAPERS)}")
    long, short = PAPERS[paper]
    width, height = photo_size
    best: SheetLayout | None = None
    for sheet_w, sheet_h in ((long, short), (short, long)):
        for gap, margin in ((SHEET_GAP, SHEET_MARGIN), (0, 0)):
            columns = (sheet_w - 2 * margin + gap) // (width + gap)
            rows = (sheet_h - 2 * margin + gap) // (height + gap)
            if columns < 1 or rows < 1:
                continue
            left = (sheet_w - columns * width - (columns - 1) * gap) // 2
            top = (sheet_h - rows * height - (rows - 1) * gap) // 2
            layout = SheetLayout(sheet_w, sheet_h, columns, rows, gap, left, top)
            if best is None or layout.copies > best.copies:
                best = layout
    if best is None:
        raise ValueError(f"a {width}x{height} photo does not fit on {paper} paper")
    return best


def print_sheet(photo: Image.Image, spec: DocumentSpec, paper: str = "4x6") -> Image.Image:
    """A print sheet (300 dpi) tiled with copies of *photo* and thin grey cut guides."""
    if photo.size != spec.print_px:
        photo = photo.resize(spec.print_px, Image.Resampling.LANCZOS)
    layout = sheet_layout(photo.size, paper)
    sheet = Image.new("RGB", (layout.width, layout.height), WHITE)
    step_x, step_y = photo.width + layout.gap, photo.height + layout.gap
    for column in range(layout.columns):
        for row in range(layout.rows):
            sheet.paste(photo, (layout.left + column * step_x, layout.top + row * step_y))
    _draw_guides(sheet, layout, photo.size)
    return sheet


def _guide_positions(start: int, count: int, side: int, gap: int) -> list[int]:
    """Where cut lines go along one axis: each photo edge, or the middle of each gap."""
    edges = [start - (gap + 1) // 2]
    for n in range(1, count):
        edges.append(start + n * (side + gap) - (gap + 1) // 2)
    edges.append(start + count * side + (count - 1) * gap + gap // 2)
    return edges


def _draw_guides(sheet: Image.Image, layout: SheetLayout, size: tuple[int, int]) -> None:
    draw = ImageDraw.Draw(sheet)
    last_x, last_y = layout.width - 1, layout.height - 1
    xs = _guide_positions(layout.left, layout.columns, size[0], layout.gap)
    ys = _guide_positions(layout.top, layout.rows, size[1], layout.gap)
    for x in xs:
        x = min(max(x, 0), last_x)
        draw.line([(x, 0), (x, last_y)], fill=GUIDE_GREY, width=1)
    for y in ys:
        y = min(max(y, 0), last_y)
        draw.line([(0, y), (last_x, y)], fill=GUIDE_GREY, width=1)


def passport_make(
    data: bytes, spec: DocumentSpec, *, paper: str = "4x6", preview_text: str = PREVIEW_TEXT
) -> PassportOutput:
    """Everything a passport order delivers, from the uploaded photo's bytes."""
    digital_size, print_size = spec.digital_size, spec.print_px
    larger = max(digital_size, print_size, key=lambda s: s[0] * s[1])
    photo = passport_crop(data, spec, size=larger)
    digital_photo = photo if larger == digital_size else _scaled(photo, digital_size)
    print_photo = photo if larger == print_size else _scaled(photo, print_size)
    digital, quality = encode_digital(digital_photo, spec)
    layout = sheet_layout(print_size, paper)
    sheet = encode(
        print_sheet(print_photo, spec, paper), quality=SHEET_QUALITY, dpi=(PRINT_DPI, PRINT_DPI)
    )
    preview = encode(watermark_preview(digital_photo, preview_text, PREVIEW_SIDE), quality=80)
    return PassportOutput(
        digital=digital,
        sheet=sheet,
        preview=preview,
        width=digital_size[0],
        height=digital_size[1],
        quality=quality,
        copies=layout.copies,
    )


def _scaled(photo: Image.Image, size: tuple[int, int]) -> Image.Image:
    return photo.resize(size, Image.Resampling.LANCZOS)


def measure_face(img: Image.Image) -> Box | None:
    """The face box in an upright image, measured exactly as passport_crop measures it
    (None unless there is exactly one face): for tests and staff checks of a finished photo.
    """
    source = _Source(b"", img, 1, 1, img.size)
    faces = _confirmed(source, _candidates(source)) or _confirmed(source, _small_faces(source))
    return faces[0].box if len(faces) == 1 else None
