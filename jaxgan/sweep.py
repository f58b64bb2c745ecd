"""Hyperparameter sweeps: every group of structurally identical runs trains as ONE compiled program.

Sweep definition
----------------
A sweep is a Python file (or module, or a plain dict) defining ``SWEEP``::

    SWEEP = {
        "base": {"arch": "mlp", "dataset": "ring8", "steps": 5000},   # Config fields shared by all runs
        "grid": {"lr_g": [1e-4, 1e-3], "lr_d": [1e-4, 1e-3]},         # cartesian product
        "list": [{"objective": "nonsaturating"}, {"objective": "hinge", "n_critic": 2}],
        "seeds": [0, 1, 2],                                            # one run per seed
    }

Every key is optional. The runs are ``base | entry | point | {"seed": s}`` for every ``entry`` of
``list`` (default ``[{}]``), every ``point`` of the ``grid``'s cartesian product (default ``[{}]``) and
every ``s`` in ``seeds`` (default: no seed override), in that nesting order (seeds innermost). Keys of
``base``, ``grid`` and ``list`` are ``jaxgan.config.Config`` fields (unset fields take their usual
defaults; each run is ``Config.resolve()``-d and validated). ``workdir`` is set by the sweep: run ``i``
trains in ``<workdir>/<i:03d>-<field>=<value>,...`` named after the fields the grid, list and seeds set.
Unknown fields, unknown top-level keys, empty value lists, ``seed`` given both in ``seeds`` and
elsewhere, and two runs with the same resolved config raise ``SweepError`` naming the fix.

Grouping and what members may differ in
---------------------------------------
Runs whose compiled step is identical form a group, trained as ``jit(vmap(scan(train_step)))`` over a
stacked ``GANState`` (one leading member axis). Members may differ only in values that live in arrays:
``seed`` (init, latents, data), ``lr_g``/``lr_d``/``beta1``/``beta2`` (in the optax state through
``optax.inject_hyperparams``), the scalar weights in ``GANState.hparams`` (``gp_weight``, ``r1_gamma``,
``dragan_weight``, ``clip_value``, ``instance_noise``, ``label_smoothing``, ``ema_decay``, ``margin``) and
host-only fields (``workdir``, ``overwrite``). Everything else (arch, width, dataset, batch size, steps,
n_critic, pack, optimizer, ...) is part of the group key. Different objectives share a program through a
``lax.switch`` on ``hparams["objective_index"]`` (``StepConfig.objectives``; under vmap every member
computes every objective's loss and keeps its own, so a group of k objectives does up to k times the loss
arithmetic: cheap next to the networks), except that WGAN's weight clipping is part of the key; objectives
whose paper defaults differ (n_critic, optimizer) still land in different groups. A penalty switched on for one member
is switched on for the whole group: members whose weight is 0 compute it and add ``0 * penalty`` (their
updates are unchanged; their metric rows omit the penalty so they read like a single run's); EMA
likewise. Groups run one after another.

Toy (``--arch=mlp``) groups sample their data on the device per member, keyed by each member's seed
exactly as ``jaxgan.train`` does, and run ``gcd(log_every, eval_every, steps)`` steps per dispatch
(a ``lax.scan``). DCGAN/ResNet groups on a device-resident dataset (``train_image_group``) hold the
dataset once and gather each member's batches with its own seed's key, ``steps_per_call`` steps per
dispatch; a group too large for the device's memory is split in halves. Other image runs (other
architectures, Stacked MNIST, streamed datasets) fall back to sequential ``jaxgan.train.train`` per run
(full single-run behaviour, resume included).

Outputs
-------
Each run's workdir holds what a single toy run writes: ``config.json``, ``metrics.jsonl`` (same rows:
train metrics every ``log_every`` steps, ``eval/*`` every ``eval_every``; ``steps_per_sec`` is each
member's rate, the group's throughput is N times that), ``samples/``, ``tb/``, ``eval.json`` (same keys,
plus ``diverged_at_step`` for a run whose losses became non-finite) and one final checkpoint (so
``launch.py --workdir=<run dir> --steps=<more>`` continues a member alone). Intermediate checkpoints
(``ckpt_every``) are not written. A member that diverges does not stop its group; the others finish.
Re-running a sweep skips runs whose ``eval.json`` exists with the same config and retrains the rest from
scratch. The sweep's workdir gets ``sweep.json`` (the definition, runs and groups) and ``summary.csv`` /
``summary.md`` (final metrics, one row per run; the Markdown adds mean +- std over seeds).
"""

from __future__ import annotations

import csv
import dataclasses
import difflib
import functools
import hashlib
import importlib
import importlib.util
import itertools
import json
import math
import os
import re
import shutil
import time
import types
from typing import Any, Mapping, Sequence

