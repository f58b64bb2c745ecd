"""PNG visualisations with Pillow only: 2-D scatter plots for toy mixtures and image grids.

No matplotlib on purpose: Pillow is already a dependency, and the plots needed for GAN monitoring
(points in a box, a tiled grid of samples) are a few array operations.
"""

from __future__ import annotations

import math
import os
import pathlib

import jax
import numpy as np
from PIL import Image, ImageDraw, ImageFont

ArrayLike = np.ndarray | jax.Array

REAL_COLOR = (190, 190, 190)  # light grey: real data is the backdrop.
FAKE_COLOR = (31, 119, 180)  # dark blue: generated samples.
MEAN_COLOR = (214, 39, 40)  # red crosses: mode centres.
FRAME_COLOR = (0, 0, 0)
TEXT_COLOR = (0, 0, 0)
BACKGROUND = (255, 255, 255)


def _as_points(points: ArrayLike | None, name: str) -> np.ndarray | None:
    if points is None:
        return None
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{name} must have shape [N, 2], got {arr.shape}")
    return arr


def _auto_bounds(*point_sets: np.ndarray | None) -> tuple[float, float]:
    """A square window around the first non-empty point set, padded by 20% of its span."""
    for pts in point_sets:
        if pts is not None and np.isfinite(pts).any():
            finite = pts[np.isfinite(pts).all(axis=1)]
            lo, hi = float(finite.min()), float(finite.max())
            pad = 0.2 * (hi - lo) if hi > lo else 1.0
            return lo - pad, hi + pad
    return -1.0, 1.0


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=max(8, size))


