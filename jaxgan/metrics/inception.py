"""Inception-v3 pool3 features (2048-d) for FID / KID / precision-recall, from a user-supplied file.

The network is the FID variant of Inception-v3 (Szegedy et al. 2016, "Rethinking the Inception
architecture"), i.e. the graph of the original TF FID code (Heusel et al. 2017) as re-implemented by
pytorch-fid (``FIDInceptionA/C/E_1/E_2``): average pools in the Inception A, C and E_1 blocks
exclude the padding from the count, and the last block (Mixed_7c) max-pools in its pool branch.
Convolutions have no bias and are followed by BatchNorm (eps 1e-3, inference statistics) and ReLU.
Inputs are resized to 299x299 (bilinear, half-pixel centres, no antialiasing: like PyTorch's
``F.interpolate(..., align_corners=False)`` used by pytorch-fid) and the 8x8x2048 map of Mixed_7c
is average-pooled to the 2048-d "pool3" feature.

Weights are never downloaded: pass a file (no network). Layout of a ``.npz`` (or a pickled dict of
numpy arrays, ``.pkl``/``.pickle``; unpickling runs code, so only load files you trust), either

* **flax layout**: keys ``"params/<block>/<conv>/conv/kernel"`` ([kh, kw, in, out]),
  ``"params/<block>/<conv>/bn/scale"``, ``".../bn/bias"``, ``"batch_stats/<block>/<conv>/bn/mean"``
  and ``".../bn/var"``, where ``<block>/<conv>`` is e.g. ``Conv2d_1a_3x3`` (stem convs have no
  ``<conv>`` level) or ``Mixed_5b/branch5x5_1`` (names as in torchvision / pytorch-fid), as written
  by `save_weights`; or
* **PyTorch layout**: the ``state_dict`` of pytorch-fid's ``FIDInceptionV3`` (its
  ``pt_inception-2015-12-05-6726825d.pth``) saved as numpy, e.g. with
  ``np.savez(out, **{k: v.numpy() for k, v in torch.load(pth).items()})``: keys
  ``"Mixed_5b.branch1x1.conv.weight"`` ([out, in, kh, kw]), ``"....bn.weight"``, ``".bn.bias"``,
  ``".bn.running_mean"``, ``".bn.running_var"``; ``num_batches_tracked`` and ``fc.*`` are ignored.

Every expected array must be present with the expected shape; anything else is an error.
"""

from __future__ import annotations

import functools
import os
import pickle
from collections.abc import Callable, Mapping
from typing import Any

import chex
import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array
Variables = dict[str, Any]
FEATURE_DIM = 2048
INPUT_RESOLUTION = 299
MIN_RESOLUTION = 75  # The smallest input the stride-2 stages accept.
_BN_EPS = 1e-3


class BasicConv(nn.Module):
  """Conv (no bias) -> BatchNorm (running statistics) -> ReLU, as torchvision's BasicConv2d."""

  features: int
  kernel: tuple[int, int]
  strides: int = 1
  padding: tuple[int, int] = (0, 0)

  @nn.compact
  def __call__(self, x: Array) -> Array:
    pad = ((self.padding[0], self.padding[0]), (self.padding[1], self.padding[1]))
    x = nn.Conv(self.features, self.kernel, strides=self.strides, padding=pad, use_bias=False,
                name="conv")(x)
    x = nn.BatchNorm(use_running_average=True, epsilon=_BN_EPS, name="bn")(x)
    return nn.relu(x)


def _avg_pool_3x3(x: Array) -> Array:
  """3x3 stride-1 average pool, padding 1, padded zeros excluded from the mean (FID variant)."""
  return nn.avg_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)), count_include_pad=False)


def _max_pool_3x3_s2(x: Array) -> Array:
  return nn.max_pool(x, (3, 3), strides=(2, 2))


