"""Image datasets as infinite, checkpointable grain iterators of NHWC float32 batches in [-1, 1].

Sources, in order of preference:
  * `name=None` or `"digits"`: the embedded 8x8 digits (`jaxgan.data.embedded`), always offline.
  * any TFDS image dataset (`mnist`, `fashion_mnist`, `cifar10`, `celeb_a`, `svhn_cropped`, ...) read
    with `tfds.data_source` (ArrayRecord random access; reading needs no TensorFlow). A dataset that is
    not prepared in `data_dir` (default: `$TFDS_DATA_DIR` or `~/tensorflow_datasets`, resolved by TFDS)
    is prepared by its own TFDS builder when `download=True` or `manual_dir` is given; preparing needs
    TensorFlow (`pip install -e '.[tf]'`).
  * `mnist`/`fashion_mnist` without TensorFlow: the four official IDX files in `manual_dir` are read
    directly (`jaxgan.data.idx`) and fed through the same pipeline.
  * `stacked_mnist`: three MNIST digits as RGB channels (`jaxgan.data.stacked_mnist`), built from
    MNIST read as above (the IDX files in `manual_dir`, or TFDS `mnist`).

Pipeline (grain, host-side numpy only): record indices -> this host's shard (strided, equal sizes) ->
global shuffle (grain's index shuffle, reseeded each epoch from `seed`) -> batches of indices
(drop_remainder) -> read + center-crop + resize + scale to [-1, 1] per batch -> repeat forever ->
thread prefetch. Every batch is a pure function of its index, so the iterator state is one integer
and resuming with `set_state` replays exactly the same stream.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
import json
import os
from collections.abc import Callable, Sequence
from typing import Any

import grain
import numpy as np
from absl import logging
from PIL import Image

from jaxgan.data import embedded, idx

EMBEDDED_NAMES = (None, embedded.NAME)
# Built from MNIST by `jaxgan.data.stacked_mnist` (three digits as RGB channels, 1000 classes).
STACKED_MNIST = "stacked_mnist"
# Datasets whose official IDX files can be read without TensorFlow (same file names for both).
IDX_DATASETS = ("mnist", "fashion_mnist")
_IDX_NUM_CLASSES = 10
# ITU-R 601-2 luma weights, the same that PIL's convert("L") uses.
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What the trainer needs to know about a dataset.

    `num_classes` is None for datasets without a class label (labels are then all zero);
    `num_examples` counts the whole split, all shards together.
    """

    name: str
    num_classes: int | None
    resolution: int
    channels: int
    num_examples: int


class ImageData:
    """An infinite iterator of `{"image": f32 [B, R, R, C] in [-1, 1], "label": i32 [B]}` batches.

    `get_state()` returns a JSON-serialisable dict (grain's iterator state plus the settings that
    determine the order); `set_state(state)` on an `ImageData` built with the same arguments makes it
    yield exactly what the original yielded after `get_state()`.
    """

    def __init__(self, info: DatasetInfo, dataset: grain.IterDataset, order: dict[str, Any]):
        self.info = info
        self.dataset = dataset
        self.iterator: grain.DatasetIterator = iter(dataset)
        self._order = order

    def __iter__(self) -> ImageData:
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        return next(self.iterator)

    def get_state(self) -> dict[str, Any]:
        return {"grain": self.iterator.get_state(), "order": dict(self._order)}

    def set_state(self, state: dict[str, Any] | str | bytes) -> None:
        if isinstance(state, (str, bytes)):
            state = json.loads(state)
        if state.get("order") != self._order:
            raise ValueError(
                f"Iterator state was saved for a different data order: {state.get('order')} != "
                f"{self._order}; exact resume needs the same dataset, split, seed, batch size and "
                "sharding.")
        self.iterator.set_state(state["grain"])


class _ArraySource:
    """Random access to in-memory arrays with the record layout of a TFDS data source."""

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"image": self.images[i], "label": self.labels[i]}

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, Any]]:
        return [self[i] for i in indices]


def _crop_resize(image: np.ndarray, resolution: int) -> np.ndarray:
    """Center-crops `image` [H, W, C] to its largest square and resizes it to `resolution` (bicubic).

    Keeps the dtype. PIL antialiases when down-sampling; uint8 uses PIL's native L/RGB/RGBA modes,
    other dtypes are resized per channel in float ('F') mode and clipped to the input range.
    """
    h, w = image.shape[:2]
    if h != w:
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        image = image[top:top + side, left:left + side]
    if image.shape[0] == resolution:
        return image
    size = (resolution, resolution)
    if image.dtype == np.uint8 and image.shape[-1] in (1, 3, 4):
        pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
        out = np.asarray(pil.resize(size, Image.Resampling.BICUBIC))
        return out.reshape(resolution, resolution, image.shape[-1])
    channels = [
        np.asarray(Image.fromarray(image[..., c].astype(np.float32)).resize(
            size, Image.Resampling.BICUBIC)) for c in range(image.shape[-1])
    ]
    out = np.stack(channels, axis=-1)
    return np.clip(out, image.min(), image.max()).astype(image.dtype)