import chex
import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from jax import lax
from PIL import Image

from jaxgan import evaluate, multistep, plots
from jaxgan import train as train_lib
from jaxgan.checkpoint import Checkpointer
from jaxgan.config import Config, ConfigError, config_differences
from jaxgan.data.batches import toy_batches
from jaxgan.data.device import data_key
from jaxgan.data.toy import TOY_DATASETS, ToyMixture
from jaxgan.metrics.toy import toy_metrics_jax
from jaxgan.state import GANState
from jaxgan.steps import StepConfig, train_step
from jaxgan.writers import BackgroundWork, RunWriter

SWEEP_KEYS = ("base", "grid", "list", "seeds")
# Config fields members of one compiled group may differ in: arrays in the state, or host-side only.
PER_MEMBER_FIELDS = frozenset({
    "seed", "lr_g", "lr_d", "beta1", "beta2", "gp_weight", "r1_gamma", "dragan_weight", "clip_value",
    "instance_noise", "label_smoothing", "ema_decay", "margin", "workdir", "overwrite", "objective"})
# Metric keys a step only emits when that penalty is on (dropped for members whose weight is 0).
_PENALTY_METRICS = {"gradient_penalty": "gradient_penalty", "r1_penalty": "r1", "dragan_penalty": "dragan"}
_EVAL_BOOKKEEPING = ("g_params_sha256", "num_samples", "eval_params")
_COLUMN_ORDER = {"step": 0, "modes": 1, "hq_fraction": 2, "reverse_kl": 3}


class SweepError(ConfigError):
  """A sweep definition that cannot be expanded; the message names the fix."""


@dataclasses.dataclass(frozen=True)
class Run:
  """One configuration of a sweep.

  Attributes:
    name: directory name under the sweep's workdir (``<index>-<field>=<value>,...``).
    overrides: the fields the grid, list entry and seeds set for this run (what distinguishes it).
    config: the resolved config (``workdir`` = the run's directory).
  """

  name: str
  overrides: dict[str, Any]
  config: Config


# --- definition -> runs ------------------------------------------------------------------------------


def load_sweep(path_or_module: str | os.PathLike | types.ModuleType | Mapping[str, Any]) -> dict[str, Any]:
  """Returns the ``SWEEP`` dict of a .py file, an importable module (object or dotted name), or a dict."""
  if isinstance(path_or_module, Mapping):
    return dict(path_or_module)
  module = path_or_module
  if not isinstance(module, types.ModuleType):
    path = os.fspath(path_or_module)
    if path.endswith(".py") or os.path.exists(path):
      if not os.path.isfile(path):
        raise SweepError(f"Sweep file {path!r} does not exist")
      name = "jaxgan_sweep_" + os.path.splitext(os.path.basename(path))[0]
      spec = importlib.util.spec_from_file_location(name, path)
      module = importlib.util.module_from_spec(spec)
      spec.loader.exec_module(module)
    else:
      try:
        module = importlib.import_module(path)
      except ImportError as e:
        raise SweepError(f"{path!r} is neither a sweep file (.py) nor an importable module: {e}") from None
  sweep = getattr(module, "SWEEP", None)
  if not isinstance(sweep, Mapping):
    raise SweepError(f"{getattr(module, '__file__', module)} must define a dict SWEEP = "
                     f"{{'base': {{...}}, 'grid': {{...}}, 'list': [...], 'seeds': [...]}}")
  return dict(sweep)


def _check_fields(fields: Sequence[str], where: str) -> None:
  known = [f.name for f in dataclasses.fields(Config)]
  for name in fields:
    if name == "workdir":
      raise SweepError(f"{where}: 'workdir' is set by the sweep (one directory per run under the sweep's "
                       f"workdir); remove it")
    if name not in known:
      close = difflib.get_close_matches(name, known, n=3)
      hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
      raise SweepError(f"{where}: unknown config field {name!r}.{hint} Valid fields: {', '.join(known)}")


def _format_value(value: Any) -> str:
  text = f"{value:g}" if isinstance(value, float) else str(value)
  return "".join(c if c.isalnum() or c in "._+-=" else "_" for c in text)


