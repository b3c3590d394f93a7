"""Synthetic dirty document pages: clean text rendered with real fonts, then degraded like a scan of a used page.

Everything is a pure function of a ``numpy.random.Generator`` (and its inputs), so a page is a deterministic
function of its seed: ``synth_pair(seed)`` always returns the same (noisy, clean) pair. Pages are gray, float32,
H x W, display-referred [0, 1] (white paper is 1.0, full ink is 0.0), the same range the document model sees.

Degradations (each a pure function): paper tone and texture, stains, coffee rings, folds, crumples, shadows,
uneven lighting, bleed-through of the other side, low ink, blur, noise and JPEG. They are written here in numpy
(with OpenCV for blurs and resizes) rather than with augraphy, which clashes with opencv-headless and downloads
files at run time.

Fonts come from Debian packages (``scripts/apt-packages.txt``): Latin Modern (closest to the scanned LaTeX pages
of the NoisyOffice data), DejaVu, Liberation, FreeFont and the URW base 35.
"""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

import cv2  # noqa: E402
import numpy as np
from PIL import Image as PILImage  # noqa: E402
from PIL import ImageDraw, ImageFont  # noqa: E402

#: Font files looked for, in Debian's install locations. Missing ones are skipped; at least one must exist.
FONT_FILES: tuple[str, ...] = (
    "/usr/share/texmf/fonts/opentype/public/lm/lmroman10-regular.otf",
    "/usr/share/texmf/fonts/opentype/public/lm/lmroman10-italic.otf",
    "/usr/share/texmf/fonts/opentype/public/lm/lmroman10-bold.otf",
    "/usr/share/texmf/fonts/opentype/public/lm/lmsans10-regular.otf",
    "/usr/share/texmf/fonts/opentype/public/lm/lmsans10-oblique.otf",
    "/usr/share/texmf/fonts/opentype/public/lm/lmmono10-regular.otf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSerif-Italic.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSerif-Regular.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSerif-Italic.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationMono-Regular.ttf",
    "/usr/share/fonts/truetype/freefont/FreeSerif.ttf",
    "/usr/share/fonts/truetype/freefont/FreeSans.ttf",
    "/usr/share/fonts/opentype/urw-base35/NimbusRoman-Regular.otf",
    "/usr/share/fonts/opentype/urw-base35/NimbusRoman-Italic.otf",
    "/usr/share/fonts/opentype/urw-base35/NimbusSans-Regular.otf",
    "/usr/share/fonts/opentype/urw-base35/C059-Roman.otf",
    "/usr/share/fonts/opentype/urw-base35/P052-Italic.otf",
    "/usr/share/fonts/opentype/urw-base35/URWBookman-Light.otf",
)

# Words to typeset (our own text, so that pages can ship as samples). Their exact meaning does not matter:
# the model must learn letter shapes and strokes, not language.
_TEXT = (
    "Scanned pages carry the marks of their lives: coffee spilled on a report, a fold from an envelope, the "
    "shadow of a thumb on the glass of the scanner, and the faint text of the other side showing through thin "
    "paper. Restoration removes those marks and keeps every stroke of the letters. A filter that estimates the "
    "background of the page and divides it out is fast and simple, but it cannot tell a dark stain from a bold "
    "heading. A network trained on many examples of dirty and clean pages learns the shapes of letters and the "
    "look of paper. There are several methods to design forms with fields to be filled in, and each of them "
    "relies on text that can be read by people and by machines. The mean filter replaces each pixel by the "
    "average of its neighbours; the median filter is more robust to isolated dark points; morphological "
    "opening removes small objects and keeps large ones. Guides may be printed on a separate sheet, on the form "
    "itself, or in light colours that a scanner can drop. In 1987 the archive held 4,312 boxes of letters, "
    "invoices, minutes (1954-1986) and notes; 27% of them were damaged by water, light or insects."
)
_WORDS = tuple(_TEXT.split())


@lru_cache(maxsize=1)
def available_fonts() -> tuple[str, ...]:
    """The font files of :data:`FONT_FILES` that exist on this machine (raises when there are none)."""
    found = tuple(path for path in FONT_FILES if Path(path).is_file())
    if not found:
        raise FileNotFoundError(
            "no font for synthetic pages: install the Debian packages in scripts/apt-packages.txt "
            "(fonts-lmodern, fonts-dejavu-core, fonts-liberation, ...)"
        )
    return found


