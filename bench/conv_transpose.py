"""Benchmark: forward + weight gradient of flax.linen.ConvTranspose vs jaxgan's ConvTranspose2x.

Both compute PyTorch's ConvTranspose2d(k=4, s=2, p=1, bias=False) (flax with the kernel flipped, checked
below) at the DCGAN 64x64 generator's shapes. Each timed call is one jitted step returning the output
and d(<y, cot>)/d kernel; median of --reps calls after two warm-up calls. Implementations are timed
round-robin so that load from other processes hits them alike. Optionally also times PyTorch if
``import torch`` works. The last line is ``ratio: X.XX`` = geometric mean over shapes of ours / flax.

    python bench/conv_transpose.py [--batch 64] [--reps 10] [--impl auto] [--all-grads]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxgan.models.layers import ConvTranspose2x

# (input size, in channels, out channels) of the stride-2 layers of the 64x64 DCGAN generator
SHAPES = [(4, 512, 256), (8, 256, 128), (16, 128, 64), (32, 64, 3)]


def make_step(module: nn.Module, all_grads: bool) -> Callable:
  """jit(x, kernel, cot) -> (y, d<y, cot>/dkernel [, d/dx])."""

  def step(x, kernel, cot):
    f = lambda k, x: module.apply({'params': {'kernel': k}}, x)
    y, vjp = jax.vjp(f, kernel, x)
    grads = vjp(cot)
    return (y,) + (grads if all_grads else grads[:1])

  return jax.jit(step)


def time_round_robin(calls: dict[str, Callable[[], object]], reps: int) -> dict[str, float]:
  """Median seconds per call; two warm-up calls each (compile + first run)."""
  for call in calls.values():
    jax.block_until_ready(call())
    jax.block_until_ready(call())
  times: dict[str, list[float]] = {name: [] for name in calls}
  for _ in range(reps):
    for name, call in calls.items():
      t0 = time.perf_counter()
      jax.block_until_ready(call())
      times[name].append(time.perf_counter() - t0)
  return {name: statistics.median(ts) for name, ts in times.items()}


def torch_call(x: np.ndarray, kernel: np.ndarray, cot: np.ndarray, all_grads: bool) -> Callable[[], object]:
  """PyTorch ConvTranspose2d(4, 2, 1) fwd + weight grad (only called when torch is installed)."""
  import torch
  xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).requires_grad_(all_grads)
  layer = torch.nn.ConvTranspose2d(kernel.shape[2], kernel.shape[3], 4, 2, 1, bias=False)
  with torch.no_grad():
    layer.weight.copy_(torch.from_numpy(np.ascontiguousarray(kernel.transpose(2, 3, 0, 1))))
  ct = torch.from_numpy(np.ascontiguousarray(cot.transpose(0, 3, 1, 2)))

  def call():
    layer.weight.grad = None
    y = layer(xt)
    y.backward(ct)
    return y

  return call


def main() -> None:
  from jaxgan.xla_flags import apply_cpu_defaults
  apply_cpu_defaults()  # as launch.py does; before the first JAX computation
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--batch', type=int, default=64)
  parser.add_argument('--reps', type=int, default=10)
  parser.add_argument('--impl', default='auto', choices=['auto', 'col2im', 'gemm', 'conv2x2', 'conv', 'lax'])
  parser.add_argument('--all-grads', action='store_true', help='also differentiate w.r.t. the input')
  args = parser.parse_args()

  print(f'backend={jax.default_backend()} devices={jax.devices()} batch={args.batch} reps={args.reps} '
        f'impl={args.impl} grads={"kernel+input" if args.all_grads else "kernel"}')
  have_torch = importlib.util.find_spec('torch') is not None
  print(f'{"shape (HxW, in->out)":<26}{"flax ms":>10}{"ours ms":>10}{"ours/flax":>10}'
        + (f'{"torch ms":>10}{"ours/torch":>11}' if have_torch else ''))
  ratios = []
  for size, ci, co in SHAPES:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.batch, size, size, ci), dtype=np.float32)
    kernel = (0.02 * rng.standard_normal((4, 4, ci, co))).astype(np.float32)
    cot = rng.standard_normal((args.batch, 2 * size, 2 * size, co), dtype=np.float32)
    flax_step = make_step(nn.ConvTranspose(co, (4, 4), (2, 2), padding='SAME', use_bias=False),
                          args.all_grads)
    ours_step = make_step(ConvTranspose2x(co, impl=args.impl), args.all_grads)
    xj, kj, cj = map(jnp.asarray, (x, kernel, cot))
    kj_flipped = kj[::-1, ::-1]  # flax/lax correlate: flipped kernel == same function
    out_flax = flax_step(xj, kj_flipped, cj)
    out_ours = ours_step(xj, kj, cj)
    err_y = float(jnp.max(jnp.abs(out_flax[0] - out_ours[0])))
    err_dk = float(jnp.max(jnp.abs(out_flax[1][::-1, ::-1] - out_ours[1])))
    scale = float(jnp.max(jnp.abs(out_flax[1])))
    assert err_y < 1e-4 and err_dk < 1e-4 * max(1.0, scale), (err_y, err_dk)
    calls = {'flax': lambda: flax_step(xj, kj_flipped, cj), 'ours': lambda: ours_step(xj, kj, cj)}
    if have_torch:
      calls['torch'] = torch_call(x, kernel, cot, args.all_grads)
    t = time_round_robin(calls, args.reps)
    ratio = t['ours'] / t['flax']
    ratios.append(ratio)
    label = f'{size}->{2 * size}, {ci}->{co}'
    row = f'{label:<26}{t["flax"] * 1e3:>10.1f}{t["ours"] * 1e3:>10.1f}{ratio:>10.3f}'
    if 'torch' in t:
      row += f'{t["torch"] * 1e3:>10.1f}{t["ours"] / t["torch"]:>11.2f}'
    print(row, flush=True)
  if not have_torch:
    print('(torch not installed: PyTorch column skipped)')
  print(f'ratio: {float(np.exp(np.mean(np.log(ratios)))):.2f}')


if __name__ == '__main__':
  main()
