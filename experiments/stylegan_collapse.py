"""StyleGAN mode-collapse probe: trains the stylegan recipe with one change and prints how diverse G stays.

The open problem of ``--arch=stylegan`` on MNIST is mode collapse (``docs/samples/README.md``). This
script is the diagnosis tool behind the 2026-12-02 rows there: it trains ``jaxgan.recipes.stylegan``'s own
``train_step`` (defaults of the recipe, any ``--set`` override of the run config) with one intervention,
and every ``--every`` steps prints, for the raw and the EMA generator on 512 fixed latents:

* ``div``: the mean over pixels of the std over 64 samples (real MNIST: 0.37; it is ~1 at init, when G
  outputs noise, so on its own it cannot tell collapse from learning the black background);
* ``classes``: with ``--classifier_dir``, exp(entropy) of the classifier's label histogram of the 512
  samples, the effective number of digit classes (real MNIST: ~10; one glyph: ~1).

Interventions: ``--freeze`` keeps a group of G's params at their init after every step (``styles``: the
mapping network and every affine style layer; ``kernels``: the synthesis conv kernels), ``--d_width``
widens D alone, ``--torgb_init_scale`` scales the toRGB kernels at init.

    python experiments/stylegan_collapse.py --manual_dir=/path/to/mnist --classifier_dir=CLS \
        --steps=400 --freeze=styles
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from typing import Any, Callable

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

FREEZE_GROUPS: dict[str, Callable[[tuple[str, ...]], bool]] = {
    "none": lambda path: False,
    "styles": lambda path: path[0] == "mapping" or "affine" in path,
    "kernels": lambda path: path[0] == "synthesis" and path[-1] == "kernel" and "affine" not in path,
}

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines the flags (only when run as a script: importing the module has no side effects)."""
  flags.DEFINE_string("dataset", "mnist", "Image dataset of the run (digits needs no files).")
  flags.DEFINE_string("manual_dir", None, "Raw MNIST IDX files.")
  flags.DEFINE_string("classifier_dir", None, "A saved jaxgan classifier (python -m jaxgan.metrics.classifier).")
  flags.DEFINE_integer("steps", 400, "Training steps.")
  flags.DEFINE_integer("every", 100, "Steps between probes.")
  flags.DEFINE_enum("freeze", "none", list(FREEZE_GROUPS), "G's parameter group kept at its init.")
  flags.DEFINE_integer("d_width", None, "D's width (default: the run's --width, as G).")
  flags.DEFINE_float("torgb_init_scale", 1.0, "Factor on the toRGB kernels at init.")
  flags.DEFINE_string("set", "{}", "JSON dict of run-config overrides, e.g. '{\"n_critic\": 2}'.")


def effective_classes(labels: Any, num_classes: int = 10) -> float:
  """exp(entropy) of the label histogram: 1 for one class, ``num_classes`` for a uniform spread."""
  import numpy as np
  counts = np.bincount(np.asarray(labels), minlength=num_classes).astype(np.float64)
  p = counts[counts > 0] / counts.sum()
  return float(np.exp(-np.sum(p * np.log(p))))


def parse_overrides(text: str) -> dict[str, Any]:
  """``--set``'s JSON object of run-config fields; a clear error names the fix for anything else."""
  from jaxgan.config import Config, ConfigError
  try:
    overrides = json.loads(text)
  except json.JSONDecodeError as e:
    raise ConfigError(f"--set must be a JSON object, e.g. '{{\"n_critic\": 2}}' (got {text!r}: {e})") from None
  if not isinstance(overrides, dict):
    raise ConfigError(f"--set must be a JSON object of run-config fields, got {text!r}")
  fixed = sorted(set(overrides) & {"arch", "dataset", "manual_dir"})
  if fixed:
    raise ConfigError(f"--set cannot change {fixed}: the probe trains --arch=stylegan; use --dataset and "
                      f"--manual_dir")
  Config.from_dict(overrides)  # unknown fields raise ConfigError listing the valid ones
  return overrides


def check_args(*, steps: int, every: int, freeze: str, d_width: int | None, torgb_init_scale: float) -> None:
  """Raises ConfigError (naming the fix) for probe settings that cannot run."""
  from jaxgan.config import ConfigError
  if steps < 0:
    raise ConfigError(f"--steps must be >= 0 (got {steps})")
  if every < 1:
    raise ConfigError(f"--every must be >= 1 (got {every})")
  if freeze not in FREEZE_GROUPS:
    raise ConfigError(f"--freeze={freeze!r} is unknown; valid: {', '.join(FREEZE_GROUPS)}")
  if d_width is not None and d_width < 1:
    raise ConfigError(f"--d_width must be >= 1, or unset to keep --width (got {d_width})")
  if not torgb_init_scale > 0:
    raise ConfigError(f"--torgb_init_scale must be > 0 (got {torgb_init_scale})")