def expand(sweep: Mapping[str, Any], workdir: str) -> list[Run]:
  """The resolved runs of a sweep definition (see the module docstring for the format)."""
  unknown = sorted(set(sweep) - set(SWEEP_KEYS))
  if unknown:
    raise SweepError(f"Unknown sweep keys {unknown}; a sweep has {', '.join(SWEEP_KEYS)} "
                     f"(put config fields under 'base' or 'grid')")
  base = dict(sweep.get("base", {}))
  grid = dict(sweep.get("grid", {}))
  entries = [dict(e) for e in sweep.get("list", [{}])]
  seeds = list(sweep["seeds"]) if "seeds" in sweep else None
  _check_fields(list(base), "sweep 'base'")
  _check_fields(list(grid), "sweep 'grid'")
  for i, entry in enumerate(entries):
    _check_fields(list(entry), f"sweep 'list' entry {i}")
  for name, values in grid.items():
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
      raise SweepError(f"sweep 'grid' field {name!r} needs a non-empty list of values (got {values!r})")
  if not entries:
    raise SweepError("sweep 'list' is empty; remove it or give at least one override dict")
  if seeds is not None:
    if not seeds:
      raise SweepError("sweep 'seeds' is empty; remove it or list at least one seed")
    if any("seed" in d for d in [base, grid, *entries]):
      raise SweepError("'seed' is set both by 'seeds' and in base/grid/list; set it in one place")

  grid_points = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
  runs: list[Run] = []
  seen: dict[str, str] = {}
  for entry in entries:
    for point in grid_points:
      for seed in (seeds if seeds is not None else [None]):
        overrides = {**entry, **point, **({} if seed is None else {"seed": seed})}
        label = ",".join(f"{k}={_format_value(v)}" for k, v in overrides.items())
        if len(label) > 150:  # keep directory names well under filesystem limits
          label = label[:130] + "-" + hashlib.sha1(label.encode()).hexdigest()[:10]
        name = f"{len(runs):03d}" + (f"-{label}" if label else "")
        try:
          config = Config.from_dict({**base, **overrides, "workdir": os.path.join(workdir, name)}).resolve()
        except (ConfigError, TypeError) as e:
          raise SweepError(f"sweep run {name} ({overrides}): {e}") from None
        fingerprint = json.dumps({**dataclasses.asdict(config), "workdir": None}, sort_keys=True)
        if fingerprint in seen:
          raise SweepError(f"sweep runs {seen[fingerprint]} and {name} have the same config; "
                           f"remove the duplicate values")
        seen[fingerprint] = name
        runs.append(Run(name=name, overrides=overrides, config=config))
  return runs


# --- grouping ----------------------------------------------------------------------------------------


def group_key(config: Config) -> tuple[tuple[str, Any], ...]:
  """What must match for two runs to share a compiled program (all but ``PER_MEMBER_FIELDS``)."""
  key = tuple((f.name, getattr(config, f.name)) for f in dataclasses.fields(config)
              if f.name not in PER_MEMBER_FIELDS)
  # Objectives share a program through a lax.switch, except WGAN's weight clipping (a different update).
  return key + (("weight_clipping", config.objective == "wgan"),)


def group_runs(runs: Sequence[Run]) -> list[list[Run]]:
  """Runs grouped by ``group_key``, groups and members in sweep order; image runs that cannot be
  vmapped (see ``_vmappable_image_run``) stay alone."""
  groups: dict[Any, list[Run]] = {}
  for i, run in enumerate(runs):
    grouped = run.config.is_toy or _vmappable_image_run(run.config)
    key = group_key(run.config) if grouped else ("sequential", i)
    groups.setdefault(key, []).append(run)
  return list(groups.values())


def group_step_config(configs: Sequence[Config], num_classes: int | None = None) -> StepConfig:
  """One StepConfig for a group: penalties/EMA/noise on if any member needs them (weights stay per member)."""
  members = [train_lib.step_config(c, num_classes) for c in configs]
  first = members[0]
  objectives = group_objectives(configs)
  if len({dataclasses.replace(m, gradient_penalty=False, r1=False, dragan=False, ema=False,
                              instance_noise_steps=0, objective=first.objective) for m in members}) != 1:
    raise ValueError(f"configs of one group need the same step structure, got {members}")
  return dataclasses.replace(
      first,
      objectives=objectives if len(objectives) > 1 else (),
      gradient_penalty=any(m.gradient_penalty for m in members),
      r1=any(m.r1 for m in members),
      dragan=any(m.dragan for m in members),
      ema=any(m.ema for m in members),
      instance_noise_steps=max(m.instance_noise_steps for m in members))


def group_objectives(configs: Sequence[Config]) -> tuple[str, ...]:
  """The group's distinct objectives in order of appearance (member i uses ``index(objective_i)``)."""
  return tuple(dict.fromkeys(c.objective for c in configs))


def _same_model(a: Any, b: Any) -> bool:
  """Whether two ``apply`` functions are those of equal modules (bound methods compare by identity)."""
  return getattr(a, "__self__", a) == getattr(b, "__self__", b)


