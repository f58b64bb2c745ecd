"""Benchmark: forward, input gradient and kernel gradient of DCGAN's conv layers, per formulation, vs PyTorch.

For each stride-2 layer of the DCGAN generator (``ConvTranspose2x``, PyTorch ``ConvTranspose2d(4, 2, 1)``)
and discriminator (``Conv4x4S2``, PyTorch ``Conv2d(4, 2, 1)``) at one batch size, times three jitted
functions separately for every formulation in ``jaxgan.models.layers``: the forward (``fwd``), the input
gradient (``dx``) and the kernel gradient (``dw``), each the VJP of one component with a fixed
cotangent; and PyTorch's forward and forward + backward (``torch_all``: output, input and weight
gradients). ``impl/conv`` is the formulation with the custom strided-conv VJP (``backward='conv'``, the
default), ``impl/autodiff`` the same forward differentiated by JAX. Medians of ``--reps`` calls after two
warm-up calls, milliseconds. Shapes are the 64x64 (``--resolution=64``) or 28x28 DCGAN's (ngf = ndf = 64).

    python bench/conv_layers.py [--batch 64] [--resolution 64] [--reps 7] [--no-torch]

The XLA:CPU flags of ``jaxgan.xla_flags`` are applied first (``--no-xla-defaults`` to compare without).
The last line is ``best_over_torch: X.XX``: the sum over layers of the fastest jaxgan fwd + dx + dw
(any formulation per component) over the sum of PyTorch's forward + backward.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout

# (input size, in channels, out channels) of the stride-2 layers
G_SHAPES = {64: [(4, 512, 256), (8, 256, 128), (16, 128, 64), (32, 64, 3)], 28: [(7, 128, 64), (14, 64, 1)]}
D_SHAPES = {64: [(64, 3, 64), (32, 64, 128), (16, 128, 256), (8, 256, 512)], 28: [(28, 1, 64), (14, 64, 128)]}


def median_ms(call: Callable[[], object], reps: int) -> float:
  call()
  call()
  times = []
  for _ in range(reps):
    t0 = time.perf_counter()
    call()
    times.append(time.perf_counter() - t0)
  return statistics.median(times) * 1e3


def jax_components(layer: Callable, x, kernel, cot, reps: int) -> dict[str, float]:
  """ms of the forward, the input gradient and the kernel gradient of ``layer(x, kernel)``."""
  import jax

  def component(which: str):
    def f(x, k, c):
      y, vjp = jax.vjp(layer, x, k)
      return y if which == 'fwd' else vjp(c)[0 if which == 'dx' else 1]
    return jax.jit(f)

  out = {}
  for which in ('fwd', 'dx', 'dw'):
    f = component(which)
    out[which] = median_ms(lambda: jax.block_until_ready(f(x, kernel, cot)), reps)
  return out


def torch_components(module, x, cot, reps: int) -> dict[str, float]:
  import numpy as np
  import torch

  tx = torch.from_numpy(np.asarray(x)).permute(0, 3, 1, 2).contiguous().requires_grad_(True)
  tc = torch.from_numpy(np.asarray(cot)).permute(0, 3, 1, 2).contiguous()

  def step():
    tx.grad = None
    module.weight.grad = None
    module(tx).backward(tc)

  with torch.no_grad():
    fwd = median_ms(lambda: module(tx), reps)
  return {'fwd': fwd, 'all': median_ms(step, reps)}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--batch', type=int, default=64)
  parser.add_argument('--resolution', type=int, default=64, choices=sorted(G_SHAPES))
  parser.add_argument('--reps', type=int, default=7)
  parser.add_argument('--torch', action=argparse.BooleanOptionalAction, default=True)
  parser.add_argument('--xla-defaults', action=argparse.BooleanOptionalAction, default=True)
  args = parser.parse_args()
  if args.xla_defaults:
    from jaxgan.xla_flags import apply_cpu_defaults
    apply_cpu_defaults()
  import jax
  import jax.numpy as jnp
  import numpy as np

  from jaxgan.models.layers import conv_4x4_s2, conv_transpose_2x

  if args.torch:
    import torch
    torch.set_num_threads(len(os.sched_getaffinity(0)))
  print(f'jax {jax.__version__}, batch {args.batch}, resolution {args.resolution}, reps {args.reps}, '
        f'CPUs {len(os.sched_getaffinity(0))}, loadavg {os.getloadavg()[0]:.2f}, '
        f'XLA_FLAGS={os.environ.get("XLA_FLAGS", "")!r}', flush=True)
  best_total = torch_total = 0.0
  layers = [('G', s) for s in G_SHAPES[args.resolution]] + [('D', s) for s in D_SHAPES[args.resolution]]
  for kind, (h, ci, co) in layers:
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((args.batch, h, h, ci), np.float32))
    kernel = jnp.asarray(0.02 * rng.standard_normal((4, 4, ci, co), np.float32))
    out_h = 2 * h if kind == 'G' else h // 2
    cot = jnp.asarray(rng.standard_normal((args.batch, out_h, out_h, co), np.float32))
    if kind == 'G':
      variants = {f'{i}/{b}': (lambda i, b: lambda x, k: conv_transpose_2x(x, k, impl=i, backward=b))(i, b)
                  for i in ('col2im', 'conv2x2', 'gemm') for b in ('conv', 'autodiff')}
      variants['lax'] = lambda x, k: conv_transpose_2x(x, k, impl='lax')
    else:
      variants = {'lax/conv': lambda x, k: conv_4x4_s2(x, k, impl='lax', backward='conv'),
                  'lax/autodiff': lambda x, k: conv_4x4_s2(x, k, impl='lax', backward='autodiff'),
                  'gemm': lambda x, k: conv_4x4_s2(x, k, impl='gemm')}
    times = {name: jax_components(f, x, kernel, cot, args.reps) for name, f in variants.items()}
    default = 'auto/conv'
    default_f = (lambda x, k: conv_transpose_2x(x, k)) if kind == 'G' else (lambda x, k: conv_4x4_s2(x, k))
    times[default] = jax_components(default_f, x, kernel, cot, args.reps)
    best = {w: min(t[w] for t in times.values()) for w in ('fwd', 'dx', 'dw')}
    cells = ' '.join(f'{n}={t["fwd"]:.1f}/{t["dx"]:.1f}/{t["dw"]:.1f}' for n, t in times.items())
    line = f'{kind} {h}x{h} {ci}->{co} (fwd/dx/dw ms) {cells}'
    if args.torch:
      module = (torch.nn.ConvTranspose2d if kind == 'G' else torch.nn.Conv2d)(ci, co, 4, 2, 1, bias=False)
      t = torch_components(module, x, cot, args.reps)
      line += f' | torch fwd={t["fwd"]:.1f} all={t["all"]:.1f}'
      torch_total += t['all']
    best_total += sum(best.values())
    print(line + f' | best sum={sum(best.values()):.1f} default sum={sum(times[default].values()):.1f}', flush=True)
  if args.torch:
    print(f'best_over_torch: {best_total / torch_total:.2f}')


if __name__ == '__main__':
  main()
