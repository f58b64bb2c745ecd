"""The training state of both players as one immutable pytree, and the optimizers that update it."""

from __future__ import annotations

from typing import Any, Callable, Mapping

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

Array = jax.Array
PyTree = Any

# Tags folded into the base key. Each random draw of a run is fold_in(fold_in(key, TAG), counter), so no
# key is ever reused between D, G and data, and a resumed run draws exactly what the original drew.
KEY_D = 0
KEY_G = 1
KEY_DATA = 2
KEY_INIT = 3
KEY_SAMPLES = 4

# Scalar hyperparameters the steps read from ``GANState.hparams`` (arrays, so a vmapped sweep can vary
# them). All keys are always present so every state has the same pytree structure.
DEFAULT_HPARAMS: dict[str, float] = {
    "real_label": 1.0,     # one-sided label smoothing: 1 - smoothing
    "margin": 1.0,         # EBGAN margin m
    "gp_weight": 0.0,      # WGAN-GP lambda
    "r1_gamma": 0.0,       # R1 gamma (penalty is gamma / 2 * E||grad D(x)||^2)
    "dragan_weight": 0.0,  # DRAGAN lambda
    "clip_value": 0.01,    # WGAN weight clipping c (only used when clipping is on)
    "noise_std": 0.0,      # instance noise sigma_0
    "ema_decay": 0.999,    # EMA of G's params
    "objective_index": 0.0,  # which of StepConfig.objectives a multi-objective step computes
}


def make_optimizer(name: str, *, learning_rate: float, beta1: float = 0.5, beta2: float = 0.999,
                   ) -> optax.GradientTransformation:
  """Adam or RMSProp with the learning rate (and betas) stored in the optimizer state.

  ``optax.inject_hyperparams`` keeps them as arrays in the state, so they are checkpointed with it and a
  vmapped sweep can give each member its own learning rate.
  """
  if name == "adam":
    return optax.inject_hyperparams(optax.adam)(learning_rate=learning_rate, b1=beta1, b2=beta2)
  if name == "rmsprop":
    # WGAN's RMSProp: no momentum, PyTorch-style decay 0.99 and eps 1e-8 (torch.optim.RMSprop defaults).
    return optax.inject_hyperparams(optax.rmsprop)(learning_rate=learning_rate, decay=0.99, eps=1e-8)
  if name == "sgd":
    return optax.inject_hyperparams(optax.sgd)(learning_rate=learning_rate)
  raise ValueError(f"Unknown optimizer {name!r}; valid: adam, rmsprop, sgd")


@flax.struct.dataclass
class GANState:
  """Everything a GAN run needs to continue exactly, for both players.

  Attributes:
    step: generator updates done (the training step).
    d_updates: discriminator updates done (n_critic per step).
    g_params / d_params: the players' parameters.
    g_batch_stats / d_batch_stats: mutable model statistics (BatchNorm running averages, spectral-norm
      vectors); empty dicts for models without any.
    g_opt_state / d_opt_state: optax states (learning rates inside, see ``make_optimizer``).
    g_ema_params: exponential moving average of ``g_params`` (used for evaluation samples).
    key: the run's base PRNG key; never consumed, every draw derives from it with fold_in.
    hparams: scalar loss/regularizer weights (see ``DEFAULT_HPARAMS``).
    fixed_z / fixed_labels: the fixed noise (and labels) the sample grids are drawn from all run long.
    g_apply / d_apply: the models' ``apply`` functions (static).
    g_tx / d_tx: the optimizers (static).
  """

  step: Array
  d_updates: Array
  g_params: PyTree
  d_params: PyTree
  g_batch_stats: PyTree
  d_batch_stats: PyTree
  g_opt_state: PyTree
  d_opt_state: PyTree
  g_ema_params: PyTree
  key: Array
  hparams: dict[str, Array]
  fixed_z: Array
  fixed_labels: Array
  g_apply: Callable[..., Any] = flax.struct.field(pytree_node=False)
  d_apply: Callable[..., Any] = flax.struct.field(pytree_node=False)
  g_tx: optax.GradientTransformation = flax.struct.field(pytree_node=False)
  d_tx: optax.GradientTransformation = flax.struct.field(pytree_node=False)

  @classmethod
  def create(cls, *, generator: nn.Module, discriminator: nn.Module, g_tx: optax.GradientTransformation,
             d_tx: optax.GradientTransformation, key: Array, latent_dim: int, d_input: Array,
             num_classes: int | None = None, num_fixed_samples: int = 64,
             hparams: Mapping[str, float] | None = None) -> "GANState":
    """Initialises both models, their optimizers and the fixed sample noise from one key.

    Args:
      generator / discriminator: linen modules following jaxgan's model contract
        (``G(z, labels, train=) -> x``, ``D(x, labels, train=) -> logits [B]``).
      d_input: an example input of D with the shape D will see (packed, for PacGAN), to infer shapes.
      hparams: overrides of ``DEFAULT_HPARAMS``; unknown names raise.
    """
    merged = dict(DEFAULT_HPARAMS)
    for name, value in (hparams or {}).items():
      if name not in merged:
        raise ValueError(f"Unknown hparam {name!r}; valid: {', '.join(sorted(merged))}")
      merged[name] = value
    init_key = jax.random.fold_in(key, KEY_INIT)
    g_key, d_key, z_key, label_key = jax.random.split(init_key, 4)
    z = jnp.zeros((2, latent_dim), jnp.float32)
    labels = jnp.zeros((2,), jnp.int32) if num_classes else None
    d_labels = jnp.zeros((d_input.shape[0],), jnp.int32) if num_classes else None
    g_vars = generator.init(g_key, z, labels, train=False)
    d_vars = discriminator.init(d_key, d_input, d_labels, train=False)
    g_params, d_params = g_vars["params"], d_vars["params"]
    fixed_z = jax.random.normal(z_key, (num_fixed_samples, latent_dim), jnp.float32)
    if num_classes:
      # Sorted blocks of equal size: with num_fixed_samples = k * num_classes and a grid k wide, each
      # row of the grid is one class.
      fixed_labels = (jnp.arange(num_fixed_samples, dtype=jnp.int32) * num_classes) // num_fixed_samples
    else:
      fixed_labels = jnp.zeros((num_fixed_samples,), jnp.int32)
    del label_key
    return cls(
        step=jnp.zeros((), jnp.int32),
        d_updates=jnp.zeros((), jnp.int32),
        g_params=g_params,
        d_params=d_params,
        g_batch_stats=g_vars.get("batch_stats", {}),
        d_batch_stats=d_vars.get("batch_stats", {}),
        g_opt_state=g_tx.init(g_params),
        d_opt_state=d_tx.init(d_params),
        g_ema_params=jax.tree_util.tree_map(jnp.copy, g_params),
        key=key,
        hparams={k: jnp.asarray(v, jnp.float32) for k, v in merged.items()},
        fixed_z=fixed_z,
        fixed_labels=fixed_labels,
        g_apply=generator.apply,
        d_apply=discriminator.apply,
        g_tx=g_tx,
        d_tx=d_tx,
    )


def player_key(state: GANState, tag: int, counter: Array) -> Array:
  """The key of one update: fold_in(fold_in(base, tag), counter)."""
  return jax.random.fold_in(jax.random.fold_in(state.key, tag), counter)