class InceptionA(nn.Module):
  pool_features: int

  @nn.compact
  def __call__(self, x: Array) -> Array:
    b1 = BasicConv(64, (1, 1), name="branch1x1")(x)
    b5 = BasicConv(48, (1, 1), name="branch5x5_1")(x)
    b5 = BasicConv(64, (5, 5), padding=(2, 2), name="branch5x5_2")(b5)
    b3 = BasicConv(64, (1, 1), name="branch3x3dbl_1")(x)
    b3 = BasicConv(96, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(b3)
    b3 = BasicConv(96, (3, 3), padding=(1, 1), name="branch3x3dbl_3")(b3)
    bp = BasicConv(self.pool_features, (1, 1), name="branch_pool")(_avg_pool_3x3(x))
    return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nn.Module):
  @nn.compact
  def __call__(self, x: Array) -> Array:
    b3 = BasicConv(384, (3, 3), strides=2, name="branch3x3")(x)
    bd = BasicConv(64, (1, 1), name="branch3x3dbl_1")(x)
    bd = BasicConv(96, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(bd)
    bd = BasicConv(96, (3, 3), strides=2, name="branch3x3dbl_3")(bd)
    return jnp.concatenate([b3, bd, _max_pool_3x3_s2(x)], axis=-1)


class InceptionC(nn.Module):
  channels_7x7: int

  @nn.compact
  def __call__(self, x: Array) -> Array:
    c7 = self.channels_7x7
    b1 = BasicConv(192, (1, 1), name="branch1x1")(x)
    b7 = BasicConv(c7, (1, 1), name="branch7x7_1")(x)
    b7 = BasicConv(c7, (1, 7), padding=(0, 3), name="branch7x7_2")(b7)
    b7 = BasicConv(192, (7, 1), padding=(3, 0), name="branch7x7_3")(b7)
    bd = BasicConv(c7, (1, 1), name="branch7x7dbl_1")(x)
    bd = BasicConv(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_2")(bd)
    bd = BasicConv(c7, (1, 7), padding=(0, 3), name="branch7x7dbl_3")(bd)
    bd = BasicConv(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_4")(bd)
    bd = BasicConv(192, (1, 7), padding=(0, 3), name="branch7x7dbl_5")(bd)
    bp = BasicConv(192, (1, 1), name="branch_pool")(_avg_pool_3x3(x))
    return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nn.Module):
  @nn.compact
  def __call__(self, x: Array) -> Array:
    b3 = BasicConv(192, (1, 1), name="branch3x3_1")(x)
    b3 = BasicConv(320, (3, 3), strides=2, name="branch3x3_2")(b3)
    b7 = BasicConv(192, (1, 1), name="branch7x7x3_1")(x)
    b7 = BasicConv(192, (1, 7), padding=(0, 3), name="branch7x7x3_2")(b7)
    b7 = BasicConv(192, (7, 1), padding=(3, 0), name="branch7x7x3_3")(b7)
    b7 = BasicConv(192, (3, 3), strides=2, name="branch7x7x3_4")(b7)
    return jnp.concatenate([b3, b7, _max_pool_3x3_s2(x)], axis=-1)


class InceptionE(nn.Module):
  """``max_pool``: False for Mixed_7b (FIDInceptionE_1), True for Mixed_7c (FIDInceptionE_2)."""

  max_pool: bool

  @nn.compact
  def __call__(self, x: Array) -> Array:
    b1 = BasicConv(320, (1, 1), name="branch1x1")(x)
    b3 = BasicConv(384, (1, 1), name="branch3x3_1")(x)
    b3 = jnp.concatenate([
        BasicConv(384, (1, 3), padding=(0, 1), name="branch3x3_2a")(b3),
        BasicConv(384, (3, 1), padding=(1, 0), name="branch3x3_2b")(b3)], axis=-1)
    bd = BasicConv(448, (1, 1), name="branch3x3dbl_1")(x)
    bd = BasicConv(384, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(bd)
    bd = jnp.concatenate([
        BasicConv(384, (1, 3), padding=(0, 1), name="branch3x3dbl_3a")(bd),
        BasicConv(384, (3, 1), padding=(1, 0), name="branch3x3dbl_3b")(bd)], axis=-1)
    if self.max_pool:
      pooled = nn.max_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)))
    else:
      pooled = _avg_pool_3x3(x)
    bp = BasicConv(192, (1, 1), name="branch_pool")(pooled)
    return jnp.concatenate([b1, b3, bd, bp], axis=-1)