def run(*, dataset: str, manual_dir: str | None, classifier_dir: str | None, steps: int, every: int,
        freeze: str, d_width: int | None, torgb_init_scale: float, overrides: dict[str, Any],
        print_fn: Callable[[str], None] = print) -> tuple[list[dict[str, float]], Any]:
  """Trains and probes (see the module docstring); returns the probe rows and the final state."""
  import flax
  import jax
  import jax.numpy as jnp
  import numpy as np

  from jaxgan.config import Config
  from jaxgan.recipes import stylegan as recipe

  check_args(steps=steps, every=every, freeze=freeze, d_width=d_width, torgb_init_scale=torgb_init_scale)
  config = Config(arch="stylegan", dataset=dataset, manual_dir=manual_dir, **overrides).resolve()
  source = recipe.make_source(config)
  state = recipe.create_state(config, source)
  if d_width:  # re-initialise D and its optimizer at the new width
    discriminator = state.discriminator.clone(width=d_width)
    d_params = discriminator.init(jax.random.PRNGKey(config.seed),
                                  jnp.zeros((1,) + source.example_shape))["params"]
    state = state.replace(discriminator=discriminator, d_params=d_params,
                          d_opt_state=state.d_tx.init(d_params))
  flat = flax.traverse_util.flatten_dict(state.g_params)
  flat = {k: (v * torgb_init_scale if any("torgb" in p for p in k) and k[-1] == "kernel"
              and "affine" not in k else v) for k, v in flat.items()}
  g_params = flax.traverse_util.unflatten_dict(flat)
  state = state.replace(g_params=g_params, g_ema_params=jax.tree_util.tree_map(jnp.copy, g_params),
                        g_opt_state=state.g_tx.init(g_params))
  frozen = {k: jnp.array(v) for k, v in flat.items() if FREEZE_GROUPS[freeze](k)}

  @functools.partial(jax.jit, donate_argnums=0)
  def step(state, batch, frozen):  # frozen params are an argument, not constants baked into the program
    state, metrics = recipe.train_step(state, batch, cfg=recipe.step_config(config))
    params = flax.traverse_util.flatten_dict(state.g_params)
    params.update(frozen)
    return state.replace(g_params=flax.traverse_util.unflatten_dict(params)), metrics

  predict = None
  if classifier_dir:
    from jaxgan.metrics.classifier import load_classifier
    predict = load_classifier(classifier_dir).predict_fn()
  z = jax.random.normal(jax.random.PRNGKey(123), (512, config.latent_dim))
  rows, start = [], time.time()
  for t in range(steps + 1):
    if t % every == 0 or t == steps:
      row: dict[str, float] = {"step": t}
      for name, params in (("raw", state.g_params), ("ema", state.g_ema_params)):
        images = recipe.sample(state.generator, params, state.w_avg, z, 1.0, jax.random.PRNGKey(7))
        row[f"{name}_div"] = float(jnp.mean(jnp.std(images[:64], axis=0)))
        if predict is not None:
          row[f"{name}_classes"] = effective_classes(jnp.argmax(predict(images), axis=-1))
      row["seconds"] = round(time.time() - start, 1)
      rows.append(row)
      print_fn(json.dumps(row))
    if t < steps:
      state, _ = step(state, source.next(t), frozen)
  return rows, state


def main(argv):
  del argv
  from jaxgan.config import ConfigError
  try:
    overrides = parse_overrides(FLAGS.set)
    # run() checks the probe settings, then resolves the run config (its ConfigErrors name the fix),
    # before any training.
    run(dataset=FLAGS.dataset, manual_dir=FLAGS.manual_dir, classifier_dir=FLAGS.classifier_dir,
        steps=FLAGS.steps, every=FLAGS.every, freeze=FLAGS.freeze, d_width=FLAGS.d_width,
        torgb_init_scale=FLAGS.torgb_init_scale, overrides=overrides)
  except ConfigError as e:
    raise app.UsageError(str(e)) from None


if __name__ == "__main__":
  define_flags()
  app.run(main)