@lru_cache(maxsize=256)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


def _words(rng: np.random.Generator, count: int) -> str:
    start = int(rng.integers(0, len(_WORDS)))
    return " ".join(_WORDS[(start + i) % len(_WORDS)] for i in range(count))


# --------------------------------------------------------------------------------------------- clean pages


def render_clean_page(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A clean page: text in one font at one size (sometimes a bold heading, rules or two columns).

    Returns float32 H x W in [0, 1], white paper (1.0) and anti-aliased dark ink. Lines run past the right edge
    now and then, as on the cropped NoisyOffice pages.
    """
    fonts = available_fonts()
    font_path = fonts[int(rng.integers(0, len(fonts)))]
    size = int(rng.integers(12, 42))
    font = _font(font_path, size)
    canvas = PILImage.new("L", (width, height), 255)
    draw = ImageDraw.Draw(canvas)
    ink = int(rng.integers(0, 60))
    line_height = int(size * rng.uniform(1.05, 1.6))
    columns = 2 if width > 360 and size < 22 and rng.random() < 0.25 else 1
    column_width = width // columns
    overflow = rng.random() < 0.6
    y = int(rng.integers(-size // 2, size * 2))
    if rng.random() < 0.3:  # a heading in a bigger, often bold, font
        heading_font = _font(fonts[int(rng.integers(0, len(fonts)))], int(size * rng.uniform(1.3, 1.9)))
        draw.text((int(rng.integers(5, max(6, width // 4))), y), _words(rng, int(rng.integers(2, 6))),
                  font=heading_font, fill=ink)
        y += int(heading_font.size * 1.6)
    for column in range(columns):
        x0 = column * column_width + int(rng.integers(-5, 30))
        right = column_width * (column + 1) - int(rng.integers(5, 30))
        line_y = y
        paragraph_left = int(rng.integers(2, 8))
        while line_y < height:
            indent = int(size * 1.5) if paragraph_left == 0 or line_y == y else 0
            words = _words(rng, 40).split()
            line, x = [], x0 + indent
            for word in words:
                advance = draw.textlength(word + " ", font=font)
                if x + advance > right and not overflow and line:
                    break
                line.append(word)
                x += advance
                if x > width + size:
                    break
            draw.text((x0 + indent, line_y), " ".join(line), font=font, fill=ink)
            line_y += line_height
            paragraph_left -= 1
            if paragraph_left < 0:
                paragraph_left = int(rng.integers(2, 9))
                line_y += int(line_height * rng.uniform(0.0, 0.6))
    if rng.random() < 0.2:  # ruled lines or a box, as on forms
        for _ in range(int(rng.integers(1, 4))):
            ry = int(rng.integers(0, height))
            draw.line((int(rng.integers(0, width // 3)), ry, int(rng.integers(width // 2, width)), ry),
                      fill=ink + int(rng.integers(0, 120)), width=int(rng.integers(1, 3)))
    return np.asarray(canvas, dtype=np.float32) / 255.0


# ----------------------------------------------------------------------------------- degradation fields
# Each returns a multiplicative field (1.0 = no change) of the given shape, or transforms an array.


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], scale: float) -> np.ndarray:
    """Gaussian noise smoothed to features about ``scale`` pixels wide, normalised to zero mean, unit std."""
    h, w = shape
    small = (max(2, int(np.ceil(h / scale)) + 2), max(2, int(np.ceil(w / scale)) + 2))
    field = rng.standard_normal(small).astype(np.float32)
    field = cv2.resize(field, (int(small[1] * scale), int(small[0] * scale)), interpolation=cv2.INTER_CUBIC)
    field = field[:h, :w]
    field -= field.mean()
    return field / (field.std() + 1e-6)


def paper_texture(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Paper tone (off-white to gray) with fibres and mottling."""
    tone = rng.uniform(0.72, 0.97)
    mottle = smooth_noise(rng, shape, rng.uniform(20, 80)) * rng.uniform(0.0, 0.03)
    grain = cv2.GaussianBlur(rng.standard_normal(shape).astype(np.float32), (0, 0), 0.7) * rng.uniform(0.0, 0.03)
    return np.float32(tone) * (1.0 + mottle + grain)


def uneven_lighting(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """A linear gradient plus a broad radial fall-off, like a lamp off to one side."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * xx / w + np.sin(angle) * yy / h)
    ramp = (ramp - ramp.min()) / (np.ptp(ramp) + 1e-6)
    cy, cx = rng.uniform(-0.3, 1.3) * h, rng.uniform(-0.3, 1.3) * w
    radial = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2) / np.hypot(h, w)
    return (1.0 - rng.uniform(0, 0.25) * ramp - rng.uniform(0, 0.25) * radial).astype(np.float32)


def shadow(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """A soft dark band along one edge (the book's spine or the scanner's lid)."""
    h, w = shape
    side = int(rng.integers(0, 4))
    length = h if side < 2 else w
    width = rng.uniform(0.05, 0.35) * length
    distance = np.arange(length, dtype=np.float32)
    if side % 2:
        distance = distance[::-1]
    profile = 1.0 - rng.uniform(0.2, 0.6) * np.exp(-distance / width)
    wobble = 1.0 + 0.1 * smooth_noise(rng, (1, h if side >= 2 else w), 60)[0]
    if side < 2:
        field = profile[:, None] ** wobble[None, :]
    else:
        field = profile[None, :] ** wobble[:, None]
    return field.astype(np.float32)


def _blob_mask(
    rng: np.random.Generator, shape: tuple[int, int], centre: tuple[float, float], radius: float
) -> np.ndarray:
    """A soft irregular blob: a distorted disc (0 outside, 1 inside)."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    distance = np.sqrt((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2) / radius
    distance += 0.35 * smooth_noise(rng, shape, max(4.0, radius / 2))
    softness = rng.uniform(0.03, 0.2)
    return np.clip((1.0 - distance) / softness, 0.0, 1.0)


def stains(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """A few blotches of tea, water or dirt: darker, with a darker rim on some."""
    h, w = shape
    field = np.ones(shape, np.float32)
    for _ in range(int(rng.integers(1, 5))):
        radius = rng.uniform(0.05, 0.4) * min(h, w)
        mask = _blob_mask(rng, shape, (rng.uniform(0, h), rng.uniform(0, w)), radius)
        depth = rng.uniform(0.08, 0.45)
        rim = mask * (1 - mask) * 4 * rng.uniform(0, 0.3)
        field *= 1.0 - depth * mask - rim * depth
    return np.clip(field, 0.2, 1.0)


def coffee_rings(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Rings left by the bottom of a cup: a dark, uneven annulus with a lightly tinted inside."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    field = np.ones(shape, np.float32)
    for _ in range(int(rng.integers(1, 3))):
        radius = rng.uniform(0.15, 0.45) * min(h, w) + 20
        cy, cx = rng.uniform(-0.2, 1.2) * h, rng.uniform(-0.2, 1.2) * w
        distance = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)
        distance += rng.uniform(1, 6) * smooth_noise(rng, shape, rng.uniform(10, 40))
        thickness = rng.uniform(1.5, 8)
        ring = np.exp(-(((distance - radius) / thickness) ** 2))
        strength = rng.uniform(0.2, 0.6) * (0.6 + 0.4 * np.clip(smooth_noise(rng, shape, 50), -1, 1))
        inside = np.clip((radius - distance) / 4, 0, 1) * rng.uniform(0.0, 0.15)
        field *= 1.0 - np.clip(strength * ring + inside, 0, 0.9)
    return field


def folds(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Straight creases: a thin dark line with the paper on one side shaded a little differently."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    field = np.ones(shape, np.float32)
    for _ in range(int(rng.integers(1, 4))):
        angle = rng.uniform(0, np.pi)
        py, px = rng.uniform(0, h), rng.uniform(0, w)
        signed = (xx - px) * np.sin(angle) - (yy - py) * np.cos(angle)
        crease = np.exp(-((signed / rng.uniform(0.8, 3.0)) ** 2)) * rng.uniform(0.1, 0.45)
        side = 1.0 + np.tanh(signed / rng.uniform(5, 60)) * rng.uniform(0.0, 0.06)
        highlight = np.exp(-(((signed - rng.uniform(2, 5)) / 2.0) ** 2)) * rng.uniform(0, 0.08)
        field *= (1.0 - crease + highlight) * side
    return np.clip(field, 0.2, 1.1)


def crumples(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Crumpled paper: a random height field lit from one side (shading from its gradient), with sharp ridges."""
    height = np.zeros(shape, np.float32)
    for scale in (rng.uniform(30, 90), rng.uniform(10, 30)):
        height += np.abs(smooth_noise(rng, shape, scale)) * scale / 30
    gy, gx = np.gradient(height)
    angle = rng.uniform(0, 2 * np.pi)
    light = np.cos(angle) * gx + np.sin(angle) * gy
    light /= np.abs(light).max() + 1e-6
    return (1.0 + light * rng.uniform(0.04, 0.2)).astype(np.float32)


def bleed_through(rng: np.random.Generator, other_ink: np.ndarray) -> np.ndarray:
    """The other side's text seen through the paper: mirrored, blurred and faint (a multiplicative field)."""
    mirrored = other_ink[:, ::-1]
    blurred = cv2.GaussianBlur(mirrored, (0, 0), rng.uniform(0.8, 2.5))
    return (1.0 - rng.uniform(0.05, 0.3) * blurred).astype(np.float32)


def low_ink(rng: np.random.Generator, ink: np.ndarray) -> np.ndarray:
    """Faded, uneven ink coverage with drop-outs (ink is 0 for paper, 1 for full ink)."""
    level = rng.uniform(0.45, 0.9) + 0.1 * smooth_noise(rng, ink.shape, rng.uniform(20, 100))
    dropouts = np.clip(1.0 - 0.6 * np.maximum(0, smooth_noise(rng, ink.shape, 1.5) - 1.0), 0, 1)
    return np.clip(ink * level * dropouts, 0, 1).astype(np.float32)


def blur(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(image, (0, 0), rng.uniform(0.3, 1.3))


def add_noise(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Sensor noise (Gaussian) and, sometimes, dust (salt and pepper)."""
    noisy = image + rng.normal(0, rng.uniform(0.005, 0.05), image.shape).astype(np.float32)
    if rng.random() < 0.3:
        specks = rng.random(image.shape) < rng.uniform(0.0005, 0.004)
        noisy[specks] = rng.choice([0.1, 1.0], size=int(specks.sum())).astype(np.float32)
    return noisy


def jpeg(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Round-trip through JPEG at a random quality (30-90)."""
    quantised = PILImage.fromarray(np.clip(image * 255 + 0.5, 0, 255).astype(np.uint8), "L")
    buffer = io.BytesIO()
    quantised.save(buffer, format="JPEG", quality=int(rng.integers(30, 91)))
    buffer.seek(0)
    return np.asarray(PILImage.open(buffer), dtype=np.float32) / 255.0


# ----------------------------------------------------------------------------------------------- pages

#: (name, probability) of each background degradation in :func:`degrade`.
BACKGROUND_DEGRADATIONS = (
    (uneven_lighting, 0.6),
    (shadow, 0.2),
    (stains, 0.45),
    (coffee_rings, 0.3),
    (folds, 0.35),
    (crumples, 0.4),
)


def degrade(rng: np.random.Generator, clean: np.ndarray, other_side: np.ndarray | None = None) -> np.ndarray:
    """A dirty scan of ``clean`` (gray [0, 1] page); ``other_side`` is a clean page to show through, or None."""
    shape = clean.shape
    ink = 1.0 - clean
    if rng.random() < 0.3:
        ink = low_ink(rng, ink)
    background = paper_texture(rng, shape)
    for degradation, probability in BACKGROUND_DEGRADATIONS:
        if rng.random() < probability:
            background = background * degradation(rng, shape)
    if other_side is not None:
        background = background * bleed_through(rng, 1.0 - other_side)
    # Ink is darker than the paper under it but not always black (toner, print quality).
    ink_darkness = rng.uniform(0.75, 1.0)
    page = background * (1.0 - ink_darkness * ink)
    if rng.random() < 0.5:
        page = blur(rng, page)
    if rng.random() < 0.8:
        page = add_noise(rng, page)
    page = np.clip(page, 0.0, 1.0)
    if rng.random() < 0.4:
        page = jpeg(rng, page)
    return page.astype(np.float32)


def synth_pair(seed: int, height: int | None = None, width: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The (noisy, clean) synthetic page number ``seed``: gray float32 H x W in [0, 1], deterministic.

    Sizes default to a random page between 256 and 560 pixels a side.
    """
    rng = np.random.default_rng([0x5EED_D0C, int(seed)])
    h = int(height or rng.integers(256, 561))
    w = int(width or rng.integers(256, 561))
    clean = render_clean_page(rng, h, w)
    other = render_clean_page(rng, h, w) if rng.random() < 0.3 else None
    noisy = degrade(rng, clean, other)
    return noisy, clean