def _to_unit_range(images: np.ndarray) -> np.ndarray:
    """Integer images -> float32 in [-1, 1] by the dtype's range; float images must be in [-1, 1]."""
    if np.issubdtype(images.dtype, np.integer):
        return images.astype(np.float32) * np.float32(2.0 / np.iinfo(images.dtype).max) - 1.0
    return images.astype(np.float32)


def _convert_channels(images: np.ndarray, channels: int) -> np.ndarray:
    """[B, H, W, C] float -> [B, H, W, channels]: gray->RGB repeats, RGB(A)->gray uses ITU-R 601 luma."""
    have = images.shape[-1]
    if have == channels:
        return images
    if channels == 3 and have == 1:
        return np.repeat(images, 3, axis=-1)
    if channels == 3 and have == 4:
        return images[..., :3]  # Drops alpha.
    if channels == 1 and have in (3, 4):
        return (images[..., :3] @ _LUMA)[..., None]
    raise ValueError(f"Cannot convert {have}-channel images to {channels} channels")


class _BatchReader:
    """Maps a batch of record indices to a finished batch (a plain class so grain can pickle it)."""

    def __init__(self, source: Any, resolution: int, channels: int, label_key: str | None):
        self.source, self.resolution = source, resolution
        self.channels, self.label_key = channels, label_key

    def __call__(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        indices = [int(i) for i in indices]
        if hasattr(self.source, "__getitems__"):
            records = self.source.__getitems__(indices)  # TFDS reads a batch of records at once.
        else:
            records = [self.source[i] for i in indices]
        images = np.stack([_crop_resize(np.asarray(r["image"]), self.resolution) for r in records])
        images = _convert_channels(_to_unit_range(images), self.channels)
        if self.label_key is None:
            labels = np.zeros(len(records), np.int32)
        else:
            labels = np.asarray([r[self.label_key] for r in records], np.int32)
        return {"image": images, "label": labels}


def _index_pipeline(num_records: int, read_batch: Callable[[np.ndarray], dict[str, np.ndarray]], *,
                    batch_size: int, seed: int, shard_index: int, shard_count: int,
                    num_threads: int) -> grain.IterDataset:
    """The grain pipeline described in the module docstring."""
    per_shard = num_records // shard_count  # Equal shard sizes keep hosts' epochs in step.
    if per_shard < batch_size:
        raise ValueError(f"Shard {shard_index}/{shard_count} has {per_shard} examples, fewer than "
                         f"batch_size={batch_size}")
    ds = grain.MapDataset.range(num_records)
    ds = ds[shard_index:per_shard * shard_count:shard_count]  # Strided: robust to sorted records.
    ds = ds.shuffle(seed=seed)  # Index beyond one epoch -> reseeded with seed + epoch by grain.
    ds = ds.batch(batch_size, drop_remainder=True)
    ds = ds.map(read_batch)
    ds = ds.repeat()
    read_options = grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=2 * num_threads)
    return ds.to_iter_dataset(read_options)


def _tensorflow_available() -> bool:
    return importlib.util.find_spec("tensorflow") is not None


def _missing_module(error: BaseException) -> str | None:
    """Name of a missing module anywhere in `error`'s cause/context chain (TFDS wraps them)."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, ModuleNotFoundError):
            return error.name
        error = error.__cause__ or error.__context__
    return None


def _tfds_builder(name: str, data_dir: str | None):
    import tensorflow_datasets as tfds  # Lazy: only TFDS datasets pay for the import.

    try:
        return tfds.builder(name, data_dir=data_dir, file_format="array_record")
    except tfds.core.DatasetNotFoundError:
        close = difflib.get_close_matches(name, tfds.list_builders(with_community_datasets=False), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ValueError(
            f"Unknown dataset {name!r}: not a TFDS dataset name.{hint} Use name=None or "
            f"'{embedded.NAME}' for the embedded offline default.") from None


def _prepare(builder: Any, name: str, manual_dir: str | None, download: bool) -> None:
    """Runs the dataset's own TFDS builder; translates a missing TensorFlow into install advice."""
    import tensorflow_datasets as tfds

    # Without --download, never fetch anything: no GCS copy of the prepared data either, and no
    # source file that is missing from manual_dir (TFDS would otherwise download it).
    config = tfds.download.DownloadConfig(manual_dir=manual_dir, try_download_gcs=download)
    try:
        if not download:
            url_infos = builder.url_infos or {}  # Reading the checksums may need extra modules.
            missing = sorted(info.filename for info in url_infos.values() if info.filename
                             and not os.path.exists(os.path.join(manual_dir, info.filename)))
            if missing:
                raise FileNotFoundError(
                    f"--manual_dir {manual_dir} lacks {missing}, needed to prepare TFDS dataset "
                    f"{name!r}. Put the dataset's original files there, or pass --download.")
        builder.download_and_prepare(download_config=config)
    except Exception as e:  # pylint: disable=broad-except
        module = _missing_module(e)
        if module is None:
            raise
        raise ImportError(
            f"Preparing TFDS dataset {name!r} failed because Python module {module!r} is missing. "
            "Preparing (not reading) TFDS datasets needs TensorFlow; install it with: "
            "pip install -e '.[tf]'  (tensorflow-cpu)."
            + (f" Without TensorFlow, {'/'.join(IDX_DATASETS)} can be read from the four official "
               "IDX files passed with --manual_dir." if name in IDX_DATASETS else "")) from e


