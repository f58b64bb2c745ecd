"""Tests for jaxgan.data.images (grain pipeline, TFDS path, IDX fallback) and jaxgan.data.idx.

All offline and without TensorFlow: sockets are blocked for every test, TFDS is exercised with
`tfds.testing.mock_data` (which patches `tfds.data_source` and makes `download_and_prepare` a no-op).
"""

import gzip
import json
import os
import struct

import numpy as np
import pytest
import tensorflow_datasets as tfds
from tensorflow_datasets.testing import mocking

from jaxgan.data import idx, images
from jaxgan.data.images import make_image_iterator

REAL_MNIST = "/work/shared/data/mnist"


# Every test here runs with network access refused (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("no_network")


@pytest.fixture
def mock_tfds(monkeypatch):
    """`tfds.testing.mock_data`, with its batched read fixed.

    In TFDS 4.9.10 mock_data installs `__getitems__` on a MagicMock as a plain attribute, so it is
    called without `self` and fails ("missing 1 required positional argument: 'record_keys'").
    `__getitem__` is fine. The replacement accepts both call forms.
    """

    def getitems(*args, generator, serialized=False):
        assert not serialized
        return [generator[key] for key in args[-1]]

    monkeypatch.setattr(mocking, "_getitems", getitems)

    def open_mock(num_examples):
        return tfds.testing.mock_data(num_examples=num_examples)

    return open_mock


def take(data, n):
    return [next(data) for _ in range(n)]


def assert_batches_equal(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x["image"], y["image"])
        np.testing.assert_array_equal(x["label"], y["label"])


# ---------------------------------------------------------------- embedded default through grain


@pytest.mark.parametrize("name", [None, "digits"])
def test_embedded_batches(name):
    data = make_image_iterator(name, batch_size=32, resolution=16, seed=0)
    assert data.info == images.DatasetInfo("digits", 10, 16, 1, 1797)
    batch = next(data)
    assert set(batch) == {"image", "label"}
    assert batch["image"].shape == (32, 16, 16, 1) and batch["image"].dtype == np.float32
    assert batch["label"].shape == (32,) and batch["label"].dtype == np.int32
    assert -1.0 <= batch["image"].min() and batch["image"].max() <= 1.0
    assert batch["image"].max() > 0.5 and batch["image"].min() == -1.0
    assert 0 <= batch["label"].min() and batch["label"].max() <= 9


def test_embedded_gray_to_rgb():
    gray = next(make_image_iterator(None, batch_size=8, resolution=8, seed=3))
    rgb_data = make_image_iterator(None, batch_size=8, resolution=8, seed=3, channels=3)
    assert rgb_data.info.channels == 3
    rgb = next(rgb_data)
    assert rgb["image"].shape == (8, 8, 8, 3)
    for c in range(3):
        np.testing.assert_array_equal(rgb["image"][..., c], gray["image"][..., 0])


def test_deterministic_per_seed_and_reshuffled_per_epoch():
    a = take(make_image_iterator(None, batch_size=256, resolution=8, seed=1), 14)
    b = take(make_image_iterator(None, batch_size=256, resolution=8, seed=1), 14)
    c = take(make_image_iterator(None, batch_size=256, resolution=8, seed=2), 1)
    assert_batches_equal(a, b)
    assert not np.array_equal(a[0]["image"], c[0]["image"])
    # 1797 // 256 = 7 batches per epoch: epoch 1 reshuffles; each epoch sees the same examples.
    epoch0 = np.concatenate([x["image"] for x in a[:7]])
    epoch1 = np.concatenate([x["image"] for x in a[7:]])
    assert not np.array_equal(epoch0, epoch1)
    sums0 = np.sort(epoch0.reshape(len(epoch0), -1).sum(1))
    sums1 = np.sort(epoch1.reshape(len(epoch1), -1).sum(1))
    assert len(np.intersect1d(sums0, sums1)) > 0.9 * len(np.unique(sums0))


@pytest.mark.parametrize("consumed", [3, 6])  # 6: the resumed stream crosses an epoch boundary.
def test_resume_from_state(consumed):
    kwargs = dict(batch_size=256, resolution=8, seed=5)
    original = make_image_iterator(None, **kwargs)
    take(original, consumed)
    state = json.loads(json.dumps(original.get_state()))  # Must survive JSON.
    expected = take(original, 3)
    resumed = make_image_iterator(None, **kwargs)
    next(resumed)  # Its own position must not matter.
    resumed.set_state(state)
    assert_batches_equal(take(resumed, 3), expected)
    fresh = make_image_iterator(None, **kwargs)
    fresh.set_state(json.dumps(state))  # A JSON string works too.
    assert_batches_equal(take(fresh, 3), expected)


