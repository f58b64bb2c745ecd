"""The offline default dataset: scikit-learn's 8x8 handwritten digits.

Origin: the test part of the UCI "Optical Recognition of Handwritten Digits" data set (optdigits;
E. Alpaydin and C. Kaynak, 1998, https://archive.ics.uci.edu/dataset/80), shipped inside scikit-learn
as `sklearn.datasets.load_digits`: 1797 grey images of 8x8 pixels with integer values 0..16 (white
strokes on black, like MNIST) and labels 0..9. It needs no download and no data directory, so every
command in this codebase runs on a fresh machine without network.
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image

NAME = "digits"
NUM_CLASSES = 10
NATIVE_RESOLUTION = 8
MAX_VALUE = 16.0  # Pixel values in load_digits are integers 0..16.


@functools.lru_cache(maxsize=8)
def _load_digits_cached(resolution: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits  # Imported lazily: sklearn's import is slow-ish.

    digits = load_digits()
    raw = np.asarray(digits.images, dtype=np.float32)  # [N, 8, 8] in [0, 16]
    labels = np.asarray(digits.target, dtype=np.int32)
    if resolution == NATIVE_RESOLUTION:
        resized = raw
    else:
        # PIL's float ('F') mode keeps the 17 grey levels exact before interpolation; bicubic for
        # the usual up-sampling (8 -> 28/32/64), and PIL antialiases when down-sampling.
        resized = np.stack([
            np.asarray(Image.fromarray(im).resize(
                (resolution, resolution), Image.Resampling.BICUBIC))
            for im in raw
        ])
    images = np.clip(resized / (MAX_VALUE / 2.0) - 1.0, -1.0, 1.0).astype(np.float32)
    images = images[..., None]
    images.setflags(write=False)  # Shared through the cache: must not be modified in place.
    labels.setflags(write=False)
    return images, labels


def load_digits_images(resolution: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Returns all 1797 digits resized to `resolution`, scaled to [-1, 1].

    Args:
      resolution: output height and width in pixels (>= 1).

    Returns:
      images: float32 [1797, resolution, resolution, 1] in [-1, 1] (read-only, cached).
      labels: int32 [1797] in 0..9 (read-only, cached).
    """
    if not isinstance(resolution, (int, np.integer)) or resolution < 1:
        raise ValueError(f"resolution must be a positive int, got {resolution!r}")
    return _load_digits_cached(int(resolution))