def _open_tfds(name: str, split: str, data_dir: str | None, manual_dir: str | None,
               download: bool) -> tuple[Any, tuple[int | None, ...], str | None, int | None]:
    """Returns (record source, native image shape, label key or None, num_classes or None)."""
    import tensorflow_datasets as tfds

    builder = _tfds_builder(name, data_dir)
    features = builder.info.features
    image_feature = features["image"] if "image" in features else None
    if not isinstance(image_feature, tfds.features.Image):
        raise ValueError(f"TFDS dataset {name!r} has no 'image' feature of type tfds.features.Image "
                         f"(features: {list(features)}); it is not an image dataset.")
    label = features["label"] if "label" in features else None
    label_key, num_classes = (("label", label.num_classes)
                              if isinstance(label, tfds.features.ClassLabel) else (None, None))
    shape = tuple(image_feature.shape)

    if not builder.is_prepared():
        if not download and manual_dir is None:
            raise FileNotFoundError(
                f"TFDS dataset {name!r} is not prepared in {builder.data_dir} (data_dir="
                f"{data_dir or '$TFDS_DATA_DIR or ~/tensorflow_datasets'}). Either point --data_dir at "
                f"a TFDS data dir that holds it, pass --manual_dir=DIR with the dataset's original "
                f"files (e.g. the four IDX .gz files for mnist), or pass --download to let TFDS "
                f"download and prepare it (needs internet; preparing needs TensorFlow: "
                f"pip install -e '.[tf]'). Use name=None for the embedded offline default.")
        if (not download and name in IDX_DATASETS and not _tensorflow_available()
                and idx.find_idx_files(manual_dir, split) is not None):
            logging.info("TensorFlow is not installed: reading %s %s from the IDX files in %s.",
                         name, split, manual_dir)
            images, labels = idx.load_idx_split(manual_dir, split)
            return _ArraySource(images, labels), images.shape[1:], "label", _IDX_NUM_CLASSES
        _prepare(builder, name, manual_dir, download)

    source = tfds.data_source(name, split=split, data_dir=data_dir, download=False)
    return source, shape, label_key, num_classes