def test_resume_refuses_different_order():
    state = make_image_iterator(None, batch_size=16, resolution=8, seed=5).get_state()
    other = make_image_iterator(None, batch_size=16, resolution=8, seed=6)
    with pytest.raises(ValueError, match="different data order"):
        other.set_state(state)


# ---------------------------------------------------------------- the index pipeline itself


def test_index_pipeline_epochs_and_shards():
    def identity(indices):
        return np.asarray(indices)

    n, batch, shards = 23, 3, 3  # 7 examples per shard (23 // 3), 2 batches per shard epoch.
    seen = []
    for k in range(shards):
        ds = images._index_pipeline(n, identity, batch_size=batch, seed=0, shard_index=k,
                                    shard_count=shards, num_threads=0)
        it = iter(ds)
        epochs = [np.concatenate([next(it) for _ in range(2)]) for _ in range(4)]
        shard_members = set(range(k, 7 * shards, shards))
        for e in epochs:
            assert len(set(e.tolist())) == 6 and set(e.tolist()) <= shard_members
        assert len({tuple(e) for e in epochs}) > 1  # Reshuffled across epochs.
        seen.append(set(np.concatenate(epochs).tolist()))
    for i in range(shards):
        for j in range(i + 1, shards):
            assert not seen[i] & seen[j]


def test_bad_arguments():
    with pytest.raises(ValueError, match="fewer than batch_size"):
        make_image_iterator(None, batch_size=1000, resolution=8, seed=0, shard_count=2)
    with pytest.raises(ValueError, match="shard_index"):
        make_image_iterator(None, batch_size=8, resolution=8, seed=0, shard_index=2, shard_count=2)
    with pytest.raises(ValueError, match="channels"):
        make_image_iterator(None, batch_size=8, resolution=8, seed=0, channels=2)
    with pytest.raises(ValueError, match="single split"):
        make_image_iterator(None, batch_size=8, resolution=8, seed=0, split="test")


def test_crop_resize_and_channel_conversion():
    rows = np.repeat(np.arange(6, dtype=np.uint8)[:, None, None] * 40, 4, axis=1)  # [6, 4, 1]
    cropped = images._crop_resize(rows, 4)  # Center square: rows 1..4.
    np.testing.assert_array_equal(cropped[:, 0, 0], [40, 80, 120, 160])
    const = np.full((10, 7, 3), 99, np.uint8)
    np.testing.assert_array_equal(images._crop_resize(const, 5), np.full((5, 5, 3), 99))
    red = np.array([[[[1.0, -1.0, -1.0]]]], np.float32)
    np.testing.assert_allclose(images._convert_channels(red, 1), [[[[0.299 - 0.587 - 0.114]]]],
                               rtol=1e-6)


# ---------------------------------------------------------------- TFDS path (mock_data)


def test_tfds_mnist_via_mock(mock_tfds, tmp_path):
    kwargs = dict(batch_size=8, resolution=16, seed=0, data_dir=str(tmp_path), download=True)
    with mock_tfds(num_examples=40):
        data = make_image_iterator("mnist", **kwargs)
        assert data.info == images.DatasetInfo("mnist", 10, 16, 1, 40)
        first = take(data, 6)  # 5 batches per epoch: crosses into epoch 2.
        again = take(make_image_iterator("mnist", **kwargs), 6)
        resumed = make_image_iterator("mnist", **kwargs)
        data2 = make_image_iterator("mnist", **kwargs)
        take(data2, 2)
        resumed.set_state(data2.get_state())
        tail = take(resumed, 4)
    assert_batches_equal(first, again)
    assert_batches_equal(first[2:], tail)
    batch = first[0]
    assert batch["image"].shape == (8, 16, 16, 1) and batch["image"].dtype == np.float32
    assert -1.0 <= batch["image"].min() and batch["image"].max() <= 1.0
    assert batch["image"].std() > 0.1  # Random mock pixels, not a constant.
    assert batch["label"].dtype == np.int32 and batch["label"].max() < 10


