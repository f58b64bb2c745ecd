"""Image-to-image translation data: paired (pix2pix) and unpaired (CycleGAN) domain pairs.

Datasets (``--dataset``):

| name | kind | A | B | held out |
|---|---|---|---|---|
| ``edges2digits`` | paired | Sobel edge map of a digit | the digit | last 200 embedded digits |
| ``edges2mnist`` | paired | Sobel edge map of an MNIST digit | the digit | MNIST test split |
| ``lowres2mnist`` | paired | the MNIST digit at 1/4 resolution (4x4 mean, blown up) | the digit | MNIST test split |
| ``digits2inverted`` | unpaired | digits (even train indices) | inverted digits (odd indices) | last 200 |
| ``mnist2inverted`` | unpaired | MNIST (even indices) | inverted MNIST (odd indices) | test split |
| ``cycle_gan/<config>`` | unpaired | TFDS ``trainA`` | TFDS ``trainB`` | ``testA`` / ``testB`` |

The embedded digits (``jaxgan.data.embedded``) need nothing; MNIST is read through TFDS or, offline
without TensorFlow, from the four IDX files in ``--manual_dir`` (``jaxgan.data.images``); the TFDS
``cycle_gan/*`` configs (``horse2zebra``, ``facades``, ``maps``, ``monet2photo``, ...) are read with
``tfds.data_source`` from ``--data_dir`` and prepared by TFDS with ``--download``. The unpaired offline
tasks draw A and B from disjoint halves of the training images and sample the two batches
independently, so no B image is the inverse of any A image in the same batch (or anywhere in training).
Their held-out pairs are known (B = -A), so CycleGAN can also be scored against the truth there.

Low resolution (super-resolution, an *ambiguous* paired task: many sharp digits share one 7x7 image, so
an L1-only generator predicts their blurry mean, while the adversarial loss asks for one sharp answer):
the mean of each 4x4 block, repeated back to full size (nearest neighbour).

Edges: Sobel gradient magnitude of the image in [0, 1] (edge-replicated borders), divided by its
per-image maximum, mapped to [-1, 1] (background -1, strongest edge +1).

Batches: ``TranslationBatches.next(step)`` returns ``{"input": [1, B, R, R, C], "target": [1, B, ...]}``
(paired) or ``{"a": ..., "b": ...}`` (unpaired). By default both domains are held on the device and a
step's batch is gathered inside the step (``jaxgan.data.device``: epochs of permutations from
``(seed, step)``; a pair's input and target share indices, the unpaired domains have a stream each).
With ``device=False`` (``--data_on_device=false``) the examples of step t are drawn on the host (without
replacement within a batch) from ``numpy.random.default_rng((seed, shard_index, t))``. Either way the
source has no state and a resumed run sees exactly the batches of an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import numpy as np

from jaxgan.data import embedded
from jaxgan.data.device import MAX_DEVICE_BYTES, DeviceBatches

Reader = Callable[[np.ndarray], np.ndarray]  # record indices -> float32 images [n, R, R, C] in [-1, 1]

TFDS_PREFIX = "cycle_gan/"
EMBEDDED_HELD_OUT = 200


@dataclasses.dataclass(frozen=True)
class Task:
  """One translation dataset: where its images come from and how A and B are made from them."""

  base: str  # "digits", "mnist" or a TFDS cycle_gan config
  paired: bool
  a_transform: str | None = None  # "edges"
  b_transform: str | None = None  # "invert"


TASKS: dict[str, Task] = {
    "edges2digits": Task(base="digits", paired=True, a_transform="edges"),
    "edges2mnist": Task(base="mnist", paired=True, a_transform="edges"),
    "lowres2mnist": Task(base="mnist", paired=True, a_transform="lowres"),
    "digits2inverted": Task(base="digits", paired=False, b_transform="invert"),
    "mnist2inverted": Task(base="mnist", paired=False, b_transform="invert"),
}


def get_task(name: str) -> Task:
  """The task of a dataset name; ``cycle_gan/<config>`` is an unpaired TFDS task."""
  if name.startswith(TFDS_PREFIX):
    return Task(base=name, paired=False)
  if name not in TASKS:
    raise ValueError(f"Unknown translation dataset {name!r}; valid: {', '.join(TASKS)}, "
                     f"{TFDS_PREFIX}<config> (e.g. cycle_gan/horse2zebra)")
  return TASKS[name]


def sobel_magnitude(images: np.ndarray) -> np.ndarray:
  """Sobel gradient magnitude of images in [-1, 1] ``[n, H, W, C]``, measured on the [0, 1] scale."""
  x = (np.asarray(images, np.float32) + 1.0) / 2.0
  p = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
  h, w = x.shape[1:3]
  win = lambda dy, dx: p[:, 1 + dy:1 + dy + h, 1 + dx:1 + dx + w]  # noqa: E731
  gx = (win(-1, 1) + 2 * win(0, 1) + win(1, 1)) - (win(-1, -1) + 2 * win(0, -1) + win(1, -1))
  gy = (win(1, -1) + 2 * win(1, 0) + win(1, 1)) - (win(-1, -1) + 2 * win(-1, 0) + win(-1, 1))
  return np.sqrt(gx ** 2 + gy ** 2)


def sobel_edges(images: np.ndarray) -> np.ndarray:
  """Edge maps of images in [-1, 1] ``[n, H, W, C]``: per-image normalised Sobel magnitude, in [-1, 1]."""
  mag = sobel_magnitude(images)
  peak = mag.max(axis=(1, 2, 3), keepdims=True)
  return (2.0 * mag / np.maximum(peak, 1e-6) - 1.0).astype(np.float32)


LOWRES_FACTOR = 4


def low_resolution(images: np.ndarray, factor: int = LOWRES_FACTOR) -> np.ndarray:
  """Each ``factor`` x ``factor`` block replaced by its mean (``[n, H, W, C]``, H and W divisible by it)."""
  n, h, w, c = images.shape
  if h % factor or w % factor:
    raise ValueError(f"lowres needs a resolution divisible by {factor}, got {h}x{w}")
  blocks = np.asarray(images, np.float32).reshape(n, h // factor, factor, w // factor, factor, c)
  means = blocks.mean(axis=(2, 4))
  return np.repeat(np.repeat(means, factor, axis=1), factor, axis=2).astype(np.float32)


def _transform(kind: str | None, images: np.ndarray) -> np.ndarray:
  if kind is None:
    return images
  if kind == "edges":
    return sobel_edges(images)
  if kind == "lowres":
    return low_resolution(images)
  if kind == "invert":
    return (-images).astype(np.float32)
  raise ValueError(f"Unknown transform {kind!r}")


def _array_reader(images: np.ndarray, rows: np.ndarray) -> tuple[Reader, int]:
  return (lambda i: np.asarray(images[rows[i]], np.float32)), len(rows)


def _tfds_reader(name: str, split: str, resolution: int, channels: int, *, data_dir: str | None,
                 manual_dir: str | None, download: bool) -> tuple[Reader, int]:
  from jaxgan.data import images as image_lib  # TFDS only when asked for

  source, _, _, _ = image_lib._open_tfds(name, split, data_dir, manual_dir, download)  # pylint: disable=protected-access
  read = image_lib._BatchReader(source, resolution, channels, None)  # pylint: disable=protected-access
  return (lambda i: read(np.asarray(i))["image"]), len(source)


def _strided(reader: Reader, count: int, start: int) -> tuple[Reader, int]:
  """Every other record of a reader, from ``start`` (the disjoint halves of the unpaired tasks)."""
  return (lambda i: reader(2 * np.asarray(i) + start)), (count - start + 1) // 2


@dataclasses.dataclass
class Domains:
  """Readers of the A and B training images and the held-out examples (numpy, [n, R, R, C])."""

  read_a: Reader
  num_a: int
  read_b: Reader
  num_b: int
  eval_a: np.ndarray
  eval_b: np.ndarray
  eval_paired: bool  # whether eval_b[i] is the true translation of eval_a[i]


def load_domains(name: str, *, resolution: int, num_eval: int, data_dir: str | None = None,
                 manual_dir: str | None = None, download: bool = False) -> Domains:
  """Opens a translation dataset (see the module docstring)."""
  task = get_task(name)
  if task.base == "digits":
    images, _ = embedded.load_digits_images(resolution)
    train_rows = np.arange(len(images) - EMBEDDED_HELD_OUT)
    test_rows = np.arange(len(images) - EMBEDDED_HELD_OUT, len(images))
    train, num_train = _array_reader(images, train_rows)
    test, num_test = _array_reader(images, test_rows)
  elif task.base == "mnist":
    kwargs = dict(data_dir=data_dir, manual_dir=manual_dir, download=download)
    train, num_train = _tfds_reader("mnist", "train", resolution, 1, **kwargs)
    test, num_test = _tfds_reader("mnist", "test", resolution, 1, **kwargs)
  else:  # a TFDS cycle_gan config: A and B are separate splits, already unpaired
    kwargs = dict(data_dir=data_dir, manual_dir=manual_dir, download=download)
    read_a, num_a = _tfds_reader(task.base, "trainA", resolution, 3, **kwargs)
    read_b, num_b = _tfds_reader(task.base, "trainB", resolution, 3, **kwargs)
    test_a, n_test_a = _tfds_reader(task.base, "testA", resolution, 3, **kwargs)
    test_b, n_test_b = _tfds_reader(task.base, "testB", resolution, 3, **kwargs)
    return Domains(read_a, num_a, read_b, num_b, eval_a=test_a(np.arange(min(num_eval, n_test_a))),
                   eval_b=test_b(np.arange(min(num_eval, n_test_b))), eval_paired=False)
  held_out = test(np.arange(min(num_eval, num_test)))
  eval_a, eval_b = _transform(task.a_transform, held_out), _transform(task.b_transform, held_out)
  if task.paired:
    read_a = lambda i: _transform(task.a_transform, train(i))  # noqa: E731
    read_b = lambda i: _transform(task.b_transform, train(i))  # noqa: E731
    return Domains(read_a, num_train, read_b, num_train, eval_a, eval_b, eval_paired=True)
  half_a, num_a = _strided(train, num_train, 0)
  half_b, num_b = _strided(train, num_train, 1)
  return Domains(lambda i: _transform(task.a_transform, half_a(i)), num_a,
                 lambda i: _transform(task.b_transform, half_b(i)), num_b, eval_a, eval_b,
                 eval_paired=True)


class TranslationBatches:
  """The batch source of pix2pix (``paired``: input/target) and CycleGAN (a/b); see the module docstring."""

  def __init__(self, domains: Domains, *, paired: bool, batch_size: int, seed: int, shard_index: int = 0,
               device: bool = False):
    if paired and domains.num_a != domains.num_b:
      raise ValueError("A paired source needs as many A as B examples")
    for count in (domains.num_a, domains.num_b):
      if count < batch_size:
        raise ValueError(f"batch_size={batch_size} exceeds the {count} training examples of a domain")
    self.domains = domains
    self.paired = paired
    self.batch_size = batch_size
    self.seed = seed
    self.shard_index = shard_index
    self.num_classes = None
    self.input_shape = tuple(domains.eval_a.shape[1:])
    self.example_shape = tuple(domains.eval_b.shape[1:])
    self.keys = ("input", "target") if paired else ("a", "b")
    self._device: DeviceBatches | None = None
    self.batch_fn = None
    if device:  # batch_size is then the global batch (every device takes its slice inside the step)
      a, b = self.keys
      arrays = {a: domains.read_a(np.arange(domains.num_a)), b: domains.read_b(np.arange(domains.num_b))}
      streams = {"pairs": (a, b)} if paired else {a: (a,), b: (b,)}
      self._device = DeviceBatches(arrays, seed=seed, batch_size=batch_size, draws_per_step=1,
                                   streams=streams, num_classes=None, example_shape=self.example_shape)
      self.device_data = self._device.device_data
      self.batch_fn = self._device.batch_fn

  def host_batch(self, step: int) -> dict[str, np.ndarray]:
    """The numpy batch of ``step`` (without the leading n_critic axis)."""
    rng = np.random.default_rng((self.seed, self.shard_index, step))
    d = self.domains
    rows_a = rng.choice(d.num_a, self.batch_size, replace=False)
    rows_b = rows_a if self.paired else rng.choice(d.num_b, self.batch_size, replace=False)
    return {self.keys[0]: d.read_a(rows_a), self.keys[1]: d.read_b(rows_b)}

  def next(self, step: int) -> dict[str, jax.Array]:
    if self._device is not None:
      return self._device.next(step)
    return jax.device_put({k: v[None] for k, v in self.host_batch(step).items()})

  def get_state(self) -> dict[str, Any]:
    return {}  # a function of the step alone

  def set_state(self, state: dict[str, Any]) -> None:
    del state


def make_translation_source(config: Any, *, paired: bool, shard_index: int = 0,
                            shard_count: int = 1) -> TranslationBatches:
  """The source of a resolved ``Config`` (this host's share of the global batch)."""
  if config.batch_size % shard_count:
    raise ValueError(f"--batch_size={config.batch_size} must be divisible by the {shard_count} processes")
  domains = load_domains(config.dataset, resolution=config.resolution,
                         num_eval=config.num_eval_samples, data_dir=config.data_dir,
                         manual_dir=config.manual_dir, download=config.download)
  wanted = getattr(config, "data_on_device", None)
  size = 4 * (domains.num_a * int(np.prod(domains.eval_a.shape[1:])) +
              domains.num_b * int(np.prod(domains.eval_b.shape[1:])))
  device = wanted is True or (wanted is None and size <= MAX_DEVICE_BYTES)
  return TranslationBatches(domains, paired=paired,
                            batch_size=config.batch_size if device else config.batch_size // shard_count,
                            seed=config.seed, shard_index=shard_index, device=device)
