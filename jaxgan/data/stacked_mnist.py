"""Stacked MNIST: three random MNIST digits as the R, G, B channels of one image (1000 modes).

Introduced by Metz et al. 2017 ("Unrolled GANs", Sec. 3.3.2) and used by VEEGAN (Srivastava et al.
2017) and PacGAN (Lin et al. 2018) to count the modes a GAN covers: the class of an example is the
digit triple, ``label = 100 * d_R + 10 * d_G + d_B`` in 0..999.

The dataset is a fixed set of ``num_examples`` triples of MNIST indices drawn once from ``seed``
(each digit uniformly and independently from the chosen MNIST split), served through the same
grain pipeline as `jaxgan.data.images` (global shuffle reseeded per epoch, host sharding, prefetch),
so the returned `ImageData` has the same interface: ``info``, ``next()``, ``get_state/set_state``,
and is deterministic per seed.
"""

from __future__ import annotations

import functools

import numpy as np
from absl import logging

from jaxgan.data import idx
from jaxgan.data import images as images_lib

NAME = "stacked_mnist"
NUM_CLASSES = 1000
DEFAULT_NUM_EXAMPLES = 128_000  # Any size works: every example is an independent random triple.
_READ_BATCH = 500  # Divides both MNIST splits (60000 / 10000): reading one epoch drops nothing.


@functools.lru_cache(maxsize=4)
def _load_digits_cached(split: str, resolution: int, data_dir: str | None,
                        manual_dir: str | None, download: bool) -> tuple[np.ndarray, np.ndarray]:
  if manual_dir is not None and idx.find_idx_files(manual_dir, split) is not None:
    # Fast path (no TFDS, no TensorFlow, even when TensorFlow is installed): the IDX files directly,
    # resized (if needed) by the same bicubic resize as the image pipeline, in uint8 as it does.
    raw, labels = idx.load_idx_split(manual_dir, split)
    if resolution != raw.shape[1]:
      raw = np.stack([images_lib._crop_resize(x, resolution)  # pylint: disable=protected-access
                      for x in raw])
    images = raw.astype(np.float32) * np.float32(2.0 / 255.0) - 1.0
  else:
    # One full epoch of the ordinary MNIST pipeline (TFDS or the IDX fallback, resize, scaling).
    data = images_lib.make_image_iterator(
        "mnist", batch_size=_READ_BATCH, resolution=resolution, seed=0, split=split,
        data_dir=data_dir, manual_dir=manual_dir, channels=1, download=download)
    num_batches = data.info.num_examples // _READ_BATCH
    if data.info.num_examples % _READ_BATCH:
      logging.warning("Stacked MNIST uses %d of the %d MNIST %s images.",
                      num_batches * _READ_BATCH, data.info.num_examples, split)
    batches = [next(data) for _ in range(num_batches)]
    images = np.concatenate([b["image"] for b in batches])
    labels = np.concatenate([b["label"] for b in batches])
  images.setflags(write=False)  # Shared through the cache.
  labels.setflags(write=False)
  return images, labels


def load_mnist_digits(split: str = "train", *, resolution: int = 28, data_dir: str | None = None,
                      manual_dir: str | None = None,
                      download: bool = False) -> tuple[np.ndarray, np.ndarray]:
  """The MNIST digits Stacked MNIST is built from: (f32 [N, R, R, 1] in [-1, 1], i32 [N]).

  Reads the four IDX files directly when `manual_dir` holds them (resizing when resolution != 28),
  else goes through `jaxgan.data.images.make_image_iterator("mnist", ...)`. Cached (read-only arrays).
  """
  return _load_digits_cached(split, int(resolution), data_dir, manual_dir, bool(download))


class _StackReader:
  """Maps a batch of example indices to stacked images (a plain class so grain can pickle it)."""

  def __init__(self, digits: np.ndarray, digit_labels: np.ndarray, triples: np.ndarray):
    self.digits, self.digit_labels, self.triples = digits, digit_labels, triples

  def __call__(self, indices: np.ndarray) -> dict[str, np.ndarray]:
    triples = self.triples[np.asarray(indices, np.int64)]  # [B, 3] MNIST indices.
    image = np.concatenate([self.digits[triples[:, c]] for c in range(3)], axis=-1)
    d = self.digit_labels[triples]
    label = (100 * d[:, 0] + 10 * d[:, 1] + d[:, 2]).astype(np.int32)
    return {"image": image, "label": label}