def scatter_png(
    path: str | os.PathLike,
    fake: ArrayLike,
    real: ArrayLike | None = None,
    *,
    means: ArrayLike | None = None,
    bounds: tuple[float, float] | None = None,
    size: int = 512,
    title: str | None = None,
) -> None:
    """Writes a ``size`` x ``size`` RGB PNG scattering 2-D points in a square window.

    Real points are drawn first in light grey, generated points on top in dark blue, mode centres
    as red crosses, inside a black axes frame labelled with the window bounds. ``bounds=(lo, hi)``
    is used for both axes (equal aspect); None derives it from ``means`` (else ``real``, else
    ``fake``) padded by 20%. Points outside the window or non-finite are not drawn.
    """
    fake_pts = _as_points(fake, "fake")
    real_pts = _as_points(real, "real")
    mean_pts = _as_points(means, "means")
    lo, hi = bounds if bounds is not None else _auto_bounds(mean_pts, real_pts, fake_pts)
    if not hi > lo:
        raise ValueError(f"bounds must satisfy lo < hi, got {(lo, hi)}")

    font_px = max(8, size // 40)
    font = _font(font_px)
    margin = max(4, size // 16)
    top = margin + (font_px + 4 if title else 0)
    bottom = margin + font_px + 4  # room for bound labels and the legend.
    side = size - max(top + bottom, 2 * margin)  # square plot area.
    left = (size - side) // 2

    image = Image.new("RGB", (size, size), BACKGROUND)
    draw = ImageDraw.Draw(image)

    def to_pixels(pts: np.ndarray) -> np.ndarray:
        """Maps data coords to integer pixel coords (y up), dropping points outside the window."""
        inside = np.isfinite(pts).all(axis=1) & (pts >= lo).all(axis=1) & (pts <= hi).all(axis=1)
        pts = pts[inside]
        scale = (side - 1) / (hi - lo)
        cols = left + (pts[:, 0] - lo) * scale
        rows = top + (hi - pts[:, 1]) * scale
        return np.rint(np.stack([cols, rows], axis=1)).astype(np.int64)

    def dots(pts: np.ndarray | None, color: tuple[int, int, int], radius: int) -> None:
        if pts is None or len(pts) == 0:
            return
        pix = to_pixels(pts)
        # ImageDraw.point draws a whole coordinate list in C: one call per offset of a small disk.
        for dx in range(-radius, radius + 1):
            for dy in range(-radius, radius + 1):
                if dx * dx + dy * dy <= radius * radius:
                    draw.point((pix + np.array([dx, dy])).ravel().tolist(), fill=color)

    radius = max(1, size // 256)
    dots(real_pts, REAL_COLOR, radius)
    dots(fake_pts, FAKE_COLOR, radius)
    if mean_pts is not None:
        arm = max(2, size // 100)  # thin and small, so the real cloud stays visible.
        for c, r in to_pixels(mean_pts).tolist():  # K <= a few dozen modes.
            draw.line([(c - arm, r), (c + arm, r)], fill=MEAN_COLOR)
            draw.line([(c, r - arm), (c, r + arm)], fill=MEAN_COLOR)

    draw.rectangle([left - 1, top - 1, left + side, top + side], outline=FRAME_COLOR)
    label_y = top + side + 3
    draw.text((left, label_y), f"{lo:g}", fill=TEXT_COLOR, font=font)
    draw.text((left + side, label_y), f"{hi:g}", fill=TEXT_COLOR, font=font, anchor="ra")
    legend = [("generated", FAKE_COLOR)] + ([("real", REAL_COLOR)] if real_pts is not None else [])
    legend += [("modes", MEAN_COLOR)] if mean_pts is not None else []
    x = left + side // 4
    for text, color in legend:  # a colour swatch, then the label.
        draw.rectangle([x, label_y + 2, x + font_px - 4, label_y + font_px - 2], fill=color)
        x += font_px
        draw.text((x, label_y), text, fill=TEXT_COLOR, font=font)
        x += int(draw.textlength(text, font=font)) + font_px
    if title:
        draw.text((size // 2, margin // 2), title, fill=TEXT_COLOR, font=font, anchor="ma")

    _save(image, path)


def to_uint8(images: ArrayLike) -> np.ndarray:
    """Maps floats in [-1, 1] to uint8: -1 -> 0, 1 -> 255, rounded and clipped; NaN -> 128."""
    x = np.nan_to_num(np.asarray(images, dtype=np.float32), nan=0.0, posinf=1.0, neginf=-1.0)
    return np.clip(np.rint((x + 1.0) * 127.5), 0, 255).astype(np.uint8)


def image_grid(
    images: ArrayLike, nrow: int = 8, padding: int = 2, pad_value: float = -1.0
) -> np.ndarray:
    """Tiles [N, H, W, C] images in [-1, 1] into one uint8 [H', W', C] image.

    Same layout as ``torchvision.utils.make_grid``: ``nrow`` images per row (fewer if N < nrow),
    ceil(N / nrow) rows, ``padding`` pixels of ``pad_value`` (default -1 -> black) between and
    around tiles, so H' = rows * (H + padding) + padding and W' = cols * (W + padding) + padding.
    Unlike torchvision, grayscale (C=1) stays one channel (PNG mode "L") instead of being
    expanded to RGB.
    """
    # Hand-written because torchvision (make_grid) is not a dependency; it is a reshape.
    u8 = to_uint8(images)
    if u8.ndim != 4 or u8.shape[-1] not in (1, 3) or u8.shape[0] == 0:
        raise ValueError(f"images must have shape [N>0, H, W, C in (1, 3)], got {u8.shape}")
    if nrow < 1 or padding < 0:
        raise ValueError(f"need nrow >= 1 and padding >= 0, got {nrow=}, {padding=}")
    n, h, w, c = u8.shape
    cols = min(nrow, n)
    rows = math.ceil(n / cols)
    fill = to_uint8(np.float32(pad_value))
    tiles = np.full((rows * cols, h + padding, w + padding, c), fill, dtype=np.uint8)
    tiles[:n, :h, :w] = u8  # each tile carries its right/bottom padding.
    grid = tiles.reshape(rows, cols, h + padding, w + padding, c).transpose(0, 2, 1, 3, 4)
    grid = grid.reshape(rows * (h + padding), cols * (w + padding), c)
    return np.pad(grid, ((padding, 0), (padding, 0), (0, 0)), constant_values=fill)


def save_image_grid(
    path: str | os.PathLike,
    images: ArrayLike,
    nrow: int = 8,
    *,
    padding: int = 2,
    min_size: int = 256,
) -> np.ndarray:
    """Writes ``image_grid(images, nrow, padding)`` as a PNG and returns the written uint8 array.

    Tiny grids are upscaled by the smallest integer factor (nearest neighbour, so pixels stay
    crisp) that makes the longer side at least ``min_size`` pixels.
    """
    grid = image_grid(images, nrow, padding)
    h, w, c = grid.shape
    factor = max(1, math.ceil(min_size / max(h, w)))
    image = Image.fromarray(grid[..., 0] if c == 1 else grid, mode="L" if c == 1 else "RGB")
    if factor > 1:
        image = image.resize((w * factor, h * factor), Image.Resampling.NEAREST)
    _save(image, path)
    out = np.asarray(image)
    return out[..., None] if c == 1 else out


def _save(image: Image.Image, path: str | os.PathLike) -> None:
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG")