def make_image_iterator(name: str | None, *, batch_size: int, resolution: int, seed: int,
                        split: str = "train", data_dir: str | None = None,
                        manual_dir: str | None = None, channels: int | None = None,
                        shard_index: int = 0, shard_count: int = 1,
                        download: bool = False) -> ImageData:
    """Opens an image dataset as an infinite, deterministic, resumable iterator of batches.

    Args:
      name: None or "digits" (embedded default), "stacked_mnist" (built from MNIST, see
        `jaxgan.data.stacked_mnist`), or a TFDS image dataset name (e.g. "mnist").
      batch_size: examples per batch on this host (the last partial batch of an epoch is dropped).
      resolution: output height = width; non-square images are center-cropped to a square first.
      seed: shuffle seed; each epoch is reshuffled deterministically from it.
      split: TFDS split ("train", "test", "train[:90%]", ...); the IDX fallback knows "train" and
        "test"; the embedded digits have only "train" (all 1797 images).
      data_dir: TFDS data directory (None: `$TFDS_DATA_DIR` or `~/tensorflow_datasets`).
      manual_dir: directory with the dataset's original files, used to prepare it offline.
      channels: 1 or 3 to convert gray<->RGB; None keeps the dataset's own channel count.
      shard_index, shard_count: this host reads examples shard_index, shard_index + shard_count, ...
      download: let TFDS download and prepare a missing dataset (needs internet and TensorFlow).
    """
    for arg, value in (("batch_size", batch_size), ("resolution", resolution),
                       ("shard_count", shard_count)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{arg} must be a positive int, got {value!r}")
    if not 0 <= shard_index < shard_count:
        raise ValueError(f"shard_index must be in [0, {shard_count}), got {shard_index}")
    if channels not in (None, 1, 3):
        raise ValueError(f"channels must be None, 1 or 3, got {channels!r}")

    if name == STACKED_MNIST:
        # Built offline from MNIST (TFDS or the IDX files in manual_dir); its own module.
        from jaxgan.data import stacked_mnist  # pylint: disable=import-outside-toplevel
        if channels == 1:
            raise ValueError("Stacked MNIST's three digits are its RGB channels; channels=1 would "
                             "mix them. Use channels=None or 3.")
        return stacked_mnist.make_stacked_mnist_iterator(
            batch_size=batch_size, seed=seed, resolution=resolution, split=split, data_dir=data_dir,
            manual_dir=manual_dir, shard_index=shard_index, shard_count=shard_count,
            download=download)

    source, info, reader = _open(name, resolution=resolution, split=split, data_dir=data_dir,
                                 manual_dir=manual_dir, channels=channels, download=download)
    num_threads = 1 if info.name == embedded.NAME else min(8, os.cpu_count() or 1)
    dataset = _index_pipeline(len(source), reader, batch_size=int(batch_size), seed=int(seed),
                              shard_index=int(shard_index), shard_count=int(shard_count),
                              num_threads=num_threads)
    order = {"name": info.name, "split": split, "num_examples": len(source), "seed": int(seed),
             "batch_size": int(batch_size), "shard_index": int(shard_index),
             "shard_count": int(shard_count)}
    return ImageData(info, dataset, order)


def _open(name: str | None, *, resolution: int, split: str, data_dir: str | None,
          manual_dir: str | None, channels: int | None, download: bool
          ) -> tuple[Any, DatasetInfo, _BatchReader]:
    """Opens a (non-stacked) dataset: its record source, its info and the batch reader of the pipeline."""
    if name in EMBEDDED_NAMES:
        if split not in ("train", "all"):
            raise ValueError(f"The embedded '{embedded.NAME}' dataset has a single split, 'train' "
                             f"(all 1797 images); got split={split!r}")
        images, labels = embedded.load_digits_images(resolution)  # Resized once, cached.
        source: Any = _ArraySource(images, labels)
        shape, label_key, num_classes = images.shape[1:], "label", embedded.NUM_CLASSES
        name = embedded.NAME
    else:
        source, shape, label_key, num_classes = _open_tfds(name, split, data_dir, manual_dir,
                                                          download)

    native_channels = shape[-1] if shape and shape[-1] is not None else 3
    out_channels = channels or (3 if native_channels == 4 else native_channels)
    if native_channels not in (1, 3, 4):
        raise ValueError(f"{name!r} has {native_channels}-channel images; only 1, 3 or 4 supported")
    info = DatasetInfo(name=name, num_classes=num_classes, resolution=int(resolution),
                       channels=int(out_channels), num_examples=len(source))
    return source, info, _BatchReader(source, int(resolution), int(out_channels), label_key)


def array_bytes(info: DatasetInfo) -> int:
    """Bytes of a whole dataset as the float32 arrays `load_image_arrays` returns."""
    return info.num_examples * (info.resolution ** 2 * info.channels + 1) * 4


def load_image_arrays(name: str | None, *, resolution: int, seed: int = 0, split: str = "train",
                      data_dir: str | None = None, manual_dir: str | None = None,
                      channels: int | None = None, download: bool = False,
                      max_bytes: int | None = None, chunk: int = 4096
                      ) -> tuple[np.ndarray, np.ndarray, DatasetInfo] | None:
    """Every example of a dataset, preprocessed as the pipeline does, for device-resident training.

    Returns `(images f32 [N, R, R, C] in [-1, 1], labels i32 [N], info)`, or None when the arrays would
    exceed `max_bytes` (the caller then streams batches with `make_image_iterator`). Arguments as in
    `make_image_iterator`; `seed` only matters for Stacked MNIST (it draws the digit triples).
    """
    if name == STACKED_MNIST:
        from jaxgan.data import stacked_mnist  # pylint: disable=import-outside-toplevel
        return stacked_mnist.load_stacked_arrays(
            seed=seed, resolution=resolution, split=split, data_dir=data_dir, manual_dir=manual_dir,
            download=download, max_bytes=max_bytes)
    source, info, reader = _open(name, resolution=resolution, split=split, data_dir=data_dir,
                                 manual_dir=manual_dir, channels=channels, download=download)
    if max_bytes is not None and array_bytes(info) > max_bytes:
        return None
    n = info.num_examples
    batches = [reader(np.arange(start, min(start + chunk, n))) for start in range(0, n, chunk)]
    images = np.concatenate([b["image"] for b in batches])
    labels = np.concatenate([b["label"] for b in batches]).astype(np.int32)
    return images, labels, info