def make_stacked_mnist_iterator(*, batch_size: int, seed: int, resolution: int = 28,
                                split: str = "train", num_examples: int = DEFAULT_NUM_EXAMPLES,
                                data_dir: str | None = None, manual_dir: str | None = None,
                                shard_index: int = 0, shard_count: int = 1,
                                download: bool = False,
                                digits: tuple[np.ndarray, np.ndarray] | None = None
                                ) -> images_lib.ImageData:
  """Stacked MNIST as an infinite, deterministic, resumable iterator of batches.

  Yields ``{"image": f32 [B, R, R, 3] in [-1, 1], "label": i32 [B] in 0..999}``.

  Args:
    batch_size, seed, shard_index, shard_count: as in `make_image_iterator`; `seed` also draws
      the digit triples, so one seed always gives the same dataset in the same order.
    resolution: side of the images (each MNIST digit is resized once).
    split: the MNIST split the digits come from ("train" or "test").
    num_examples: size of the fixed set of triples (one epoch).
    data_dir, manual_dir, download: where MNIST comes from (see `load_mnist_digits`).
    digits: optional (images [N, R, R, 1] in [-1, 1], labels [N]) to stack instead of MNIST
      (tests, or another digit source).
  """
  for arg, value in (("num_examples", num_examples), ("batch_size", batch_size)):
    if not isinstance(value, (int, np.integer)) or value < 1:
      raise ValueError(f"{arg} must be a positive int, got {value!r}")
  if digits is None:
    digits = load_mnist_digits(split, resolution=resolution, data_dir=data_dir,
                               manual_dir=manual_dir, download=download)
  digit_images, digit_labels = np.asarray(digits[0], np.float32), np.asarray(digits[1], np.int32)
  if digit_images.ndim != 4 or digit_images.shape[-1] != 1 or len(digit_images) != len(digit_labels):
    raise ValueError(f"digits must be ([N, R, R, 1], [N]); got {digit_images.shape}, "
                     f"{digit_labels.shape}")
  if digit_images.shape[1] != resolution:
    raise ValueError(f"digits have resolution {digit_images.shape[1]}, expected {resolution}")
  if digit_labels.min() < 0 or digit_labels.max() > 9:
    raise ValueError("digit labels must be in 0..9")

  # The fixed dataset: a pure function of (seed, number of digits, num_examples).
  triples = np.random.default_rng([seed, 0x57AC]).integers(
      0, len(digit_images), size=(int(num_examples), 3))
  reader = _StackReader(digit_images, digit_labels, triples)
  dataset = images_lib._index_pipeline(  # pylint: disable=protected-access
      int(num_examples), reader, batch_size=int(batch_size), seed=int(seed),
      shard_index=int(shard_index), shard_count=int(shard_count), num_threads=1)
  info = images_lib.DatasetInfo(name=NAME, num_classes=NUM_CLASSES, resolution=int(resolution),
                                channels=3, num_examples=int(num_examples))
  order = {"name": NAME, "split": split, "num_examples": int(num_examples),
           "num_digits": len(digit_images), "seed": int(seed), "batch_size": int(batch_size),
           "shard_index": int(shard_index), "shard_count": int(shard_count)}
  return images_lib.ImageData(info, dataset, order)


def load_stacked_arrays(*, seed: int, resolution: int = 28, split: str = "train",
                        num_examples: int = DEFAULT_NUM_EXAMPLES, data_dir: str | None = None,
                        manual_dir: str | None = None, download: bool = False,
                        max_bytes: int | None = None
                        ) -> tuple[np.ndarray, np.ndarray, images_lib.DatasetInfo] | None:
  """The whole fixed Stacked MNIST set (the same triples as the iterator) as arrays, for the device.

  Returns ``(images f32 [N, R, R, 3], labels i32 [N], info)``, or None when they exceed ``max_bytes``.
  """
  info = images_lib.DatasetInfo(name=NAME, num_classes=NUM_CLASSES, resolution=int(resolution),
                                channels=3, num_examples=int(num_examples))
  if max_bytes is not None and images_lib.array_bytes(info) > max_bytes:
    return None
  digit_images, digit_labels = load_mnist_digits(split, resolution=resolution, data_dir=data_dir,
                                                 manual_dir=manual_dir, download=download)
  triples = np.random.default_rng([seed, 0x57AC]).integers(
      0, len(digit_images), size=(int(num_examples), 3))
  batch = _StackReader(np.asarray(digit_images, np.float32), np.asarray(digit_labels, np.int32),
                       triples)(np.arange(int(num_examples)))
  return batch["image"], batch["label"], info
