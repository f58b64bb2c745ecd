"""Tests for jaxgan.plots: image-grid layout and value mapping, PNG round trips, scatter plots."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from jaxgan import plots


@pytest.mark.parametrize(
    "n,h,w,c,nrow,padding,expected",
    [
        (20, 28, 28, 1, 8, 2, (3 * 30 + 2, 8 * 30 + 2, 1)),
        (3, 8, 6, 3, 8, 2, (1 * 10 + 2, 3 * 8 + 2, 3)),  # fewer images than nrow.
        (16, 32, 32, 3, 4, 0, (128, 128, 3)),
        (5, 4, 4, 1, 1, 1, (5 * 5 + 1, 1 * 5 + 1, 1)),
    ],
)
def test_image_grid_shape(n, h, w, c, nrow, padding, expected):
    grid = plots.image_grid(np.zeros((n, h, w, c), np.float32), nrow, padding)
    assert grid.shape == expected and grid.dtype == np.uint8


def test_image_grid_tile_placement_and_values():
    rng = np.random.default_rng(0)
    images = jnp.asarray(rng.uniform(-1, 1, (7, 5, 4, 3)), jnp.float32)
    images = images.at[0].set(-1.0).at[1].set(1.0)
    grid = jax.jit(lambda x: x)(images)  # jax.Array input straight from a jitted fn.
    grid = plots.image_grid(grid, nrow=3, padding=2, pad_value=1.0)
    for i in range(7):
        r, c = divmod(i, 3)
        tile = grid[2 + r * 7 : 2 + r * 7 + 5, 2 + c * 6 : 2 + c * 6 + 4]
        expected = np.clip(np.rint((np.asarray(images[i]) + 1) / 2 * 255), 0, 255)
        np.testing.assert_array_equal(tile, expected)
    assert (grid[2 : 2 + 5, 2 : 2 + 4] == 0).all()  # -1 -> 0
    assert (grid[2 : 2 + 5, 8 : 8 + 4] == 255).all()  # 1 -> 255
    # Padding rows/cols and the two empty slots of the last row take pad_value (1 -> 255).
    assert (grid[:2] == 255).all() and (grid[:, :2] == 255).all() and (grid[7:9] == 255).all()
    assert (grid[2 + 2 * 7 :, 2 + 6 :] == 255).all()


def test_to_uint8_clips_and_handles_nan():
    out = plots.to_uint8(np.array([-3.0, -1.0, 0.0, 1.0, 3.0, np.nan]))
    np.testing.assert_array_equal(out, [0, 0, 128, 255, 255, 128])


@pytest.mark.parametrize("c,mode", [(1, "L"), (3, "RGB")])
def test_save_image_grid_png_round_trip_and_upscale(tmp_path, c, mode):
    images = np.random.default_rng(1).uniform(-1, 1, (6, 8, 8, c)).astype(np.float32)
    path = tmp_path / "sub" / "grid.png"
    written = plots.save_image_grid(path, images, nrow=3, min_size=100)
    grid = plots.image_grid(images, 3)  # (2*10+2, 3*10+2) = (22, 32) -> factor ceil(100/32) = 4.
    with Image.open(path) as im:
        assert im.mode == mode and im.size == (32 * 4, 22 * 4)
        loaded = np.asarray(im)
    loaded = loaded[..., None] if c == 1 else loaded
    np.testing.assert_array_equal(loaded, written)
    np.testing.assert_array_equal(loaded[::4, ::4], grid)  # nearest upscaling: exact blocks.
    np.testing.assert_array_equal(loaded[3::4, 3::4], grid)


def test_save_image_grid_no_upscale_when_large(tmp_path):
    images = np.zeros((4, 64, 64, 3), np.float32)
    written = plots.save_image_grid(tmp_path / "g.png", images, nrow=2, min_size=64)
    assert written.shape == (2 * 66 + 2, 2 * 66 + 2, 3)


def _changed_pixels(base: np.ndarray, other: np.ndarray) -> np.ndarray:
    """(row, col) of pixels that differ between two renders."""
    return np.argwhere((base != other).any(axis=-1))


def test_scatter_png_size_and_point_colours(tmp_path):
    size = 256
    kw = dict(bounds=(-1.0, 1.0), size=size, title="t")
    empty = np.zeros((0, 2))
    plots.scatter_png(tmp_path / "empty.png", empty, **kw)
    plots.scatter_png(tmp_path / "ur.png", np.array([[0.5, 0.5]]), **kw)
    plots.scatter_png(tmp_path / "ll.png", jnp.array([[-0.5, -0.5]]), **kw)
    plots.scatter_png(tmp_path / "out.png", np.array([[5.0, 5.0], [np.nan, 0.0]]), **kw)
    imgs = {}
    for name in ["empty", "ur", "ll", "out"]:
        with Image.open(tmp_path / f"{name}.png") as im:
            assert im.size == (size, size) and im.mode == "RGB"
            imgs[name] = np.asarray(im)
    ur = _changed_pixels(imgs["empty"], imgs["ur"])
    ll = _changed_pixels(imgs["empty"], imgs["ll"])
    assert len(ur) > 0 and len(ll) > 0
    for pix in (ur, ll):
        colours = {tuple(imgs["ur" if pix is ur else "ll"][r, c]) for r, c in pix}
        assert colours == {plots.FAKE_COLOR}
    # y axis points up: (0.5, 0.5) is drawn right of and above (-0.5, -0.5).
    assert ur[:, 1].mean() > ll[:, 1].mean() and ur[:, 0].mean() < ll[:, 0].mean()
    # Equal aspect: the diagonal offset moves the dot equally far in x and y.
    dx, dy = ur[:, 1].mean() - ll[:, 1].mean(), ll[:, 0].mean() - ur[:, 0].mean()
    assert dx == pytest.approx(dy, abs=1)
    np.testing.assert_array_equal(imgs["out"], imgs["empty"])  # out-of-window / NaN not drawn.


def test_scatter_png_real_and_means(tmp_path):
    fake = np.zeros((0, 2))
    real = np.array([[0.3, -0.2]])
    means = np.array([[-0.6, 0.6]])
    kw = dict(bounds=(-1.0, 1.0), size=300)
    plots.scatter_png(tmp_path / "a.png", fake, None, **kw)
    plots.scatter_png(tmp_path / "b.png", fake, real, means=means, **kw)
    with Image.open(tmp_path / "a.png") as a, Image.open(tmp_path / "b.png") as b:
        a, b = np.asarray(a), np.asarray(b)
    colours = {tuple(b[r, c]) for r, c in _changed_pixels(a, b)}
    assert plots.REAL_COLOR in colours and plots.MEAN_COLOR in colours
    assert plots.FAKE_COLOR not in colours


def test_scatter_png_auto_bounds_and_validation(tmp_path):
    ds_means = np.array([[-4.0, -4.0], [4.0, 4.0]])
    fake = np.random.default_rng(0).normal(size=(100, 2))
    plots.scatter_png(tmp_path / "auto.png", fake, means=ds_means)  # bounds from means.
    with Image.open(tmp_path / "auto.png") as im:
        assert im.size == (512, 512)
    with pytest.raises(ValueError):
        plots.scatter_png(tmp_path / "bad.png", fake, bounds=(1.0, -1.0))
    with pytest.raises(ValueError):
        plots.scatter_png(tmp_path / "bad.png", np.zeros((3, 3)))