def test_tfds_rgb_and_unlabeled_via_mock(mock_tfds, tmp_path):
    with mock_tfds(num_examples=12):
        cifar = make_image_iterator("cifar10", batch_size=4, resolution=8, seed=0, channels=1,
                                    data_dir=str(tmp_path), download=True)
        celeb = make_image_iterator("celeb_a", batch_size=4, resolution=8, seed=0,
                                    data_dir=str(tmp_path), download=True)
        cifar_batch, celeb_batch = next(cifar), next(celeb)
    assert cifar.info == images.DatasetInfo("cifar10", 10, 8, 1, 12)
    assert cifar_batch["image"].shape == (4, 8, 8, 1)
    # celeb_a: 218x178 RGB, center-cropped and resized; no class label.
    assert celeb.info == images.DatasetInfo("celeb_a", None, 8, 3, 12)
    assert celeb_batch["image"].shape == (4, 8, 8, 3)
    np.testing.assert_array_equal(celeb_batch["label"], np.zeros(4, np.int32))


def test_tfds_shards_are_disjoint(mock_tfds, tmp_path):
    with mock_tfds(num_examples=24):
        epochs = []
        for k in range(2):
            data = make_image_iterator("mnist", batch_size=4, resolution=28, seed=0, shard_index=k,
                                       shard_count=2, data_dir=str(tmp_path), download=True)
            epochs.append(np.concatenate([b["image"] for b in take(data, 3)]))  # 12 = one epoch.
    keys = [{x.tobytes() for x in e} for e in epochs]
    assert len(keys[0]) == len(keys[1]) == 12 and not keys[0] & keys[1]


# ---------------------------------------------------------------- errors