def stack_states(states: Sequence[GANState]) -> GANState:
  """Stacks member states along a new leading axis under member 0's static fields.

  Members' models must be equal modules. Their optimizers differ only in initial hyperparameter values,
  which ``inject_hyperparams`` keeps in the optimizer *state* (``update`` reads them from there), so
  member 0's optimizer objects serve every member.
  """
  first = states[0]
  aligned = []
  for i, state in enumerate(states):
    if not (_same_model(state.g_apply, first.g_apply) and _same_model(state.d_apply, first.d_apply)):
      raise ValueError(f"member {i}'s models differ from member 0's; they cannot share a program")
    aligned.append(state.replace(g_apply=first.g_apply, d_apply=first.d_apply, g_tx=first.g_tx,
                                 d_tx=first.d_tx))
  if len(aligned) > 1:
    chex.assert_trees_all_equal_shapes_and_dtypes(*aligned)
  return jax.tree.map(lambda *xs: jnp.stack(xs), *aligned)


def member(tree: Any, index: int) -> Any:
  """Member ``index`` of a stacked pytree (e.g. a GANState)."""
  return jax.tree.map(lambda x: x[index], tree)


# --- training one toy group --------------------------------------------------------------------------


def make_group_train(config: StepConfig, dataset: ToyMixture, batch_size: int, length: int):
  """``jit(vmap(states -> states after `length` steps, last step's metrics))`` with states donated.

  Each member draws its real data from its own key and step exactly as ``ToyBatches`` does.
  """
  batch_fn = lambda data, step, axis_name: toy_batches(  # noqa: E731
      data["key"], step, dataset=dataset, n_critic=config.n_critic, batch_size=batch_size)
  train = make_group_steps(config, batch_fn, length, shared=())
  return lambda states: train(states, {"key": jnp.copy(states.key)})  # a copy: `states` is donated


def make_group_steps(config: StepConfig, batch_fn: Any, length: int, shared: Sequence[str]):
  """``jit(vmap((states, data) -> (states after `length` steps, last metrics)))``, states donated.

  ``data`` is a device source's ``device_data`` with one ``"key"`` per member (each member's data
  stream, keyed by its own seed) and the arrays named in ``shared`` (the dataset) held once for all.
  """
  run = multistep.device_data_steps(functools.partial(train_step, config=config), batch_fn, length)

  def group(states: GANState, data: dict[str, Any]):
    axes = {k: (None if k in shared else 0) for k in data}
    return jax.vmap(run, in_axes=(0, axes))(states, data)

  return jax.jit(group, donate_argnums=0)


@functools.partial(jax.jit, static_argnames=("num_samples", "latent_dim"))
def _eval_samples(states: GANState, use_ema: jax.Array, *, num_samples: int, latent_dim: int) -> jax.Array:
  """Every member's evaluation samples (``evaluate.eval_latents`` of its key), EMA params where asked."""
  def one(state: GANState, ema: jax.Array) -> jax.Array:
    z, _ = evaluate.eval_latents(state, num_samples, latent_dim, None)
    params = jax.tree.map(lambda e, r: jnp.where(ema, e, r), state.g_ema_params, state.g_params)
    return state.g_apply({"params": params, "batch_stats": state.g_batch_stats}, z, None, train=False)
  return jax.vmap(one)(states, use_ema)


@functools.partial(jax.jit, static_argnames=("num_samples", "latent_dim", "std"))
def _eval_toy(states: GANState, use_ema: jax.Array, means: jax.Array, *, num_samples: int, latent_dim: int,
              std: float) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Every member's evaluation samples and PacGAN metrics, computed on the device in one call."""
  samples = _eval_samples(states, use_ema, num_samples=num_samples, latent_dim=latent_dim)
  return samples, jax.vmap(lambda x: toy_metrics_jax(x, means, std))(samples)


def _finished_result(config: Config) -> dict[str, Any] | None:
  """The eval.json of a finished run of this exact config (so a re-run sweep skips it), else None."""
  if config.overwrite:
    return None
  paths = [os.path.join(config.workdir, name) for name in ("config.json", "eval.json")]
  if not all(os.path.exists(p) for p in paths):
    return None
  with open(paths[0], encoding="utf-8") as f:
    if config_differences(json.load(f), config):
      return None
  with open(paths[1], encoding="utf-8") as f:
    result = json.load(f)
  # config_differences ignores what a resume may change (steps, ...); a finished run must match those too.
  if result.get("step") != config.steps or result.get("num_samples") != config.num_eval_samples:
    return None
  return result


def _start_fresh(config: Config) -> None:
  """Creates the run's workdir (refusing another config's run unless overwrite) without old outputs."""
  train_lib.prepare_workdir(config)
  for name in ("checkpoints", "samples", "tb", "metrics.jsonl", "eval.json"):
    target = os.path.join(config.workdir, name)
    if os.path.isdir(target):
      shutil.rmtree(target)
    elif os.path.exists(target):
      os.remove(target)


def _with_objective_index(state: GANState, index: int) -> GANState:
  return state.replace(hparams=dict(state.hparams, objective_index=jnp.asarray(index, jnp.float32)))


