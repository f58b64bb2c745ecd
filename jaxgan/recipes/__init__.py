"""Recipes: how each family of architectures trains, behind one interface the loop in ``jaxgan.train`` uses.

A recipe is a module with the members of ``Recipe`` below. ``RECIPE_MODULES`` is a literal map from
``--arch`` to the module that trains it, imported only when asked for (``get_recipe``), so choosing an
architecture never depends on import side effects and launching one never imports the others.

Contract the loop relies on:
* batches from ``make_source(...).next(step)`` are pytrees of arrays whose leaves are shaped
  ``[n_critic, B, ...]`` (``n_critic`` = 1 for recipes without a critic loop), so ``jaxgan.parallel`` can
  shard axis 1 over devices;
* the state is a pytree (a ``flax.struct.dataclass``) with an integer ``step`` (generator updates) and
  ``g_params`` (fingerprinted into ``eval.json`` as ``g_params_sha256``);
* ``make_train_step`` returns a *pure, unjitted* ``(state, batch) -> (state, metrics)``: the loop jits it
  (state donated) or pmaps it over ``axis_name`` (then gradients, statistics and metrics must be
  ``lax.pmean``-ed over that axis inside it); metrics are scalars.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Mapping, Protocol

Batch = Mapping[str, Any]
Metrics = Mapping[str, Any]

RECIPE_MODULES: dict[str, str] = {
    "mlp": "jaxgan.recipes.gan",
    "dcgan": "jaxgan.recipes.gan",
    "resnet": "jaxgan.recipes.gan",
    "pix2pix": "jaxgan.recipes.pix2pix",
    "cyclegan": "jaxgan.recipes.cyclegan",
    "infogan": "jaxgan.recipes.infogan",
    "stylegan": "jaxgan.recipes.stylegan",
}


class Recipe(Protocol):
  """The members of a recipe module (``config`` is a resolved ``jaxgan.config.Config``)."""

  # Config defaults of this architecture, applied over the objective's (e.g. dataset, steps, width).
  DEFAULTS: Mapping[str, Any]
  # Image resolutions the architecture supports.
  RESOLUTIONS: tuple[int | None, ...]

  def validate(self, config: Any) -> None:
    """Raises ``ConfigError`` (with the fix) for combinations this architecture cannot train."""

  def make_source(self, config: Any, *, shard_index: int, shard_count: int) -> Any:
    """The host's batch source (``jaxgan.data.batches.BatchSource``); host ``shard_index`` of ``shard_count``."""

  def create_state(self, config: Any, source: Any, axis_name: str | None) -> Any:
    """The initial training state."""

  def make_train_step(self, config: Any, source: Any, axis_name: str | None
                      ) -> Callable[[Any, Batch], tuple[Any, Metrics]]:
    """The pure step function (see the module docstring)."""

  def write_samples(self, state: Any, config: Any, source: Any, path: str) -> dict[str, float]:
    """Writes the sample PNG of ``state`` to ``path``; returns scalars worth logging (may be empty)."""

  def evaluate(self, state: Any, config: Any, source: Any) -> dict[str, Any]:
    """The end-of-run metrics merged into ``eval.json``."""


def get_recipe(arch: str) -> Recipe:
  """The recipe module of ``arch``; a ValueError lists the valid names."""
  if arch not in RECIPE_MODULES:
    raise ValueError(f"Unknown arch {arch!r}; valid: {', '.join(RECIPE_MODULES)}")
  return importlib.import_module(RECIPE_MODULES[arch])  # type: ignore[return-value]