class InceptionV3FID(nn.Module):
  """Images [B, H, W, 3] in [-1, 1] -> pool3 features [B, 2048].

  ``resolution`` is the size inputs are resized to (299 for FID; smaller values only make tests
  faster, the weights are the same).
  """

  resolution: int = INPUT_RESOLUTION

  @nn.compact
  def __call__(self, x: Array) -> Array:
    chex.assert_rank(x, 4)
    chex.assert_axis_dimension(x, 3, 3)
    if self.resolution < MIN_RESOLUTION:
      raise ValueError(f"Inception needs inputs of at least {MIN_RESOLUTION}px")
    x = x.astype(jnp.float32)
    if x.shape[1:3] != (self.resolution, self.resolution):
      x = jax.image.resize(x, (x.shape[0], self.resolution, self.resolution, 3), "bilinear",
                           antialias=False)
    x = BasicConv(32, (3, 3), strides=2, name="Conv2d_1a_3x3")(x)
    x = BasicConv(32, (3, 3), name="Conv2d_2a_3x3")(x)
    x = BasicConv(64, (3, 3), padding=(1, 1), name="Conv2d_2b_3x3")(x)
    x = _max_pool_3x3_s2(x)
    x = BasicConv(80, (1, 1), name="Conv2d_3b_1x1")(x)
    x = BasicConv(192, (3, 3), name="Conv2d_4a_3x3")(x)
    x = _max_pool_3x3_s2(x)
    x = InceptionA(32, name="Mixed_5b")(x)
    x = InceptionA(64, name="Mixed_5c")(x)
    x = InceptionA(64, name="Mixed_5d")(x)
    x = InceptionB(name="Mixed_6a")(x)
    x = InceptionC(128, name="Mixed_6b")(x)
    x = InceptionC(160, name="Mixed_6c")(x)
    x = InceptionC(160, name="Mixed_6d")(x)
    x = InceptionC(192, name="Mixed_6e")(x)
    x = InceptionD(name="Mixed_7a")(x)
    x = InceptionE(max_pool=False, name="Mixed_7b")(x)
    x = InceptionE(max_pool=True, name="Mixed_7c")(x)
    return jnp.mean(x, axis=(1, 2))


@functools.lru_cache(maxsize=1)
def abstract_variables() -> Variables:
  """Shapes/dtypes of the network's variables ({'params', 'batch_stats'}), without computing."""
  model = InceptionV3FID(resolution=MIN_RESOLUTION)
  return jax.eval_shape(model.init, jax.random.key(0),
                        jnp.zeros((1, MIN_RESOLUTION, MIN_RESOLUTION, 3)))


def init_random(seed: int = 0) -> Variables:
  """Random variables of the right shapes (tests, and checking the code path without weights).

  Drawn with numpy from the abstract shapes: flax's `init` would run the 22M-parameter network
  op by op (~30 s on 2 CPU cores). Kernels are He-normal (keeps activations O(1) through the ~50
  ReLU layers); BatchNorm statistics are random too, so that a loader mixing them up is caught.
  """
  rng = np.random.default_rng(seed)

  def draw(path: tuple[str, ...], leaf: jax.ShapeDtypeStruct) -> np.ndarray:
    shape, name = tuple(leaf.shape), path[-1]
    if name == "kernel":
      fan_in = int(np.prod(shape[:-1]))
      return rng.normal(0.0, np.sqrt(2.0 / fan_in), shape).astype(np.float32)
    if name in ("scale", "var"):
      return rng.uniform(0.5, 1.5, shape).astype(np.float32)
    return rng.normal(0.0, 0.1, shape).astype(np.float32)  # bias, mean.

  flat = flax.traverse_util.flatten_dict(abstract_variables())
  return flax.traverse_util.unflatten_dict({k: jnp.asarray(draw(k, v)) for k, v in flat.items()})


def _flatten(variables: Mapping[str, Any]) -> dict[str, np.ndarray]:
  flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(variables), sep="/")
  return {k: np.asarray(v) for k, v in flat.items()}


def save_weights(path: str | os.PathLike, variables: Mapping[str, Any]) -> None:
  """Writes `variables` to a ``.npz`` in the flax layout of the module docstring."""
  np.savez(path, **_flatten(variables))