def train_toy_group(runs: Sequence[Run]) -> list[dict[str, Any]]:
  """Trains a group of toy runs as one vmapped program; writes each run's outputs; returns eval dicts."""
  configs = [r.config for r in runs]
  c0 = configs[0]
  n = len(runs)
  for config in configs:
    _start_fresh(config)
  toy = TOY_DATASETS[c0.dataset]
  sources = [train_lib.make_batch_source(c) for c in configs]
  objectives = group_objectives(configs)
  states = stack_states([_with_objective_index(train_lib.create_state(c, s), objectives.index(c.objective))
                         for c, s in zip(configs, sources)])
  sconfig = group_step_config(configs)
  own = [train_lib.step_config(c, None) for c in configs]
  use_ema = np.array([c.ema_decay > 0 for c in configs])
  writers = [RunWriter(c.workdir) for c in configs]
  real = np.asarray(toy.sample(jax.random.PRNGKey(0), 1000))
  length = math.gcd(c0.log_every, c0.eval_every, c0.steps)
  batch_fn = sources[0].batch_fn  # the same for every member but for the key in the data
  data = {"key": jnp.stack([jnp.asarray(s.device_data["key"]) for s in sources])}
  train_chunk = make_group_steps(sconfig, batch_fn, length, shared=())
  start = time.perf_counter()
  train_chunk = train_chunk.lower(states, data).compile()
  logging.info("Sweep group of %d runs (%s/%s on %s, %d steps, %d per dispatch) compiled in %.1fs",
               n, c0.objective, c0.arch, c0.dataset, c0.steps, length, time.perf_counter() - start)
  diverged: dict[int, int] = {}

  background = BackgroundWork()
  means = jnp.asarray(toy.means)

  def write_member(i: int, step: int, samples: np.ndarray, metrics: dict[str, Any]) -> None:
    config, writer = configs[i], writers[i]
    path = os.path.join(config.workdir, "samples", f"step_{step:07d}.png")
    plots.scatter_png(path, samples, real, means=toy.means,
                      title=f"step {step}: {metrics['modes']} modes, hq {metrics['hq_fraction']:.2f}")
    shutil.copyfile(path, os.path.join(config.workdir, "samples", "latest.png"))
    writer.scalars(step, {f"eval/{k}": v for k, v in metrics.items()})
    with Image.open(path) as png:
      writer.image(step, "samples", np.asarray(png.convert("RGB")))

  def save_samples(step: int) -> list[dict[str, Any]]:
    """Every member's samples and metrics in one vmapped call; the plots are drawn in the background."""
    samples, values = _eval_toy(states, jnp.asarray(use_ema), means, num_samples=c0.num_eval_samples,
                                latent_dim=c0.latent_dim, std=toy.std)
    samples, values = np.asarray(samples), jax.device_get(values)
    results = []
    for i in range(n):
      metrics = {"modes": int(values["modes"][i]), "hq_fraction": float(values["hq_fraction"][i]),
                 "reverse_kl": float(values["reverse_kl"][i])}
      background.submit(write_member, i, step, samples[i], metrics)
      results.append(metrics)
    return results

  def run_chunk(length: int) -> Any:
    nonlocal states
    del length  # always `length`: it divides the run's steps
    states, metrics = train_chunk(states, data)
    return metrics

  step = _group_loop(runs, writers, own, length, run_chunk, save_samples, background, diverged)

  # --- end of run: final samples, checkpoint, eval.json (as train.train) ----------------------------
  final_metrics = save_samples(step)
  background.wait()
  results = []
  for i, (config, writer) in enumerate(zip(configs, writers)):
    state_i = member(states, i)
    result: dict[str, Any] = {"step": step, "num_samples": config.num_eval_samples,
                              "g_params_sha256": evaluate.params_sha256(state_i.g_params),
                              "eval_params": "ema" if use_ema[i] else "raw", **final_metrics[i]}
    results.append(_finish_member(config, writer, state_i, sources[i], step, result, diverged.get(i)))
  return results


# --- training one image group ------------------------------------------------------------------------

# Image architectures whose runs can be stacked (one GANState, jaxgan.steps.train_step).
VMAP_IMAGE_ARCHS = ("dcgan", "resnet")
# Share of the device's memory a vmapped group may plan to use before it is split.
GROUP_MEMORY_FRACTION = 0.85


def _vmappable_image_run(config: Config) -> bool:
  """Image runs that can share a vmapped program: GAN-recipe models on a device-resident dataset that
  does not depend on the seed (Stacked MNIST draws its digit triples from the seed)."""
  return (config.arch in VMAP_IMAGE_ARCHS and config.data_on_device is not False
          and config.dataset != "stacked_mnist")


