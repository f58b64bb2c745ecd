"""The accelerator benchmark: every speed figure jaxgan records for one device, in one run of <= 6 minutes.

Prints exactly one ``name: value`` line per figure (a number, ``skipped (<reason>)`` or
``error <reason>``) and free-form context lines starting with ``#``; ``total_wall_s`` comes last.
Each figure is guarded: one that fails prints ``error`` for its remaining names and the others still
run. Nothing starts whose estimate (``Plan.estimates``, guesses for one GPU) no longer fits in
``--budget_s`` (default 350 s): its lines say ``skipped (time budget)``; rerun those with ``--only``.
An untimed 2-step toy run first takes the libraries' first-use costs out of figure 1.

Figures (``--only`` takes their keys, comma-separated):

1. ``toy``: ``python launch.py`` (``Config()``: mlp on ring8, 10k steps) through ``jaxgan.train.train``;
   wall seconds and loop steps/s, and the same with ``steps_per_call=1`` when ``Config`` has that field.
2. ``toy_sweep``: sweeps of 16, 64, 256 toy runs (seeds x four ``lr_d``) through
   ``jaxgan.sweep.run_sweep``, against a few of the same runs trained one after another with
   ``jaxgan.train.train``, extrapolated per run; ``eval_every = steps`` on both sides (one sample plot,
   checkpoint and eval.json per run).
3. ``dcgan``: ``python launch.py --objective=wgan --arch=dcgan`` (embedded digits, 1200 steps).
4. ``dcgan_torch``: one DCGAN training iteration of ``bench/dcgan_vs_torch.py`` (its jaxgan step and its
   pytorch/examples models) at 64x64x3, batches 64, 512, 2048: jaxgan float32 and bfloat16
   (``precision``), PyTorch float32 and bfloat16 autocast with channels_last, on the accelerator
   (``cudnn.benchmark``); ms/iter (median, the four timed alternately), ratios jaxgan / PyTorch, and
   MFU = analytic FLOPs per iteration / time / the device's dense bf16 peak (``dcgan_flops_per_sample``).
5. ``dcgan_sweep``: 8 DCGAN runs (seeds 0-7, digits, 200 steps, ``eval_every = steps``) as one
   ``run_sweep`` against the same 8 runs trained one after another with ``jaxgan.train.train``; walls
   with compilation, speedup = sequential / sweep.
6. ``stylegan``: ``--arch=stylegan`` on digits at its default width, 200 steps.

"Loop steps/s" (``*_loop_steps_per_s``, ``*_steady``) comes from the runs' ``metrics.jsonl``
``steps_per_sec`` rows without the first logged interval (which holds the compilation); walls include
everything (compilation, data, samples, checkpoints, evaluation). ``--quick`` runs every code path at
tiny sizes (2/4/8-run toy sweeps, a 4-run image sweep, a few steps and iterations, narrow image
models, 32x32 batch 8 for the PyTorch comparison), e.g. on a CPU; ``expected_names(quick)`` lists the
names either mode prints.
It installs nothing: PyTorch absent means ``skipped (torch not installed)`` for its lines.

  python bench/accelerator.py            # one GPU, <= 6 minutes
  python bench/accelerator.py --quick    # every code path, small sizes (a 2-core CPU: < 5 minutes)
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import json
import os
import pkgutil
import platform
import shutil
import sys
import tempfile
import time
import traceback
from typing import Any, Callable

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(BENCH_DIR))  # run from a checkout
sys.path.insert(0, BENCH_DIR)  # bench/dcgan_vs_torch.py

# Dense bf16 peak FLOP/s by a substring of ``jax.devices()[0].device_kind`` (vendor data sheets).
PEAK_BF16_FLOPS = {'H200': 989e12}
LR_D = (1e-4, 2e-4, 5e-4, 1e-3)
FIGURES = ('toy', 'toy_sweep', 'dcgan', 'dcgan_torch', 'dcgan_sweep', 'stylegan')


@dataclasses.dataclass(frozen=True)
class Plan:
  """Sizes of one mode; ``None`` = the Config default (what ``launch.py`` runs)."""

  toy_steps: int | None = None
  sweep_sizes: tuple[int, ...] = (16, 64, 256)
  sweep_steps: int = 2000
  sequential_runs: int = 2
  dcgan_steps: int | None = None
  torch_configs: tuple[tuple[int, int, int], ...] = ((64, 3, 64), (64, 3, 512), (64, 3, 2048))
  torch_width: int = 64
  torch_iters: int = 20
  torch_warmup: int = 3
  image_sweep_runs: int = 8
  image_sweep_steps: int = 200
  image_width: int | None = None  # figures 3 and 5 (None = the digits default)
  stylegan_steps: int = 200
  stylegan_width: int | None = None
  num_eval_samples: int | None = None  # image runs' evaluation samples (None = default)
  # Seconds a figure, a sweep of n toy runs (a + b * n) or one batch of figure 4 may take: nothing starts
  # unless its estimate fits in what is left of ``budget_s``. Guesses for one GPU; 0 = always start.
  estimates: tuple[tuple[str, float], ...] = (
      ('toy', 40), ('toy_sweep', 20), ('toy_sweep_a', 10), ('toy_sweep_b', 0.35), ('dcgan', 35),
      ('dcgan_torch', 10), ('dcgan_torch_batch', 30), ('dcgan_sweep', 120), ('stylegan', 70))
  budget_s: float = 350.0

  def estimate(self, key: str, n: int = 0) -> float:
    est = dict(self.estimates)
    if key == 'toy_sweep_n':
      return est.get('toy_sweep_a', 0) + est.get('toy_sweep_b', 0) * n
    return est.get(key, 0)


FULL = Plan()
QUICK = Plan(toy_steps=200, sweep_sizes=(2, 4, 8), sweep_steps=40, dcgan_steps=4,
             torch_configs=((32, 3, 8),), torch_width=32, torch_iters=3, torch_warmup=1, image_sweep_runs=4,
             image_sweep_steps=3, image_width=8, stylegan_steps=3, stylegan_width=8, num_eval_samples=64,
             estimates=(), budget_s=480.0)


def figure_names(plan: Plan) -> dict[str, list[str]]:
  """Every name each figure prints (in order)."""
  sweep = ['toy_sequential_runs_timed', 'toy_sequential_steps_per_s_wall', 'toy_sequential_steps_per_s_steady']
  for n in plan.sweep_sizes:
    sweep += [f'toy_sweep_{n}_wall_s', f'toy_sweep_{n}_model_steps_per_s_wall',
              f'toy_sweep_{n}_model_steps_per_s_steady', f'toy_sweep_{n}_speedup_wall',
              f'toy_sweep_{n}_speedup_steady']
  torch_names = []
  for res in dict.fromkeys(r for r, _, _ in plan.torch_configs):
    torch_names.append(f'dcgan{res}_gflop_per_sample')
  for res, _, batch in plan.torch_configs:
    tag = f'dcgan{res}_b{batch}'
    torch_names += [f'{tag}_jaxgan_f32_ms', f'{tag}_jaxgan_bf16_ms', f'{tag}_torch_f32_ms', f'{tag}_torch_bf16_ms',
                    f'{tag}_ratio_f32', f'{tag}_ratio_bf16', f'{tag}_jaxgan_bf16_mfu', f'{tag}_torch_bf16_mfu']
  n = plan.image_sweep_runs
  return {
      'toy': ['toy_default_wall_s', 'toy_default_loop_steps_per_s', 'toy_default_spc1_wall_s',
              'toy_default_spc1_loop_steps_per_s', 'toy_default_auto_over_spc1'],
      'toy_sweep': sweep,
      'dcgan': ['dcgan_default_wall_s', 'dcgan_default_loop_steps_per_s'],
      'dcgan_torch': torch_names,
      'dcgan_sweep': [f'dcgan_sweep_{n}_wall_s', f'dcgan_sequential_{n}_wall_s', f'dcgan_sweep_{n}_speedup',
                      f'dcgan_sweep_{n}_speedup_steady'],
      'stylegan': ['stylegan_wall_s', 'stylegan_loop_steps_per_s'],
  }


def expected_names(quick: bool) -> list[str]:
  """All names a run prints, in order (``total_wall_s`` last)."""
  return [n for names in figure_names(QUICK if quick else FULL).values() for n in names] + ['total_wall_s']


# --- output ----------------------------------------------------------------------------------------


class Report:
  """Writes ``name: value`` lines to the real stdout (libraries' prints go to stderr meanwhile)."""

  def __init__(self, stream):
    self.stream = stream
    self.printed: set[str] = set()

  def line(self, text: str) -> None:
    self.stream.write(text + '\n')
    self.stream.flush()

  def comment(self, text: str) -> None:
    self.line(f'# {text}')

  def put(self, name: str, value: Any) -> None:
    if isinstance(value, float):
      value = f'{value:.4g}' if abs(value) < 1e4 else f'{value:.0f}'
    self.line(f'{name}: {value}')
    self.printed.add(name)

  def skip(self, name: str, reason: str) -> None:
    self.put(name, f'skipped ({reason})')


def _short(e: BaseException) -> str:
  text = ' '.join(f'{type(e).__name__}: {e}'.split())
  return text[:200]


# --- helpers ---------------------------------------------------------------------------------------


def steady_interval(workdir: str) -> tuple[int, float]:
  """(steps, seconds) of a run's logged intervals after the first, which includes the compilation.

  From the ``steps_per_sec`` rows of ``metrics.jsonl`` (interval i took steps_i / steps_per_sec_i); with
  a single row, that row's interval.
  """
  intervals, prev = [], 0
  with open(os.path.join(workdir, 'metrics.jsonl'), encoding='utf-8') as f:
    for line in f:
      row = json.loads(line)
      rate = row.get('steps_per_sec')
      if isinstance(rate, (int, float)) and rate > 0 and int(row['step']) > prev:
        intervals.append((int(row['step']) - prev, (int(row['step']) - prev) / rate))
        prev = int(row['step'])
  if not intervals:
    raise ValueError(f'no steps_per_sec rows in {workdir}/metrics.jsonl')
  use = intervals[1:] or intervals
  return sum(d for d, _ in use), sum(t for _, t in use)


def steady_rate(*workdirs: str) -> float:
  """Steps/s over the steady intervals of one or more runs."""
  parts = [steady_interval(w) for w in workdirs]
  return sum(d for d, _ in parts) / sum(t for _, t in parts)


def has_steps_per_call() -> bool:
  from jaxgan.config import Config
  return 'steps_per_call' in {f.name for f in dataclasses.fields(Config)}


def timed_train(config) -> float:
  """Wall seconds of ``jaxgan.train.train(config)``."""
  from jaxgan import train as train_lib
  start = time.perf_counter()
  train_lib.train(config)
  return time.perf_counter() - start


def clear_caches() -> None:
  import jax
  jax.clear_caches()


# --- figure 1: the toy default ------------------------------------------------------------------------


def fig_toy(r: Report, plan: Plan, root: str) -> None:
  from jaxgan.config import Config
  base = {} if plan.toy_steps is None else {'steps': plan.toy_steps}
  auto_dir = os.path.join(root, 'toy_auto')
  wall = timed_train(Config(workdir=auto_dir, **base))
  auto_rate = steady_rate(auto_dir)
  r.put('toy_default_wall_s', wall)
  r.put('toy_default_loop_steps_per_s', auto_rate)
  if not has_steps_per_call():
    for name in ('toy_default_spc1_wall_s', 'toy_default_spc1_loop_steps_per_s', 'toy_default_auto_over_spc1'):
      r.skip(name, 'Config has no steps_per_call')
    return
  with open(os.path.join(auto_dir, 'config.json'), encoding='utf-8') as f:
    r.comment(f'toy default: steps_per_call={json.load(f).get("steps_per_call")} (as resolved by the run)')
  one_dir = os.path.join(root, 'toy_spc1')
  wall1 = timed_train(Config(workdir=one_dir, steps_per_call=1, **base))
  rate1 = steady_rate(one_dir)
  r.put('toy_default_spc1_wall_s', wall1)
  r.put('toy_default_spc1_loop_steps_per_s', rate1)
  r.put('toy_default_auto_over_spc1', auto_rate / rate1)


# --- figure 2: toy sweeps vs sequential ---------------------------------------------------------------


def toy_sweep_definition(n: int, steps: int) -> dict[str, Any]:
  lrs = LR_D[:min(n, len(LR_D))]
  if n % len(lrs):
    raise ValueError(f'{n} runs is not a multiple of {len(lrs)} learning rates')
  return {'base': {'arch': 'mlp', 'steps': steps, 'eval_every': steps},
          'grid': {'lr_d': list(lrs)}, 'seeds': list(range(n // len(lrs)))}


def fig_toy_sweep(r: Report, plan: Plan, root: str, budget_left: Callable[[], float]) -> None:
  from jaxgan import sweep as sweep_lib
  from jaxgan import train as train_lib
  from jaxgan.config import Config
  steps = plan.sweep_steps
  # Sequential: the first runs of the largest sweep, one after another, as a user without sweeps would.
  runs = sweep_lib.expand(toy_sweep_definition(max(plan.sweep_sizes), steps), os.path.join(root, 'unused'))
  k = plan.sequential_runs
  clear_caches()
  dirs = [os.path.join(root, f'toy_seq{i}') for i in range(k)]
  start = time.perf_counter()
  for run, d in zip(runs[:k], dirs):
    train_lib.train(Config(**{**run.overrides, 'arch': 'mlp', 'steps': steps, 'eval_every': steps,
                              'workdir': d}))
  seq_wall_rate = k * steps / (time.perf_counter() - start)
  seq_steady = steady_rate(*dirs)
  r.put('toy_sequential_runs_timed', k)
  r.put('toy_sequential_steps_per_s_wall', seq_wall_rate)
  r.put('toy_sequential_steps_per_s_steady', seq_steady)
  for n in plan.sweep_sizes:
    names = [f'toy_sweep_{n}_wall_s', f'toy_sweep_{n}_model_steps_per_s_wall',
             f'toy_sweep_{n}_model_steps_per_s_steady', f'toy_sweep_{n}_speedup_wall',
             f'toy_sweep_{n}_speedup_steady']
    if budget_left() < plan.estimate('toy_sweep_n', n):
      for name in names:
        r.skip(name, 'time budget')
      continue
    clear_caches()
    workdir = os.path.join(root, f'toy_sweep{n}')
    start = time.perf_counter()
    rows = sweep_lib.run_sweep(toy_sweep_definition(n, steps), workdir)
    wall = time.perf_counter() - start
    steady = n * steady_rate(rows[0]['workdir'])  # every member logs the group's per-run rate
    r.put(names[0], wall)
    r.put(names[1], n * steps / wall)
    r.put(names[2], steady)
    r.put(names[3], n * steps / wall / seq_wall_rate)
    r.put(names[4], steady / seq_steady)
    shutil.rmtree(workdir, ignore_errors=True)


# --- figure 3: the DCGAN default command ---------------------------------------------------------------


def fig_dcgan(r: Report, plan: Plan, root: str) -> None:
  from jaxgan.config import Config
  extra = {} if plan.dcgan_steps is None else {'steps': plan.dcgan_steps}
  if plan.image_width:
    extra['width'] = plan.image_width
  if plan.num_eval_samples:
    extra['num_eval_samples'] = plan.num_eval_samples
  workdir = os.path.join(root, 'dcgan_default')
  wall = timed_train(Config(objective='wgan', arch='dcgan', workdir=workdir, **extra))
  r.put('dcgan_default_wall_s', wall)
  r.put('dcgan_default_loop_steps_per_s', steady_rate(workdir))


# --- figure 4: one DCGAN iteration vs PyTorch --------------------------------------------------------


def dcgan_layer_macs(resolution: int, channels: int, width: int, latent_dim: int) -> tuple[int, int]:
  """(G, D) multiply-accumulates of one sample's forward pass: the convolutions and the projection.

  The layer plan of ``jaxgan.models.dcgan`` (and of the PyTorch reference in dcgan_vs_torch.py):
  G: z -> start x start x width*2^(n-1) (a k=start transposed conv of a 1x1 input), then n stride-2 4x4
  transposed convs halving the features down to ``channels``; D mirrors it with stride-2 4x4 convs and a
  final start x start conv to one logit. A transposed conv costs in_pixels*Cin*Cout*k^2 MACs, a conv
  out_pixels*Cin*Cout*k^2 (BatchNorm, activations and the optimizer are not counted).
  """
  from jaxgan.models.dcgan import resolution_plan
  start, n = resolution_plan(resolution)
  feats = width * 2 ** (n - 1)
  g = latent_dim * feats * start * start
  size, cin = start, feats
  for i in range(n):
    cout = channels if i == n - 1 else cin // 2
    g += size * size * cin * cout * 16
    size, cin = size * 2, cout
  d, size, cin = 0, resolution, channels
  for i in range(n):
    cout = width * 2 ** i
    size //= 2
    d += size * size * cin * cout * 16
    cin = cout
  d += start * start * cin
  return g, d


def dcgan_flops_per_sample(resolution: int, channels: int, width: int, latent_dim: int) -> float:
  """Analytic FLOPs (2 per MAC) of one training iteration per sample, G reusing D's fake batch.

  D update: D forward on real and fake (2 D), its backward on both (input and weight gradients, 2 x 2 D),
  G forward (1 G). G update: D forward on the fake batch (1 D), D's input gradient (1 D), G backward
  (input and weight gradients, 2 G). Total 8 D + 3 G forward passes' worth.
  """
  g, d = dcgan_layer_macs(resolution, channels, width, latent_dim)
  return 2.0 * (8 * d + 3 * g)


def _torch_models(resolution, channels, batch, width, nz, real):
  """The pytorch/examples G and D of ``dcgan_vs_torch.torch_iteration`` (same layers, same init)."""
  import dcgan_vs_torch
  iteration = dcgan_vs_torch.torch_iteration(resolution, channels, batch, width, nz, real)
  cells = dict(zip(iteration.__code__.co_freevars, (c.cell_contents for c in iteration.__closure__)))
  return cells['net_g'], cells['net_d']


def torch_iteration_on(device, resolution, channels, batch, width, nz, real_np, bf16: bool) -> Callable:
  """dcgan_vs_torch's reference iteration on ``device``; ``bf16``: autocast bfloat16 + channels_last."""
  import torch
  from torch import nn
  net_g, net_d = _torch_models(resolution, channels, batch, width, nz, real_np)
  fmt = torch.channels_last if bf16 else torch.contiguous_format
  net_g.to(device, memory_format=fmt)
  net_d.to(device, memory_format=fmt)
  opt_d = torch.optim.Adam(net_d.parameters(), lr=2e-4, betas=(0.5, 0.999))
  opt_g = torch.optim.Adam(net_g.parameters(), lr=2e-4, betas=(0.5, 0.999))
  criterion = nn.BCELoss()
  real = torch.from_numpy(real_np.transpose(0, 3, 1, 2).copy()).to(device).contiguous(memory_format=fmt)
  ones = torch.ones(batch, device=device)
  zeros = torch.zeros(batch, device=device)
  autocast = ((lambda: torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)) if bf16
              else contextlib.nullcontext)

  def d_out(x):  # BCELoss is not autocast-safe: the loss is taken in float32 outside autocast
    with autocast():
      y = net_d(x)
    return y.float().view(-1)

  def iteration() -> float:
    net_d.zero_grad()
    err_real = criterion(d_out(real), ones)
    err_real.backward()
    noise = torch.randn(batch, nz, 1, 1, device=device)
    with autocast():
      fake = net_g(noise)
    err_fake = criterion(d_out(fake.detach()), zeros)
    err_fake.backward()
    opt_d.step()
    net_g.zero_grad()
    err_g = criterion(d_out(fake), ones)
    err_g.backward()
    opt_g.step()
    return err_g.item()  # a host sync, as in pytorch/examples' logging

  return iteration


def fig_dcgan_torch(r: Report, plan: Plan, root: str, budget_left: Callable[[], float]) -> None:
  del root
  import jax
  import numpy as np
  import dcgan_vs_torch
  nz = 100
  kind = jax.devices()[0].device_kind
  peak = next((v for k, v in PEAK_BF16_FLOPS.items() if k in kind), None)
  if peak is None:
    r.comment(f'peak unknown for device_kind {kind!r}: MFU skipped')
  else:
    r.comment(f'peak {peak:.3g} bf16 dense FLOP/s ({kind})')
  try:
    import torch
  except ImportError:
    torch = None
  device = None
  if torch is not None:
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    if device == 'cuda':
      torch.backends.cudnn.benchmark = True
    else:
      torch.set_num_threads(len(os.sched_getaffinity(0)))
    r.comment(f'torch {torch.__version__} on {device}'
              + (f' ({torch.cuda.get_device_name(0)}, cudnn.allow_tf32={torch.backends.cudnn.allow_tf32})'
                 if device == 'cuda' else ''))
  r.comment(f'jax_default_matmul_precision={jax.config.jax_default_matmul_precision}')
  flops = {}
  for res, ch, _ in plan.torch_configs:
    if res not in flops:
      flops[res] = dcgan_flops_per_sample(res, ch, plan.torch_width, nz)
      r.put(f'dcgan{res}_gflop_per_sample', flops[res] / 1e9)
  for res, ch, batch in plan.torch_configs:
    tag = f'dcgan{res}_b{batch}'
    names = [f'{tag}_{s}' for s in ('jaxgan_f32_ms', 'jaxgan_bf16_ms', 'torch_f32_ms', 'torch_bf16_ms',
                                    'ratio_f32', 'ratio_bf16', 'jaxgan_bf16_mfu', 'torch_bf16_mfu')]
    if budget_left() < plan.estimate('dcgan_torch_batch'):
      for name in names:
        r.skip(name, 'time budget')
      continue
    real = np.random.default_rng(0).uniform(-1, 1, (batch, res, res, ch)).astype(np.float32)
    calls, compile_s = {}, {}
    for prec, key in (('float32', 'jaxgan_f32'), ('bfloat16', 'jaxgan_bf16')):
      calls[key], compile_s[key] = dcgan_vs_torch.jaxgan_iteration(
          res, ch, batch, plan.torch_width, nz, real, prec, 'auto', 'auto', True)
    if torch is not None:
      calls['torch_f32'] = torch_iteration_on(device, res, ch, batch, plan.torch_width, nz, real, bf16=False)
      calls['torch_bf16'] = torch_iteration_on(device, res, ch, batch, plan.torch_width, nz, real, bf16=True)
    t = dcgan_vs_torch.timed_alternately(calls, plan.torch_iters, plan.torch_warmup)
    r.comment(f'{tag}: jaxgan compile s f32 {compile_s["jaxgan_f32"]:.1f}, bf16 {compile_s["jaxgan_bf16"]:.1f}; '
              f'median of {plan.torch_iters} iterations after {plan.torch_warmup} warm-up')
    for key in ('jaxgan_f32', 'jaxgan_bf16', 'torch_f32', 'torch_bf16'):
      if key in t:
        r.put(f'{tag}_{key}_ms', t[key] * 1e3)
      else:
        r.skip(f'{tag}_{key}_ms', 'torch not installed')
    for prec in ('f32', 'bf16'):
      if f'torch_{prec}' in t:
        r.put(f'{tag}_ratio_{prec}', t[f'jaxgan_{prec}'] / t[f'torch_{prec}'])
      else:
        r.skip(f'{tag}_ratio_{prec}', 'torch not installed')
    for key in ('jaxgan_bf16', 'torch_bf16'):
      if peak is None:
        r.skip(f'{tag}_{key}_mfu', 'peak unknown')
      elif key not in t:
        r.skip(f'{tag}_{key}_mfu', 'torch not installed')
      else:
        r.put(f'{tag}_{key}_mfu', flops[res] * batch / t[key] / peak)
    del calls
    if torch is not None and device == 'cuda':
      torch.cuda.empty_cache()


# --- figure 5: DCGAN image sweep vs sequential ---------------------------------------------------------


def fig_dcgan_sweep(r: Report, plan: Plan, root: str) -> None:
  from jaxgan import sweep as sweep_lib
  from jaxgan import train as train_lib
  from jaxgan.config import Config
  n, steps = plan.image_sweep_runs, plan.image_sweep_steps
  base = {'arch': 'dcgan', 'steps': steps, 'eval_every': steps}
  if plan.image_width:
    base['width'] = plan.image_width
  if plan.num_eval_samples:
    base['num_eval_samples'] = plan.num_eval_samples
  definition = {'base': base, 'seeds': list(range(n))}
  clear_caches()
  workdir = os.path.join(root, 'dcgan_sweep')
  start = time.perf_counter()
  rows = sweep_lib.run_sweep(definition, workdir)
  sweep_wall = time.perf_counter() - start
  sweep_steady = n * steady_rate(rows[0]['workdir'])  # every member logs the group's per-run rate
  with open(os.path.join(workdir, 'sweep.json'), encoding='utf-8') as f:
    groups = len({run['group'] for run in json.load(f)['runs']})
  r.comment(f'dcgan sweep: {n} runs x {steps} steps in {groups} group(s)')
  clear_caches()
  start = time.perf_counter()
  seq_dirs = [os.path.join(root, f'dcgan_seq{seed}') for seed in range(n)]
  for seed, seq_dir in enumerate(seq_dirs):
    train_lib.train(Config(**base, seed=seed, workdir=seq_dir))
  seq_wall = time.perf_counter() - start
  r.put(f'dcgan_sweep_{n}_wall_s', sweep_wall)
  r.put(f'dcgan_sequential_{n}_wall_s', seq_wall)
  r.put(f'dcgan_sweep_{n}_speedup', seq_wall / sweep_wall)
  # Training alone, without each side's compilation: the group's model-steps/s over one run's steps/s.
  r.put(f'dcgan_sweep_{n}_speedup_steady', sweep_steady / steady_rate(*seq_dirs))


# --- figure 6: StyleGAN ------------------------------------------------------------------------------


def fig_stylegan(r: Report, plan: Plan, root: str) -> None:
  from jaxgan.config import Config
  extra: dict[str, Any] = {'steps': plan.stylegan_steps}
  if plan.stylegan_width:
    extra['width'] = plan.stylegan_width
  if plan.num_eval_samples:
    extra['num_eval_samples'] = plan.num_eval_samples
  workdir = os.path.join(root, 'stylegan')
  wall = timed_train(Config(arch='stylegan', workdir=workdir, **extra))
  r.put('stylegan_wall_s', wall)
  r.put('stylegan_loop_steps_per_s', steady_rate(workdir))


# --- main --------------------------------------------------------------------------------------------


def _gpu_plugin_installed() -> bool:
  return any(m.name.startswith(('jax_cuda', 'jax_rocm')) for m in pkgutil.iter_modules())


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--quick', action='store_true', help='tiny sizes: every code path, e.g. on a CPU')
  parser.add_argument('--only', default=','.join(FIGURES), help=f'figures to run, of {",".join(FIGURES)}')
  parser.add_argument('--budget_s', type=float, default=None,
                      help='seconds for the whole run: a figure (sweep size, batch) whose estimate does not '
                           'fit in what is left prints skipped (time budget)')
  args = parser.parse_args(argv)
  only = [f for f in args.only.split(',') if f]
  unknown = sorted(set(only) - set(FIGURES))
  if unknown:
    parser.error(f'--only: unknown figures {unknown}; valid: {",".join(FIGURES)}')
  plan = QUICK if args.quick else FULL
  budget = plan.budget_s if args.budget_s is None else args.budget_s
  t0 = time.perf_counter()
  report = Report(sys.stdout)

  if not _gpu_plugin_installed():
    from jaxgan.xla_flags import apply_cpu_defaults
    apply_cpu_defaults()  # before JAX starts, as launch.py does (XLA:CPU only)
  from absl import logging
  logging.set_verbosity(logging.WARNING)
  import jax
  import jaxlib
  import flax

  devices = jax.devices()
  report.comment(f'date {datetime.datetime.now().astimezone().isoformat(timespec="seconds")}, '
                 f'{"quick" if args.quick else "full"} mode, budget {budget:.0f} s')
  report.comment(f'devices: {len(devices)} x {devices[0].platform} {devices[0].device_kind!r}; '
                 f'{os.cpu_count()} CPUs; loadavg {os.getloadavg()[0]:.2f}')
  report.comment(f'jax {jax.__version__}, jaxlib {jaxlib.__version__}, flax {flax.__version__}, '
                 f'python {platform.python_version()}; XLA_FLAGS={os.environ.get("XLA_FLAGS", "")!r}')
  report.comment(f'Config.steps_per_call: {"present" if has_steps_per_call() else "absent"}')

  root = tempfile.mkdtemp(prefix='jaxgan_accel_')
  names = figure_names(plan)
  budget_left = lambda: budget - (time.perf_counter() - t0)  # noqa: E731
  runners = {
      'toy': lambda: fig_toy(report, plan, root),
      'toy_sweep': lambda: fig_toy_sweep(report, plan, root, budget_left),
      'dcgan': lambda: fig_dcgan(report, plan, root),
      'dcgan_torch': lambda: fig_dcgan_torch(report, plan, root, budget_left),
      'dcgan_sweep': lambda: fig_dcgan_sweep(report, plan, root),
      'stylegan': lambda: fig_stylegan(report, plan, root),
  }
  try:
    try:  # untimed: library imports and first-use costs (orbax, tensorboardX, Pillow, ...) out of figure 1
      from jaxgan import train as train_lib
      from jaxgan.config import Config
      with contextlib.redirect_stdout(sys.stderr):
        train_lib.train(Config(width=3, steps=2, workdir=os.path.join(root, 'warmup')))
    except Exception as e:  # noqa: BLE001 - the figures report their own errors
      report.comment(f'warm-up run failed: {_short(e)}')
    for key in FIGURES:
      if key not in only:
        continue
      if budget_left() < plan.estimate(key):
        for name in names[key]:
          report.skip(name, 'time budget')
        continue
      start = time.perf_counter()
      try:
        with contextlib.redirect_stdout(sys.stderr):
          runners[key]()
      except Exception as e:  # noqa: BLE001 - one figure's failure must not stop the others
        traceback.print_exc(file=sys.stderr)
        for name in names[key]:
          if name not in report.printed:
            report.line(f'{name}: error {_short(e)}')
      report.comment(f'{key} took {time.perf_counter() - start:.1f} s')
  finally:
    shutil.rmtree(root, ignore_errors=True)
  report.put('total_wall_s', time.perf_counter() - t0)
  return 0


if __name__ == '__main__':
  sys.exit(main())
