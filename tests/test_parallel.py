"""pmap data parallelism: 8 devices give the params of 1 device with the same global batch.

Multi-device tests need 8 CPU devices, which must be requested before JAX starts; the outer test runs
this module in a fresh process with ``XLA_FLAGS=--xla_force_host_platform_device_count=8`` (equivalent
to ``chex.set_n_cpu_devices(8)`` at start-up).
"""

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan import parallel
from jaxgan.models.dcgan import DCGANDiscriminator, DCGANGenerator
from jaxgan.state import GANState, make_optimizer
from jaxgan.steps import StepConfig, make_steps

N_DEVICES = 8
multi_device = pytest.mark.skipif(jax.device_count() < N_DEVICES, reason="needs 8 (forced CPU) devices")


def test_multi_device_tests_pass_in_a_process_with_8_cpu_devices():
  if os.environ.get("JAXGAN_INNER"):
    pytest.skip("inner run")
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAXGAN_INNER="1")
  proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__, "-k",
                         "not in_a_process"], env=env, capture_output=True, text=True, timeout=900)
  assert proc.returncode == 0 and " passed" in proc.stdout and "skipped" not in proc.stdout, proc.stdout + proc.stderr


def _state(axis_name):
  kw = dict(resolution=28, channels=1, axis_name=axis_name)
  return GANState.create(
      generator=DCGANGenerator(latent_dim=8, ngf=8, **kw), discriminator=DCGANDiscriminator(ndf=8, **kw),
      g_tx=make_optimizer("adam", learning_rate=1e-3), d_tx=make_optimizer("adam", learning_rate=1e-3),
      key=jax.random.PRNGKey(0), latent_dim=8, d_input=jnp.zeros((1, 28, 28, 1)))


@multi_device
def test_dcgan_with_batchnorm_on_8_devices_equals_1_device_with_the_same_global_batch():
  steps, global_batch = 3, 16
  data = jax.random.uniform(jax.random.PRNGKey(1), (steps, 1, global_batch, 28, 28, 1), minval=-1, maxval=1)
  single = _state(None)
  single_steps = make_steps(StepConfig(objective="nonsaturating", latent_dim=8))
  devices = jax.devices()[:N_DEVICES]
  multi = parallel.replicate(_state(parallel.AXIS), devices)
  multi_steps = parallel.make_pmap_steps(
      StepConfig(objective="nonsaturating", latent_dim=8, axis_name=parallel.AXIS), devices)
  for t in range(steps):
    single, single_metrics = single_steps.train_step(single, {"image": data[t]})
    multi, multi_metrics = multi_steps.train_step(multi, parallel.shard_batch({"image": data[t]}, devices))
  multi = parallel.unreplicate(multi)
  for name in ("g_params", "d_params", "g_batch_stats", "d_batch_stats"):
    for a, b in zip(jax.tree_util.tree_leaves(getattr(single, name)), jax.tree_util.tree_leaves(getattr(multi, name))):
      np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6, err_msg=name)
  np.testing.assert_allclose(parallel.unreplicate(multi_metrics)["d_loss"], single_metrics["d_loss"], rtol=1e-5)


@multi_device
def test_batch_not_divisible_by_devices_is_a_clear_error():
  with pytest.raises(ValueError, match="not divisible by the 8 devices"):
    parallel.shard_batch({"image": np.zeros((1, 12, 2))}, jax.devices()[:N_DEVICES])


def _final_params(workdir):
  import orbax.checkpoint as ocp
  directory = os.path.join(workdir, "checkpoints")
  step = max(int(s) for s in os.listdir(directory) if s.isdigit())
  with ocp.StandardCheckpointer() as checkpointer:  # raw trees: no template needed to compare values
    return checkpointer.restore(os.path.join(directory, str(step), "state"))


@multi_device
@pytest.mark.parametrize("arch, steps_per_call", [("dcgan", 1), ("resnet", 1), ("dcgan", 3), ("mlp", 3)])
def test_train_on_8_devices_equals_1_device_through_the_real_loop(tmp_path, arch, steps_per_call):
  from jaxgan import train as train_lib
  from jaxgan.config import Config

  # ResNet G's conv biases feed BatchNorms, so their true gradient is 0 and what is computed is rounding
  # noise, which Adam's normalisation blows up to +-lr steps differently for 1 and 8 devices: SGD there.
  optimizer = "sgd" if arch == "resnet" else None

  def run(num_devices):
    # 8 devices run `steps_per_call` steps per pmapped call (a scan, data gathered on each device); the
    # 1-device run takes one step per call.
    workdir = str(tmp_path / f"{arch}-{num_devices}")
    config = Config(arch=arch, width=8, optimizer=optimizer, steps=3, batch_size=16, log_every=steps_per_call,
                    eval_every=3, ckpt_every=3, num_eval_samples=16, num_devices=num_devices,
                    steps_per_call=steps_per_call if num_devices > 1 else 1, workdir=workdir)
    result = train_lib.train(config)
    return result, _final_params(workdir)

  one_result, one = run(1)
  eight_result, eight = run(8)
  assert one_result["step"] == eight_result["step"] == 3
  for name in ("g_params", "d_params", "g_batch_stats", "d_batch_stats", "g_ema_params"):
    if name not in one:
      continue
    for a, b in zip(jax.tree_util.tree_leaves(one[name]), jax.tree_util.tree_leaves(eight[name])):
      np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6, err_msg=name)


@multi_device
def test_num_devices_larger_than_available_is_a_clear_error(tmp_path):
  from jaxgan import train as train_lib
  from jaxgan.config import Config
  with pytest.raises(ValueError, match="--num_devices=16, but this process has 8"):
    train_lib.train(Config(steps=1, batch_size=16, num_devices=16, workdir=str(tmp_path / "r")))


@multi_device
def test_device_batches_shard_like_host_batches():
  devices = jax.devices()[:N_DEVICES]
  host = np.arange(2 * 16 * 2, dtype=np.float32).reshape(2, 16, 2)
  from_host = parallel.shard_batch({"image": host}, devices)
  from_device = parallel.shard_batch({"image": jnp.asarray(host)}, devices)
  assert from_device["image"].sharding == from_host["image"].sharding
  np.testing.assert_array_equal(np.asarray(from_device["image"]), np.asarray(from_host["image"]))
