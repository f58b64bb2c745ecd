"""Checkpoints: exact round trip of the GANState, fallback past a corrupt step, clear error when none is usable."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan.checkpoint import Checkpointer, CheckpointError
from jaxgan.models.mlp import MLPDiscriminator, MLPGenerator
from jaxgan.state import GANState, make_optimizer
from jaxgan.steps import StepConfig, make_steps


def _state(seed=0):
  return GANState.create(
      generator=MLPGenerator(hidden=(8,)), discriminator=MLPDiscriminator(hidden=(8,)),
      g_tx=make_optimizer("adam", learning_rate=1e-3), d_tx=make_optimizer("rmsprop", learning_rate=1e-3),
      key=jax.random.PRNGKey(seed), latent_dim=3, d_input=jnp.zeros((1, 2)))


def _trained(steps):
  train = make_steps(StepConfig(latent_dim=3)).train_step
  state = _state()
  for i in range(steps):
    state, _ = train(state, {"image": jax.random.normal(jax.random.PRNGKey(i), (1, 16, 2))})
  return state


def _assert_same(a, b):
  for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_round_trip_restores_every_leaf_and_the_static_fields(tmp_path):
  state = _trained(3)
  ckpt = Checkpointer(str(tmp_path))
  ckpt.save(3, state, {"data": {"next_index": 7}})
  target = _state(seed=5)
  step, restored, meta = ckpt.restore_latest(target)
  assert step == 3 and meta == {"data": {"next_index": 7}}
  _assert_same(restored, state)
  assert restored.g_apply == target.g_apply and restored.d_tx == target.d_tx  # from the target
  assert int(restored.step) == 3 and int(restored.d_updates) == 3
  # The restored state trains on (static fields re-attached).
  make_steps(StepConfig(latent_dim=3)).train_step(restored, {"image": jnp.zeros((1, 16, 2))})


def _corrupt(step_dir):
  """Overwrites every file of a saved step with garbage (a disk/partial-copy failure)."""
  for root, _, files in os.walk(step_dir):
    for name in files:
      with open(os.path.join(root, name), "wb") as f:
        f.write(b"\x00garbage")


def test_a_corrupt_latest_checkpoint_falls_back_to_the_previous_one(tmp_path, caplog):
  ckpt = Checkpointer(str(tmp_path))
  first, second = _trained(1), _trained(2)
  ckpt.save(1, first, {"n": 1})
  ckpt.save(2, second, {"n": 2})
  _corrupt(tmp_path / "2")
  step, restored, meta = Checkpointer(str(tmp_path)).restore_latest(_state())
  assert step == 1 and meta == {"n": 1}
  _assert_same(restored, first)
  assert "step 2" in caplog.text and "unreadable" in caplog.text


def test_no_usable_checkpoint_is_an_error_that_names_the_fix(tmp_path):
  ckpt = Checkpointer(str(tmp_path))
  ckpt.save(1, _trained(1), {})
  _corrupt(tmp_path / "1")
  with pytest.raises(CheckpointError, match="--overwrite"):
    Checkpointer(str(tmp_path)).restore_latest(_state())


def test_no_checkpoint_returns_none(tmp_path):
  assert Checkpointer(str(tmp_path / "empty")).restore_latest(_state()) is None