def _memory_need(compiled: Any) -> tuple[int, int] | None:
  """(bytes the compiled program needs, bytes the device has), where the backend reports both."""
  try:
    stats = jax.local_devices()[0].memory_stats() or {}
    analysis = compiled.memory_analysis()
  except Exception:  # noqa: BLE001 - backends without memory reporting (e.g. XLA:CPU)
    return None
  limit = stats.get("bytes_limit")
  if not limit or analysis is None:
    return None
  need = (analysis.argument_size_in_bytes + analysis.output_size_in_bytes + analysis.temp_size_in_bytes
          - analysis.alias_size_in_bytes)
  return int(need), int(limit)


def train_image_group(runs: Sequence[Run], source: Any = None) -> list[dict[str, Any]]:
  """Trains image runs of one group as one vmapped program on a dataset held once on the device.

  Every member gathers its own batches (keyed by its seed, exactly as a single run does) from the shared
  arrays, ``steps_per_call`` steps per dispatch. A group that would not fit in device memory is split in
  halves (logged); a dataset too large for the device falls back to one run after another.
  """
  from jaxgan.recipes import gan as gan_recipe  # pylint: disable=import-outside-toplevel

  configs = [r.config.with_backend(jax.default_backend()) for r in runs]
  c0 = configs[0]
  source = source if source is not None else gan_recipe.make_source(c0)  # halves share the parent's
  if getattr(source, "batch_fn", None) is None:
    logging.info("Sweep: %s does not fit on the device; its %d runs train one after another.",
                 c0.dataset, len(runs))
    return [_train_alone(r) for r in runs]
  objectives = group_objectives(configs)
  states = stack_states([_with_objective_index(gan_recipe.create_state(c, source),
                                               objectives.index(c.objective)) for c in configs])
  sconfig = group_step_config(configs, source.num_classes)
  shared = tuple(k for k in source.device_data if k != "key")
  data = jax.device_put({**{k: source.device_data[k] for k in shared},
                         "key": jnp.stack([data_key(c.seed) for c in configs])})
  compiled: dict[int, Any] = {}

  def program(length: int) -> Any:
    if length not in compiled:
      compiled[length] = make_group_steps(sconfig, source.batch_fn, length, shared).lower(
          states, data).compile()
    return compiled[length]

  start = time.perf_counter()
  first = program(multistep.chunk_length(0, c0.steps, c0.steps_per_call))
  memory = _memory_need(first)
  if memory is not None and memory[0] > GROUP_MEMORY_FRACTION * memory[1] and len(runs) > 1:
    half = len(runs) // 2
    logging.warning("Sweep group of %d runs needs %.1f GiB of the device's %.1f GiB: training it as two "
                    "groups of %d and %d.", len(runs), memory[0] / 2**30, memory[1] / 2**30, half,
                    len(runs) - half)
    del states, data, compiled, first
    return train_image_group(runs[:half], source) + train_image_group(runs[half:], source)
  logging.info("Sweep group of %d runs (%s/%s on %s, %d steps, %d per dispatch) compiled in %.1fs",
               len(runs), c0.objective, c0.arch, c0.dataset, c0.steps, c0.steps_per_call,
               time.perf_counter() - start)
  for config in configs:
    _start_fresh(config)
  own = [train_lib.step_config(c, source.num_classes) for c in configs]
  writers = [RunWriter(c.workdir) for c in configs]
  diverged: dict[int, int] = {}

  background = BackgroundWork()

  def write_member(i: int, step: int, state_i: GANState) -> None:
    config, writer = configs[i], writers[i]
    path = os.path.join(config.workdir, "samples", f"step_{step:07d}.png")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    gan_recipe.write_samples(state_i, config, source, path)
    shutil.copyfile(path, os.path.join(config.workdir, "samples", "latest.png"))
    with Image.open(path) as png:
      writer.image(step, "samples", np.asarray(png.convert("RGB")))

  def save_samples(step: int) -> None:
    """Each member's grid, generated and written on a background thread (members are copies)."""
    for i in range(len(configs)):
      background.submit(write_member, i, step, member(states, i))

  def run_chunk(length: int) -> Any:
    nonlocal states
    states, metrics = program(length)(states, data)
    return metrics

  step = _group_loop(runs, writers, own, c0.steps_per_call, run_chunk, save_samples, background,
                     diverged)

  save_samples(step)
  background.wait()
  results = []
  for i, (config, writer) in enumerate(zip(configs, writers)):
    state_i = member(states, i)
    result: dict[str, Any] = {"step": step, "num_samples": config.num_eval_samples,
                              "g_params_sha256": evaluate.params_sha256(state_i.g_params)}
    result.update(gan_recipe.evaluate(state_i, config, source))
    results.append(_finish_member(config, writer, state_i, source, step, result, diverged.get(i)))
  return results


