"""Benchmark: one DCGAN training iteration, jaxgan vs the PyTorch reference (pytorch/examples dcgan), CPU.

One iteration = a D step on a real and a fake batch, then a G step, both players with
Adam(lr=2e-4, betas=(0.5, 0.999)) and the non-saturating (BCE) objective:

* PyTorch: exactly the loop of pytorch/examples/dcgan/main.py (G ConvTranspose-BN-ReLU stack + Tanh,
  D Conv-BN-LeakyReLU(0.2) stack + Sigmoid, ``BCELoss``; D on real, D on ``fake.detach()``, D step,
  then G step through D(fake) reusing the same ``fake``).
* jaxgan: ``jaxgan.steps.train_step`` (jitted, state donated, n_critic=1, no EMA) on a
  ``GANState.create`` state with ``jaxgan.models.dcgan`` models, with ``StepConfig(reuse_fake=True)``,
  ``--arch=dcgan``'s default: like the PyTorch loop (and the original dcgan.torch), G's update reuses the
  D step's fake batch, pulled back through one saved VJP of G, so both run G forward once per iteration.
  ``--no-reuse-fake`` times jaxgan's other mode instead (fresh latents and a second G forward for the G
  update, Goodfellow et al. 2014, Algorithm 1; the default of ``--arch=mlp/resnet``), which does more work
  than the reference.

Shapes are identical (ngf = ndf = 64, nz = 100; 28x28 uses the 7 -> 14 -> 28 plan of
``jaxgan.models.dcgan.resolution_plan`` in both). Real batches are fixed in-memory arrays (no input
pipeline in the timing). After ``--warmup`` untimed iterations of each, the two frameworks' iterations
are timed alternately (jaxgan, torch, jaxgan, torch, ...) so machine noise hits both; each reports the
median of ``--iters`` iterations. jaxgan's compile time (``lower().compile()`` of the step) is reported
separately and is not in ms/iter.

Threads: both frameworks get ``--threads`` threads (default: the CPUs this process may run on). The
process is pinned to that many CPUs with ``os.sched_setaffinity`` *before* JAX starts (XLA:CPU sizes its
intra-op thread pool from the affinity mask) and ``torch.set_num_threads(n)`` is called; with
``--threads=1`` XLA also gets ``--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1``.

Output format (parsed by other tools; keep stable): a header line, a column line, then per configuration
one table row and one line ``ratio: X.XX`` (jaxgan ms / PyTorch ms, < 1 means jaxgan is faster), a
``loadavg after:`` line, and as the LAST line ``ratio: X.XX``, the geometric mean of the per-configuration
ratios. Per-iteration progress goes to stderr. Example::

    jax 0.10.2 (cpu), torch 2.13.0+cpu, threads=2 (affinity [0, 1]), ... loadavg=2.50, XLA_FLAGS=''
    config          batch  jaxgan ms  torch ms  compile s
    64x64x3            64     2609.3    4503.6        5.6
    ratio: 0.58
    28x28x1            64      344.1     730.3        5.1
    ratio: 0.47
    loadavg after: 5.51 5.01 7.48
    ratio: 0.52

Usage (PyTorch from the optional extra ``bench``: ``pip install torch==2.13.0``, the CPU build)::

    python bench/dcgan_vs_torch.py                                   # all 4 configs, 10 iterations
    python bench/dcgan_vs_torch.py --configs=28x28x1:64 --iters=5    # quick
    python bench/dcgan_vs_torch.py --precision=bfloat16              # jaxgan bf16 compute (torch fp32)
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from typing import Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout

DEFAULT_CONFIGS = '64x64x3:64,64x64x3:256,28x28x1:64,28x28x1:256'


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--configs', default=DEFAULT_CONFIGS,
                      help='comma-separated HxWxC:batch (H == W in 28, 32, 64, ...)')
  parser.add_argument('--iters', type=int, default=10, help='timed iterations per framework (median)')
  parser.add_argument('--warmup', type=int, default=1, help='untimed iterations per framework')
  parser.add_argument('--threads', type=int, default=len(os.sched_getaffinity(0)))
  parser.add_argument('--precision', default='float32', choices=['float32', 'bfloat16'],
                      help="jaxgan's compute dtype (params stay float32); PyTorch always runs float32")
  parser.add_argument('--conv-impl', default='auto', help="DCGANGenerator.conv_impl (see jaxgan.models.layers)")
  parser.add_argument('--d-conv-impl', default='auto', help="DCGANDiscriminator.conv_impl")
  parser.add_argument('--reuse-fake', action=argparse.BooleanOptionalAction, default=True,
                      help="jaxgan's G update reuses the D step's fake batch (as the reference does)")
  parser.add_argument('--xla-defaults', action=argparse.BooleanOptionalAction, default=True,
                      help="add jaxgan's XLA:CPU flags (jaxgan.xla_flags, as launch.py does) before JAX starts")
  parser.add_argument('--width', type=int, default=64, help='ngf = ndf')
  parser.add_argument('--latent-dim', type=int, default=100)
  args = parser.parse_args(argv)
  if args.iters < 1 or args.threads < 1:
    parser.error('--iters and --threads must be >= 1')
  return args


def parse_configs(text: str) -> list[tuple[int, int, int]]:
  """'64x64x3:64,...' -> [(resolution, channels, batch), ...]."""
  out = []
  for item in text.split(','):
    shape, batch = item.split(':')
    h, w, c = (int(v) for v in shape.split('x'))
    if h != w:
      raise ValueError(f'square images only, got {shape}')
    out.append((h, c, int(batch)))
  return out


def set_threads(n: int) -> None:
  """Pins this process to n CPUs before JAX/XLA starts (see the module docstring)."""
  cpus = sorted(os.sched_getaffinity(0))
  if n > len(cpus):
    raise ValueError(f'--threads={n} but only {len(cpus)} CPUs are available')
  os.sched_setaffinity(0, cpus[:n])
  if n == 1:
    os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '')
                               + ' --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1')


# --- PyTorch reference (pytorch/examples/dcgan/main.py, generalised to 28x28 like jaxgan) ----------------


def torch_iteration(resolution: int, channels: int, batch: int, width: int, nz: int, real_np) -> Callable:
  """Returns a no-argument callable running one pytorch/examples DCGAN training iteration."""
  import torch
  from torch import nn

  from jaxgan.models.dcgan import resolution_plan

  start, n = resolution_plan(resolution)
  g_layers: list[nn.Module] = []
  feats = width * 2 ** (n - 1)
  g_layers += [nn.ConvTranspose2d(nz, feats, start, 1, 0, bias=False), nn.BatchNorm2d(feats), nn.ReLU(True)]
  for _ in range(1, n):
    g_layers += [nn.ConvTranspose2d(feats, feats // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(feats // 2),
                 nn.ReLU(True)]
    feats //= 2
  g_layers += [nn.ConvTranspose2d(feats, channels, 4, 2, 1, bias=False), nn.Tanh()]
  d_layers: list[nn.Module] = [nn.Conv2d(channels, width, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
  feats = width
  for _ in range(1, n):
    d_layers += [nn.Conv2d(feats, 2 * feats, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * feats),
                 nn.LeakyReLU(0.2, True)]
    feats *= 2
  d_layers += [nn.Conv2d(feats, 1, start, 1, 0, bias=False), nn.Sigmoid()]
  net_g, net_d = nn.Sequential(*g_layers), nn.Sequential(*d_layers)

  def weights_init(m):  # pytorch/examples' init
    name = m.__class__.__name__
    if 'Conv' in name:
      torch.nn.init.normal_(m.weight, 0.0, 0.02)
    elif 'BatchNorm' in name:
      torch.nn.init.normal_(m.weight, 1.0, 0.02)
      torch.nn.init.zeros_(m.bias)

  torch.manual_seed(0)
  net_g.apply(weights_init)
  net_d.apply(weights_init)
  criterion = nn.BCELoss()
  opt_d = torch.optim.Adam(net_d.parameters(), lr=2e-4, betas=(0.5, 0.999))
  opt_g = torch.optim.Adam(net_g.parameters(), lr=2e-4, betas=(0.5, 0.999))
  real = torch.from_numpy(real_np.transpose(0, 3, 1, 2).copy())
  ones, zeros = torch.ones(batch), torch.zeros(batch)

  def iteration() -> float:
    net_d.zero_grad()
    err_real = criterion(net_d(real).view(-1), ones)
    err_real.backward()
    noise = torch.randn(batch, nz, 1, 1)
    fake = net_g(noise)
    err_fake = criterion(net_d(fake.detach()).view(-1), zeros)
    err_fake.backward()
    opt_d.step()
    net_g.zero_grad()
    err_g = criterion(net_d(fake).view(-1), ones)
    err_g.backward()
    opt_g.step()
    return err_g.item()  # a host sync, as in pytorch/examples' logging

  return iteration


# --- jaxgan ---------------------------------------------------------------------------------------------


def jaxgan_iteration(resolution: int, channels: int, batch: int, width: int, nz: int, real_np,
                     precision: str, conv_impl: str, d_conv_impl: str,
                     reuse_fake: bool) -> tuple[Callable, float]:
  """(one-iteration callable, compile seconds) for jaxgan's jitted ``train_step`` with a donated state."""
  import functools

  import jax
  import jax.numpy as jnp

  from jaxgan.models.dcgan import DCGANDiscriminator, DCGANGenerator
  from jaxgan.state import GANState, make_optimizer
  from jaxgan.steps import StepConfig, train_step

  dtype = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}[precision]
  gen = DCGANGenerator(resolution=resolution, latent_dim=nz, ngf=width, channels=channels, dtype=dtype,
                       conv_impl=conv_impl)
  disc = DCGANDiscriminator(resolution=resolution, ndf=width, channels=channels, dtype=dtype,
                            conv_impl=d_conv_impl)
  adam = lambda: make_optimizer('adam', learning_rate=2e-4, beta1=0.5, beta2=0.999)  # noqa: E731
  state = GANState.create(generator=gen, discriminator=disc, g_tx=adam(), d_tx=adam(),
                          key=jax.random.PRNGKey(0), latent_dim=nz,
                          d_input=jnp.zeros((1, resolution, resolution, channels)))
  batches = {'image': jnp.asarray(real_np)[None]}  # leading n_critic axis
  step = jax.jit(functools.partial(train_step, config=StepConfig(objective='nonsaturating', latent_dim=nz,
                                                                  ema=False, reuse_fake=reuse_fake)),
                 donate_argnums=0)
  t0 = time.perf_counter()
  compiled = step.lower(state, batches).compile()
  compile_s = time.perf_counter() - t0
  holder = {'state': state}

  def iteration() -> float:
    holder['state'], metrics = compiled(holder['state'], batches)
    return float(metrics['g_loss'])  # a host sync, so the timing covers the whole step

  return iteration, compile_s