def test_missing_dataset_is_a_clear_error_without_network(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        make_image_iterator("mnist", batch_size=4, resolution=8, seed=0, data_dir=str(tmp_path))
    message = str(err.value)
    for needle in ("'mnist'", str(tmp_path), "--data_dir", "--manual_dir", "--download"):
        assert needle in message
    assert not list(tmp_path.iterdir())  # Nothing was downloaded or prepared.


def test_unknown_or_non_image_dataset(tmp_path):
    with pytest.raises(ValueError, match="Unknown dataset 'mnisst'.*mnist"):
        make_image_iterator("mnisst", batch_size=4, resolution=8, seed=0, data_dir=str(tmp_path))
    with pytest.raises(ValueError, match="no 'image' feature"):
        make_image_iterator("imdb_reviews", batch_size=4, resolution=8, seed=0,
                            data_dir=str(tmp_path))


# ---------------------------------------------------------------- IDX fallback


def write_idx(path, array, type_code=0x08):
    data = struct.pack(">BBBB", 0, 0, type_code, array.ndim)
    data += struct.pack(f">{array.ndim}i", *array.shape) + array.astype(array.dtype.newbyteorder(">"))\
        .tobytes()
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(data)


def write_fake_mnist(directory, n=30, size=12):
    """Image i is constant with value 8 * i, label i % 10: the index can be read back."""
    os.makedirs(directory, exist_ok=True)
    values = (np.arange(n) * 8).astype(np.uint8)
    pixels = np.broadcast_to(values[:, None, None], (n, size, size)).copy()
    for split, (image_file, label_file) in idx.IDX_FILES.items():
        write_idx(os.path.join(directory, image_file + ".gz"), pixels)
        write_idx(os.path.join(directory, label_file + ".gz"), (np.arange(n) % 10).astype(np.uint8))


def test_read_idx_roundtrip_and_bad_magic(tmp_path):
    ints = np.arange(-6, 6, dtype=np.int32).reshape(3, 4)
    write_idx(tmp_path / "ints", ints, type_code=0x0C)
    out = idx.read_idx(tmp_path / "ints")
    np.testing.assert_array_equal(out, ints)
    assert out.dtype == np.int32
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(ValueError, match="not an IDX file"):
        idx.read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(struct.pack(">BBBBi", 0, 0, 8, 1, 10) + b"abc")
    with pytest.raises(ValueError, match="bytes"):
        idx.read_idx(tmp_path / "short")


def test_idx_fallback_without_tensorflow(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "_tensorflow_available", lambda: False)
    manual = tmp_path / "manual"
    write_fake_mnist(manual)
    seen = []
    for k in range(3):  # 10 examples per shard -> 2 batches of 4 per epoch.
        data = make_image_iterator("mnist", batch_size=4, resolution=12, seed=0, shard_index=k,
                                   shard_count=3, data_dir=str(tmp_path / "tfds"),
                                   manual_dir=str(manual))
        assert data.info == images.DatasetInfo("mnist", 10, 12, 1, 30)
        batches = take(data, 2)
        for b in batches:
            x = b["image"]
            assert x.shape == (4, 12, 12, 1) and x.dtype == np.float32
            index = np.rint((x[:, 0, 0, 0] + 1.0) * 127.5 / 8).astype(int)
            expected = np.broadcast_to((index * 8 / 127.5 - 1.0)[:, None, None, None], x.shape)
            np.testing.assert_allclose(x, expected, atol=1e-6)  # Constant images, exact values.
            np.testing.assert_array_equal(b["label"], index % 10)
            seen.append(set(index.tolist()))
            assert all(i % 3 == k for i in index)  # Strided shard k.
    flat = [i for s in seen for i in s]
    assert len(flat) == len(set(flat)) == 24  # Disjoint across shards, no repeats in an epoch.


def test_idx_fallback_missing_files_explains_tensorflow(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "_tensorflow_available", lambda: False)
    monkeypatch.setattr(images, "_prepare", lambda *a: (_ for _ in ()).throw(
        ImportError("pip install -e '.[tf]'")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImportError, match=r"\.\[tf\]"):
        make_image_iterator("mnist", batch_size=4, resolution=8, seed=0,
                            data_dir=str(tmp_path / "tfds"), manual_dir=str(tmp_path / "empty"))


class FakeBuilder:
    """Stands in for a TFDS builder whose preparation needs a module that is not installed."""

    url_infos = {"https://example.org/a.gz": tfds.core.download.checksums.UrlInfo(
        size=1, checksum="0", filename="a.gz")}

    def __init__(self):
        self.calls = 0

    def download_and_prepare(self, download_config):
        self.calls += 1
        assert download_config.manual_dir is not None and not download_config.try_download_gcs
        try:
            raise ModuleNotFoundError("No module named 'tensorflow'", name="tensorflow")
        except ModuleNotFoundError as e:
            raise RuntimeError("extraction failed") from e


def test_prepare_offline_checks_manual_dir_first(tmp_path):
    builder = FakeBuilder()
    with pytest.raises(FileNotFoundError, match=r"lacks \['a.gz'\].*--download"):
        images._prepare(builder, "mnist", str(tmp_path), False)
    assert builder.calls == 0  # Never reached TFDS, which would have downloaded a.gz.


def test_prepare_translates_missing_tensorflow(tmp_path):
    (tmp_path / "a.gz").write_bytes(b"")
    builder = FakeBuilder()
    with pytest.raises(ImportError, match=r"'tensorflow' is missing.*pip install -e '\.\[tf\]'"):
        images._prepare(builder, "mnist", str(tmp_path), False)
    assert builder.calls == 1


@pytest.mark.skipif(not os.path.isdir(REAL_MNIST), reason="no local copy of the MNIST IDX files")
def test_real_mnist_idx_files():
    x, y = idx.load_idx_split(REAL_MNIST, "test")
    assert x.shape == (10000, 28, 28, 1) and x.dtype == np.uint8
    assert y.shape == (10000,) and y.dtype == np.int32
    np.testing.assert_array_equal(np.bincount(y) > 800, np.ones(10, bool))
    assert 30 < x.mean() < 40  # MNIST's mean pixel is about 33.


# ---------------------------------------------------------------- stacked_mnist through the same entry


def test_stacked_mnist_is_routed_and_built_from_idx_files_at_any_resolution(tmp_path):
    """--dataset=stacked_mnist: three IDX digits per example as RGB, resized; labels = the triples."""
    manual = tmp_path / "manual"
    write_fake_mnist(manual, n=30, size=28)  # Image i is constant 8 * i with label i % 10.
    for resolution in (28, 32):
        data = make_image_iterator("stacked_mnist", batch_size=5, resolution=resolution, seed=1,
                                   manual_dir=str(manual), data_dir=str(tmp_path / "tfds"))
        assert (data.info.name, data.info.num_classes, data.info.channels) == ("stacked_mnist", 1000, 3)
        batch = next(data)
        x = batch["image"]
        assert x.shape == (5, resolution, resolution, 3) and x.dtype == np.float32
        # Constant digits stay constant under the resize: each channel names its MNIST image.
        index = np.rint((x[:, 0, 0, :] + 1.0) * 127.5 / 8).astype(int)  # [B, 3]
        np.testing.assert_allclose(x, np.broadcast_to(x[:, :1, :1, :], x.shape), atol=1e-5)
        d = index % 10
        np.testing.assert_array_equal(batch["label"], 100 * d[:, 0] + 10 * d[:, 1] + d[:, 2])
    with pytest.raises(ValueError, match="RGB channels"):
        make_image_iterator("stacked_mnist", batch_size=5, resolution=28, seed=0, channels=1,
                            manual_dir=str(manual))