def _group_loop(runs: Sequence[Run], writers: Sequence[RunWriter], own: Sequence[StepConfig],
                steps_per_call: int, run_chunk: Any, save_samples: Any, background: BackgroundWork,
                diverged: dict[int, int]) -> int:
  """A group's training loop: ``run_chunk(length)`` trains every member ``length`` steps and returns
  the last step's metrics; rows every ``log_every`` (through the writer thread, so each run's rows stay
  in step order with its eval rows), ``save_samples(step)`` every ``eval_every``. Returns the last step."""
  c0 = runs[0].config
  step, last_time, last_step = 0, time.perf_counter(), 0
  while step < c0.steps:
    length = multistep.chunk_length(step, c0.steps, steps_per_call)
    metrics = run_chunk(length)
    step += length
    if step % c0.log_every == 0 or step == c0.steps:
      now = time.perf_counter()
      rate = (step - last_step) / max(now - last_time, 1e-9)
      last_time, last_step = now, step
      background.submit(_write_member_rows, runs, writers, own, jax.device_get(metrics), rate, step,
                        diverged)
    if step % c0.eval_every == 0 and step < c0.steps:
      save_samples(step)
  return step


def _write_member_rows(runs: Sequence[Run], writers: Sequence[RunWriter], own: Sequence[StepConfig],
                       values: Mapping[str, np.ndarray], rate: float, step: int,
                       diverged: dict[int, int]) -> None:
  """One metrics row per member (as a single run writes it); marks members whose losses went non-finite."""
  for i, writer in enumerate(writers):
    row = {k: float(v[i]) for k, v in values.items()
           if k not in _PENALTY_METRICS or getattr(own[i], _PENALTY_METRICS[k])}
    row["steps_per_sec"] = rate
    writer.scalars(step, row)
    bad = sorted(k for k, v in row.items() if not np.isfinite(v))
    if bad and i not in diverged:
      diverged[i] = step
      logging.warning("Sweep run %s: non-finite %s at step %d; it keeps running with its group but "
                      "is marked diverged.", runs[i].name, ", ".join(bad), step)
  logging.info("sweep group step %d/%d | %d runs | %.1f steps/s per run (%.0f model-steps/s)%s",
               step, runs[0].config.steps, len(writers), rate, len(writers) * rate,
               f" | {len(diverged)} diverged" if diverged else "")


def _finish_member(config: Config, writer: RunWriter, state: GANState, source: Any, step: int,
                   result: dict[str, Any], diverged_at: int | None) -> dict[str, Any]:
  """A member's final checkpoint (never of a non-finite state) and eval.json, as ``jaxgan.train``."""
  if diverged_at is not None:
    result["diverged_at_step"] = diverged_at
  finite = all(np.isfinite(x).all() for x in jax.tree.leaves(jax.device_get((state.g_params,
                                                                              state.d_params))))
  if finite:
    checkpointer = Checkpointer(os.path.join(config.workdir, "checkpoints"))
    checkpointer.save(step, state, {"data": source.get_state()})
    checkpointer.close()
  with open(os.path.join(config.workdir, "eval.json"), "w", encoding="utf-8") as f:
    json.dump(result, f, indent=2, sort_keys=True)
  writer.close()
  return result


# --- the sweep ---------------------------------------------------------------------------------------


def _last_losses(workdir: str) -> dict[str, float]:
  """The last logged d_loss / g_loss of a run (from its metrics.jsonl)."""
  last: dict[str, float] = {}
  path = os.path.join(workdir, "metrics.jsonl")
  if os.path.exists(path):
    with open(path, encoding="utf-8") as f:
      for line in f:
        row = json.loads(line)
        last.update({k: float(row[k]) for k in ("d_loss", "g_loss") if k in row})
  return last


def _fmt(value: Any) -> str:
  if isinstance(value, float):
    return f"{value:.4g}"
  return str(value)