def timed_alternately(calls: dict[str, Callable[[], float]], iters: int, warmup: int) -> dict[str, float]:
  """Median seconds per call; the frameworks alternate call by call."""
  for name, call in calls.items():
    for _ in range(warmup):
      t0 = time.perf_counter()
      call()
      print(f'  {name} warm-up: {(time.perf_counter() - t0) * 1e3:.0f} ms', file=sys.stderr, flush=True)
  times: dict[str, list[float]] = {name: [] for name in calls}
  for _ in range(iters):
    for name, call in calls.items():
      t0 = time.perf_counter()
      loss = call()
      times[name].append(time.perf_counter() - t0)
      print(f'  {name}: {times[name][-1] * 1e3:.0f} ms', file=sys.stderr, flush=True)  # progress
      if not math.isfinite(loss):
        raise FloatingPointError(f'{name}: non-finite loss {loss}')
  return {name: statistics.median(ts) for name, ts in times.items()}


def main(argv: list[str] | None = None) -> None:
  args = parse_args(argv)
  configs = parse_configs(args.configs)
  set_threads(args.threads)
  if args.xla_defaults:
    from jaxgan.xla_flags import apply_cpu_defaults
    apply_cpu_defaults()
  import jax
  import numpy as np
  import torch

  torch.set_num_threads(args.threads)
  print(f'jax {jax.__version__} ({jax.default_backend()}), torch {torch.__version__}, '
        f'threads={args.threads} (affinity {sorted(os.sched_getaffinity(0))}), '
        f'jaxgan precision={args.precision} reuse_fake={args.reuse_fake} conv_impl={args.conv_impl}/{args.d_conv_impl}, iters={args.iters} '
        f'warmup={args.warmup}, loadavg={os.getloadavg()[0]:.2f}, XLA_FLAGS={os.environ.get("XLA_FLAGS", "")!r}')
  print(f'{"config":<14}{"batch":>7}{"jaxgan ms":>11}{"torch ms":>10}{"compile s":>11}', flush=True)
  ratios = []
  for resolution, channels, batch in configs:
    real = np.random.default_rng(0).uniform(-1, 1, (batch, resolution, resolution, channels)).astype(np.float32)
    jax_call, compile_s = jaxgan_iteration(resolution, channels, batch, args.width, args.latent_dim, real,
                                           args.precision, args.conv_impl, args.d_conv_impl, args.reuse_fake)
    torch_call = torch_iteration(resolution, channels, batch, args.width, args.latent_dim, real)
    t = timed_alternately({'jaxgan': jax_call, 'torch': torch_call}, args.iters, args.warmup)
    ratio = t['jaxgan'] / t['torch']
    ratios.append(ratio)
    name = f'{resolution}x{resolution}x{channels}'
    print(f'{name:<14}{batch:>7}{t["jaxgan"] * 1e3:>11.1f}{t["torch"] * 1e3:>10.1f}{compile_s:>11.1f}')
    print(f'ratio: {ratio:.2f}', flush=True)
  print(f'loadavg after: {" ".join(f"{v:.2f}" for v in os.getloadavg())}')
  print(f'ratio: {math.exp(sum(map(math.log, ratios)) / len(ratios)):.2f}')


if __name__ == '__main__':
  sys.exit(main())
