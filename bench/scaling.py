"""Data-parallel scaling: training steps/s of one GAN on 1, 2, 4, 8 devices at a fixed global batch.

Runs jaxgan's real step (``jaxgan.recipes.gan.make_train_step``) pmapped with ``jaxgan.parallel`` over the
first n local devices, each device taking ``batch_size / n`` examples of the same global batch, exactly as
``launch.py --num_devices=n`` does; the batch is a fixed device-resident array, so the input pipeline is
not measured. Compilation is timed separately (first call); then ``--steps`` steps are timed, synchronising
only at the end, and the median of ``--repeats`` such rounds is reported.

Without accelerators, ``--cpu_devices`` forced host devices are requested (``XLA_FLAGS``, set before JAX
starts): they share this machine's cores, so CPU numbers show the overhead of sharding, not a speed-up.
With GPUs/TPUs present the real devices are used (the flag only affects the host platform).

Output: one line per device count, ``devices: N  steps/s: X  images/s: Y  speedup: Z`` (speedup vs 1
device, measured in the same process), then a last line ``scaling: Z`` = the speedup at the largest count.

  python bench/scaling.py --arch=dcgan --batch_size=64 --devices=1,2,4,8
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__" and "jax" not in sys.modules:
  _count = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--cpu_devices=")), "8")
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                             f" --xla_force_host_platform_device_count={_count}").strip()
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  from jaxgan.xla_flags import apply_cpu_defaults  # noqa: E402
  apply_cpu_defaults()  # as launch.py does

import statistics  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from jaxgan import parallel  # noqa: E402
from jaxgan.config import Config  # noqa: E402
from jaxgan.recipes import gan as gan_recipe  # noqa: E402

flags.DEFINE_string("arch", "dcgan", "mlp, dcgan or resnet.")
flags.DEFINE_string("objective", "nonsaturating", "Objective (its n_critic applies).")
flags.DEFINE_integer("batch_size", 64, "Global batch size (divisible by every device count).")
flags.DEFINE_integer("width", None, "Model width (default: the arch's).")
flags.DEFINE_integer("resolution", None, "Image resolution (default: 28 for the embedded digits).")
flags.DEFINE_list("devices", ["1", "2", "4", "8"], "Device counts to measure.")
flags.DEFINE_integer("steps", 10, "Timed steps per round.")
flags.DEFINE_integer("repeats", 3, "Rounds per device count (median reported).")
flags.DEFINE_integer("cpu_devices", 8, "Forced host devices when running on the CPU (read before JAX starts).")
FLAGS = flags.FLAGS


class _FixedBatches:
  """A batch source repeating one random batch (the pipeline is not what is measured)."""

  def __init__(self, config: Config, source):
    self.num_classes = source.num_classes
    self.example_shape = source.example_shape
    rng = np.random.default_rng(0)
    shape = (config.n_critic, config.batch_size) + tuple(self.example_shape)
    self.batch = {"image": rng.uniform(-1, 1, shape).astype(np.float32)}


def measure(config: Config, n: int) -> tuple[float, float]:
  """(compile seconds, median steps/s) of the step on the first ``n`` local devices."""
  devices = parallel.local_devices(n)
  axis = parallel.AXIS if n > 1 else None
  source = gan_recipe.make_source(config)
  fixed = _FixedBatches(config, source)
  state = gan_recipe.create_state(config, source, axis)
  step_fn = gan_recipe.make_train_step(config, source, axis)
  if n > 1:
    step = parallel.pmap_step(step_fn, devices)
    state = parallel.replicate(state, devices)
    batch = parallel.shard_batch(fixed.batch, devices)
  else:
    step = jax.jit(step_fn, donate_argnums=0)
    batch = jax.device_put(fixed.batch, devices[0])
  start = time.perf_counter()
  state, metrics = step(state, batch)
  jax.block_until_ready(metrics)
  compile_s = time.perf_counter() - start
  rates = []
  for _ in range(FLAGS.repeats):
    start = time.perf_counter()
    for _ in range(FLAGS.steps):
      state, metrics = step(state, batch)
    jax.block_until_ready((state, metrics))
    rates.append(FLAGS.steps / (time.perf_counter() - start))
  return compile_s, statistics.median(rates)


def main(argv):
  del argv
  config = Config(arch=FLAGS.arch, objective=FLAGS.objective, batch_size=FLAGS.batch_size,
                  width=FLAGS.width, resolution=FLAGS.resolution, workdir="/tmp/unused").resolve()
  counts = [int(c) for c in FLAGS.devices if int(c) <= jax.local_device_count()]
  load = " ".join(f"{x:.2f}" for x in os.getloadavg())
  res = f"{config.resolution}px" if config.resolution else "2-D"
  print(f"{config.arch}/{config.objective} on {config.dataset} {res}, width {config.width}, "
        f"global batch {config.batch_size}; {jax.local_device_count()} {jax.devices()[0].platform} device(s) "
        f"({jax.devices()[0].device_kind}), {os.cpu_count()} CPUs; load average {load}")
  base = None
  for n in counts:
    compile_s, rate = measure(config, n)
    base = base or rate
    print(f"devices: {n}  compile_s: {compile_s:.1f}  steps/s: {rate:.2f}  "
          f"images/s: {rate * config.batch_size:.0f}  speedup: {rate / base:.2f}", flush=True)
  print(f"scaling: {rate / base:.2f}")


if __name__ == "__main__":
  app.run(main)