def write_summary(workdir: str, rows: Sequence[dict[str, Any]], varied: Sequence[str]) -> None:
  """``summary.csv`` and ``summary.md``: one row per run; the Markdown adds mean +- std over seeds."""
  columns: list[str] = ["name", "group", *varied]
  for row in rows:
    columns += [k for k in row if k not in columns and k != "workdir"]
  columns.append("workdir")
  with open(os.path.join(workdir, "summary.csv"), "w", encoding="utf-8", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=columns, restval="")
    writer.writeheader()
    writer.writerows(rows)

  def table(header: Sequence[str], body: Sequence[Sequence[str]]) -> list[str]:
    return (["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] +
            ["| " + " | ".join(r) + " |" for r in body])

  md_columns = [c for c in columns if c != "workdir"]
  lines = [f"# Sweep summary ({len(rows)} runs)", ""]
  lines += table(md_columns, [[_fmt(row.get(c, "")) for c in md_columns] for row in rows])
  by_config: dict[tuple, list[dict[str, Any]]] = {}
  for row in rows:
    by_config.setdefault(tuple(_fmt(row.get(c)) for c in varied if c != "seed"), []).append(row)
  if "seed" in varied and any(len(v) > 1 for v in by_config.values()):
    metrics = [c for c in md_columns if c not in ("name", "group", "step", *varied) and
               all(isinstance(r.get(c), (int, float)) and not isinstance(r.get(c), bool) for r in rows)]
    keys = [c for c in varied if c != "seed"]
    body = []
    for key, members in by_config.items():
      cells = list(key) + [str(len(members))]
      for metric in metrics:
        values = np.array([float(r[metric]) for r in members])
        cells.append(f"{values.mean():.4g} ± {values.std():.2g}")
      body.append(cells)
    lines += ["", "## Mean ± std over seeds", ""] + table(keys + ["seeds"] + metrics, body)
  with open(os.path.join(workdir, "summary.md"), "w", encoding="utf-8") as f:
    f.write("\n".join(lines) + "\n")


def _train_alone(run: Run) -> dict[str, Any]:
  """A run through ``jaxgan.train.train``; a diverged run is recorded instead of stopping the sweep."""
  try:
    return train_lib.train(run.config)
  except train_lib.NonFiniteError as e:
    match = re.search(r"at step (\d+)", str(e))
    logging.warning("Sweep run %s diverged: %s", run.name, e)
    return {"diverged_at_step": int(match.group(1)) if match else -1}


def run_sweep(path_or_module: str | os.PathLike | types.ModuleType | Mapping[str, Any],
              workdir: str) -> list[dict[str, Any]]:
  """Expands, groups and trains a sweep; returns one summary row per run (also in summary.csv).

  Args:
    path_or_module: a sweep file (``.py``), a module (object or dotted name) or a dict, with ``SWEEP``.
    workdir: the sweep's directory; run ``i`` trains in ``<workdir>/<name>``.

  Returns:
    Rows ``{"name", "group", <the fields the sweep varies>..., <eval.json values>..., "d_loss",
    "g_loss", "status", "workdir"}`` in sweep order; ``status`` is ``ok`` or ``diverged@<step>``,
    with `` (earlier run)`` appended for runs a previous invocation finished.
  """
  definition = load_sweep(path_or_module)
  runs = expand(definition, workdir)
  groups = group_runs(runs)
  os.makedirs(workdir, exist_ok=True)
  group_of = {run.name: g for g, members in enumerate(groups) for run in members}
  with open(os.path.join(workdir, "sweep.json"), "w", encoding="utf-8") as f:
    json.dump({"sweep": definition,
               "runs": [{"name": r.name, "group": group_of[r.name], "overrides": r.overrides} for r in runs]},
              f, indent=2, default=str)
  logging.info("Sweep of %d runs in %d compiled groups -> %s", len(runs), len(groups), workdir)

  results: dict[str, tuple[dict[str, Any], str]] = {}
  for g, members in enumerate(groups):
    todo = []
    for run in members:
      done = _finished_result(run.config)
      if done is not None:
        results[run.name] = (done, "skipped")
      else:
        todo.append(run)
    if not todo:
      continue
    start = time.perf_counter()
    if todo[0].config.is_toy:
      outcomes = train_toy_group(todo)
    elif _vmappable_image_run(todo[0].config):
      outcomes = train_image_group(todo)
    else:
      outcomes = [_train_alone(run) for run in todo]  # image runs: one after another
    for run, outcome in zip(todo, outcomes):
      results[run.name] = (outcome, "")
    logging.info("Sweep group %d/%d (%d runs) done in %.1fs", g + 1, len(groups), len(todo),
                 time.perf_counter() - start)

  varied = list(dict.fromkeys(k for run in runs for k in run.overrides))
  rows = []
  for run in runs:
    outcome, status = results[run.name]
    row: dict[str, Any] = {"name": run.name, "group": group_of[run.name]}
    row.update({k: run.overrides.get(k, getattr(run.config, k)) for k in varied})
    values = {k: v for k, v in outcome.items() if k not in _EVAL_BOOKKEEPING and k != "diverged_at_step"}
    row.update({k: values[k] for k in sorted(values, key=lambda k: (_COLUMN_ORDER.get(k, 99), k))})
    row.update(_last_losses(run.config.workdir))
    row["status"] = (f"diverged@{outcome['diverged_at_step']}" if "diverged_at_step" in outcome
                     else "ok") + (" (earlier run)" if status == "skipped" else "")
    row["workdir"] = run.config.workdir
    rows.append(row)
  write_summary(workdir, rows, varied)
  return rows