_TORCH_BN = {"weight": ("params", "scale"), "bias": ("params", "bias"),
             "running_mean": ("batch_stats", "mean"), "running_var": ("batch_stats", "var")}


def _from_torch_names(arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
  """PyTorch state_dict names/layouts -> flax flat names/layouts."""
  out = {}
  for name, value in arrays.items():
    parts = name.split(".")
    if parts[0] in ("fc", "AuxLogits") or parts[-1] == "num_batches_tracked":
      continue  # Classifier head and BatchNorm step counters: not part of the pool3 network.
    *module, layer, leaf = parts
    if layer == "conv" and leaf == "weight":
      out["/".join(["params", *module, "conv", "kernel"])] = np.transpose(value, (2, 3, 1, 0))
    elif layer == "bn" and leaf in _TORCH_BN:
      collection, flax_leaf = _TORCH_BN[leaf]
      out["/".join([collection, *module, "bn", flax_leaf])] = value
    else:
      out[name] = value  # Reported as unexpected below.
  return out


def variables_from_arrays(arrays: Mapping[str, np.ndarray]) -> Variables:
  """Checks a flat dict of arrays (flax or PyTorch layout) against the network; returns variables."""
  arrays = dict(arrays)
  if arrays and all("/" not in k for k in arrays):
    arrays = _from_torch_names(arrays)
  shapes = {k: tuple(v.shape) for k, v in
            flax.traverse_util.flatten_dict(abstract_variables(), sep="/").items()}
  expected = set(shapes)
  missing = sorted(set(expected) - set(arrays))
  unexpected = sorted(set(arrays) - set(expected))
  if missing or unexpected:
    raise ValueError(f"Inception weights do not match the network: {len(missing)} missing "
                     f"(e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]}).")
  wrong = [f"{k}: {np.shape(arrays[k])} != {shapes[k]}" for k in sorted(expected)
           if tuple(np.shape(arrays[k])) != shapes[k]]
  if wrong:
    raise ValueError(f"Inception weights have wrong shapes: {wrong[:5]}")
  flat = {k: jnp.asarray(arrays[k], jnp.float32) for k in expected}
  return flax.traverse_util.unflatten_dict(flat, sep="/")


def load_weights(path: str | os.PathLike) -> Variables:
  """Reads a ``.npz`` or pickled dict of arrays (see the module docstring for the layout)."""
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise FileNotFoundError(f"Inception weights file {path} not found (weights are never "
                            "downloaded; see jaxgan/metrics/inception.py for how to make one)")
  if path.endswith((".pkl", ".pickle")):
    with open(path, "rb") as f:
      arrays = pickle.load(f)  # noqa: S301 - documented: only trusted files.
  else:
    with np.load(path, allow_pickle=False) as data:
      arrays = {k: data[k] for k in data.files}
  return variables_from_arrays(arrays)


@functools.partial(jax.jit, static_argnames=("model",))
def _features(model: InceptionV3FID, variables: Variables, images: Array) -> Array:
  return model.apply(variables, images)


def _grey_to_rgb_features(model: InceptionV3FID, variables: Variables, images: Array) -> Array:
  images = jnp.asarray(images, jnp.float32)
  if images.shape[-1] == 1:
    images = jnp.repeat(images, 3, axis=-1)  # Grey datasets as RGB, as the FID tools do.
  return _features(model, variables, images)  # Outside the jit: one compile for both.


def feature_fn_from_variables(variables: Variables, *, resolution: int = INPUT_RESOLUTION
                              ) -> Callable[[Array], Array]:
  """A (jitted) ``images [B, H, W, 1|3] in [-1, 1] -> pool3 features f32 [B, 2048]``."""
  return functools.partial(_grey_to_rgb_features, InceptionV3FID(resolution=resolution),
                           variables)


def inception_feature_fn(weights_path: str | os.PathLike, *,
                         resolution: int = INPUT_RESOLUTION) -> Callable[[Array], Array]:
  """Loads the weights file and returns the jitted pool3 feature function (for FID/KID/PRDC)."""
  return feature_fn_from_variables(load_weights(weights_path), resolution=resolution)
