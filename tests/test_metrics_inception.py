"""Tests for jaxgan.metrics.inception (FID Inception-v3 network and weight loading)."""

import pickle

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan.metrics import inception as I

# torchvision's inception_v3(aux_logits=False) has 23,834,568 parameters; without the 1000-way fc
# layer (2048 * 1000 + 1000) that leaves 21,785,568: an independent check of every layer's shape.
TORCHVISION_POOL3_PARAMS = 23_834_568 - 2_049_000


@pytest.fixture(scope="module")
def variables():
  return I.init_random(0)


@pytest.fixture(scope="module")
def images():
  return jax.random.uniform(jax.random.key(1), (2, 32, 32, 3), minval=-1.0, maxval=1.0)


def test_shapes_and_parameter_count(variables, images):
  num_params = sum(x.size for x in jax.tree_util.tree_leaves(variables["params"]))
  assert num_params == TORCHVISION_POOL3_PARAMS
  assert variables["params"]["Conv2d_1a_3x3"]["conv"]["kernel"].shape == (3, 3, 3, 32)
  assert variables["params"]["Mixed_7c"]["branch_pool"]["conv"]["kernel"].shape == (1, 1, 2048, 192)
  feats = I.feature_fn_from_variables(variables)(images)  # Resized to 299x299.
  assert feats.shape == (2, I.FEATURE_DIM) and feats.dtype == jnp.float32
  assert bool(jnp.all(jnp.isfinite(feats))) and float(feats.min()) >= 0.0  # Mean of ReLUs.
  assert float(jnp.abs(feats[0] - feats[1]).max()) > 0  # Depends on the input.


def test_pools_exclude_padding():
  ones = jnp.ones((1, 5, 5, 2))
  np.testing.assert_allclose(I._avg_pool_3x3(ones), ones)  # Corners: 4/4, not 4/9.


def test_grey_input_is_repeated(variables, images):
  fn = I.feature_fn_from_variables(variables, resolution=I.MIN_RESOLUTION)
  grey = images[..., :1]
  np.testing.assert_array_equal(fn(grey), fn(jnp.repeat(grey, 3, axis=-1)))


def _torch_state_dict(variables):
  """The flax variables renamed/transposed to PyTorch's naming, written independently of I."""
  out = {"fc.weight": np.zeros((1008, 2048), np.float32), "fc.bias": np.zeros(1008, np.float32)}
  for path, value in flax.traverse_util.flatten_dict(variables).items():
    collection, *module, layer, leaf = path
    prefix = ".".join(module + [layer])
    value = np.asarray(value)
    if leaf == "kernel":
      out[prefix + ".weight"] = value.transpose(3, 2, 0, 1)  # HWIO -> OIHW.
    else:
      name = {"scale": "weight", "bias": "bias", "mean": "running_mean", "var": "running_var"}[leaf]
      out[f"{prefix}.{name}"] = value
      out[prefix + ".num_batches_tracked"] = np.array(0)
  return out


def test_loaders_round_trip(variables, images, tmp_path):
  fn = I.feature_fn_from_variables(variables, resolution=I.MIN_RESOLUTION)
  want = np.asarray(fn(images))
  I.save_weights(tmp_path / "flax.npz", variables)
  np.savez(tmp_path / "torch.npz", **_torch_state_dict(variables))
  with open(tmp_path / "torch.pkl", "wb") as f:
    pickle.dump(_torch_state_dict(variables), f)
  for name in ("flax.npz", "torch.npz", "torch.pkl"):
    got = I.inception_feature_fn(tmp_path / name, resolution=I.MIN_RESOLUTION)(images)
    np.testing.assert_array_equal(got, want, err_msg=name)
  # A different network gives different features (the comparison can fail).
  other = I.feature_fn_from_variables(I.init_random(1), resolution=I.MIN_RESOLUTION)(images)
  assert not np.allclose(other, want)


def test_loader_rejects_mismatched_files(variables, tmp_path):
  flat = {k: np.asarray(v) for k, v in flax.traverse_util.flatten_dict(variables, sep="/").items()}
  missing = dict(flat)
  del missing["batch_stats/Mixed_6b/branch7x7_2/bn/var"]
  with pytest.raises(ValueError, match="1 missing"):
    I.variables_from_arrays(missing)
  wrong = dict(flat)
  wrong["params/Mixed_6b/branch7x7_2/conv/kernel"] = np.zeros((7, 1, 128, 128), np.float32)
  with pytest.raises(ValueError, match="wrong shapes"):
    I.variables_from_arrays(wrong)
  with pytest.raises(FileNotFoundError):
    I.load_weights(tmp_path / "absent.npz")
