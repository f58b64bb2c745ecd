"""Reader for the IDX files of MNIST and Fashion-MNIST (LeCun et al., http://yann.lecun.com/exdb/mnist/).

Used only as a fallback when TensorFlow (which TFDS needs to *prepare* a dataset) is not installed and
the user points `--manual_dir` at the four official files.
"""

from __future__ import annotations

import gzip
import os

import numpy as np

# IDX type codes (third byte of the magic number) -> big-endian numpy dtypes.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

# The file names of the official distributions (identical for MNIST and Fashion-MNIST).
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


# Hand-written because the format is a 4-byte magic, big-endian int32 dims and raw data (a few lines),
# while the libraries that read it (idx2numpy, TFDS's mnist builder) add a dependency or need TensorFlow.
def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Reads one IDX file (gzip-compressed if its name ends in .gz) into a native-endian array."""
    opener = gzip.open if os.fspath(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number {data[:4]!r})")
    dtype, ndim = np.dtype(_IDX_DTYPES[data[2]]), data[3]
    shape = tuple(int(d) for d in np.frombuffer(data, ">i4", count=ndim, offset=4))
    offset = 4 + 4 * ndim
    expected = offset + int(np.prod(shape)) * dtype.itemsize
    if len(data) != expected:
        raise ValueError(f"{path}: {len(data)} bytes, expected {expected} for shape {shape}")
    array = np.frombuffer(data, dtype, offset=offset).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


def find_idx_files(directory: str | os.PathLike, split: str) -> tuple[str, str] | None:
    """Paths of the (images, labels) IDX files of `split` in `directory` (.gz or not), else None."""
    if split not in IDX_FILES:
        return None
    paths = []
    for stem in IDX_FILES[split]:
        candidates = [os.path.join(directory, stem + ext) for ext in (".gz", "")]
        found = [p for p in candidates if os.path.isfile(p)]
        if not found:
            return None
        paths.append(found[0])
    return paths[0], paths[1]


def load_idx_split(directory: str | os.PathLike, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Loads MNIST-style `split` ('train' or 'test') from `directory`.

    Returns:
      images: uint8 [N, H, W, 1]; labels: int32 [N].
    """
    paths = find_idx_files(directory, split)
    if paths is None:
        names = IDX_FILES.get(split, IDX_FILES["train"])
        raise FileNotFoundError(
            f"No IDX files for split {split!r} in {directory} (expected {names[0]}[.gz] and "
            f"{names[1]}[.gz]; splits: {sorted(IDX_FILES)})")
    images, labels = read_idx(paths[0]), read_idx(paths[1])
    if images.ndim != 3 or images.dtype != np.uint8 or labels.ndim != 1:
        raise ValueError(f"Unexpected IDX contents: images {images.shape} {images.dtype}, "
                         f"labels {labels.shape}")
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels in {directory}")
    return images[..., None], labels.astype(np.int32)
