"""Adversarial objectives as plain loss functions of discriminator outputs.

Every loss is keyword-only, takes the discriminator's raw outputs (logits for the cross-entropy family,
critic values otherwise) of shape ``[B]`` and returns a scalar mean over the batch. Sigmoid
cross-entropies are written with ``jax.nn.softplus`` (``-log sigmoid(x) = softplus(-x)``), which is
numerically stable for large ``|x|``.

``OBJECTIVES`` is a literal dict ``name -> Objective``: no if-chains elsewhere, and the tests loop over it.
Each ``Objective`` also carries the defaults of its paper (optimizer, learning rates, n_critic,
regularizers), which command-line flags override.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Mapping

import jax
import jax.numpy as jnp

Array = jax.Array
LossFn = Callable[..., Array]


def _mean(x: Array) -> Array:
  return jnp.mean(x)


# --- Original GAN (Goodfellow et al., 2014) -------------------------------------------------------


def minimax_d_loss(*, real: Array, fake: Array, real_label: float = 1.0) -> Array:
  """-[log D(x) + log(1 - D(G(z)))]: Goodfellow et al. (2014), Eq. 1, D's side.

  ``real_label < 1`` is one-sided label smoothing (Salimans et al., 2016): the real target becomes
  ``real_label`` (cross-entropy against a soft label); fake targets stay 0.
  """
  real_term = real_label * jax.nn.softplus(-real) + (1.0 - real_label) * jax.nn.softplus(real)
  return _mean(real_term) + _mean(jax.nn.softplus(fake))


def minimax_g_loss(*, fake: Array, real: Array | None = None) -> Array:
  """log(1 - D(G(z))): the saturating generator loss exactly as in Goodfellow et al. (2014), Eq. 1.

  Its gradient vanishes as D(G(z)) -> 0 (the early-training regime the paper warns about).
  """
  del real
  return -_mean(jax.nn.softplus(fake))


def nonsaturating_g_loss(*, fake: Array, real: Array | None = None) -> Array:
  """-log D(G(z)): the non-saturating heuristic of Goodfellow et al. (2014), Sec. 3."""
  del real
  return _mean(jax.nn.softplus(-fake))


# --- Wasserstein GAN (Arjovsky et al., 2017; Gulrajani et al., 2017) ------------------------------


def wasserstein_d_loss(*, real: Array, fake: Array) -> Array:
  """E[C(G(z))] - E[C(x)]: the critic maximises the Kantorovich-Rubinstein dual (WGAN, Algorithm 1)."""
  return _mean(fake) - _mean(real)


def wasserstein_g_loss(*, fake: Array, real: Array | None = None) -> Array:
  """-E[C(G(z))] (WGAN, Algorithm 1, generator update)."""
  del real
  return -_mean(fake)


# --- Hinge (Lim & Ye, 2017; Miyato et al., 2018) ---------------------------------------------------


def hinge_d_loss(*, real: Array, fake: Array) -> Array:
  """E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))] (Miyato et al. 2018, Eq. 16)."""
  return _mean(jax.nn.relu(1.0 - real)) + _mean(jax.nn.relu(1.0 + fake))


# --- Least squares (Mao et al., 2017) --------------------------------------------------------------


def lsgan_d_loss(*, real: Array, fake: Array, real_label: float = 1.0) -> Array:
  """1/2 E[(D(x) - b)^2] + 1/2 E[(D(G(z)) - a)^2] with a=0, b=1 (Mao et al. 2017, Eq. 2 / 0-1 coding).

  ``real_label`` sets b (label smoothing for the least-squares coding).
  """
  return 0.5 * _mean(jnp.square(real - real_label)) + 0.5 * _mean(jnp.square(fake))


def lsgan_g_loss(*, fake: Array, real: Array | None = None) -> Array:
  """1/2 E[(D(G(z)) - c)^2] with c=1 (Mao et al. 2017, Eq. 2)."""
  del real
  return 0.5 * _mean(jnp.square(fake - 1.0))


# --- Energy-based GAN (Zhao et al., 2017) ----------------------------------------------------------


def ebgan_energy(output: Array) -> Array:
  """Non-negative energy from a scalar discriminator output: softplus(-output).

  EBGAN's energy is an autoencoder's reconstruction error, hence >= 0. Our discriminators emit one
  unbounded scalar, so we map it through softplus; without this the critic could lower E[C(x)] without
  bound and the loss would diverge. The minus sign keeps jaxgan's convention for every objective:
  a higher D output means "more real" (low energy).
  """
  return jax.nn.softplus(-output)


def ebgan_d_loss(*, real: Array, fake: Array, margin: float = 1.0) -> Array:
  """C(x) + [m - C(G(z))]^+ (Zhao et al. 2017, Eq. 1)."""
  return _mean(ebgan_energy(real)) + _mean(jax.nn.relu(margin - ebgan_energy(fake)))


def ebgan_g_loss(*, fake: Array, real: Array | None = None) -> Array:
  """C(G(z)) (Zhao et al. 2017, Eq. 2)."""
  del real
  return _mean(ebgan_energy(fake))


# --- Relativistic GANs (Jolicoeur-Martineau, 2019) -------------------------------------------------


def rsgan_d_loss(*, real: Array, fake: Array) -> Array:
  """-E[log sigmoid(C(x_r) - C(x_f))] over paired samples (RSGAN, Jolicoeur-Martineau 2019, Eq. 8)."""
  return _mean(jax.nn.softplus(-(real - fake)))


def rsgan_g_loss(*, fake: Array, real: Array | None = None) -> Array:
  """-E[log sigmoid(C(x_f) - C(x_r))] (RSGAN, Eq. 9). Needs the critic's outputs on real data."""
  assert real is not None, "rsgan's generator loss needs the critic's outputs on real data"
  return _mean(jax.nn.softplus(-(fake - real)))


def ragan_d_loss(*, real: Array, fake: Array) -> Array:
  """Relativistic average GAN (RaSGAN, Jolicoeur-Martineau 2019, Eq. 10), D's side.

  -E_r[log sigmoid(C(x_r) - E_f C(x_f))] - E_f[log(1 - sigmoid(C(x_f) - E_r C(x_r)))].
  """
  real_rel = real - jnp.mean(fake)
  fake_rel = fake - jnp.mean(real)
  return _mean(jax.nn.softplus(-real_rel)) + _mean(jax.nn.softplus(fake_rel))


def ragan_g_loss(*, fake: Array, real: Array | None = None) -> Array:
  """RaSGAN generator loss: the D loss with real and fake swapped (Eq. 10, G's side)."""
  assert real is not None, "ragan's generator loss needs the critic's outputs on real data"
  fake_rel = fake - jnp.mean(real)
  real_rel = real - jnp.mean(fake)
  return _mean(jax.nn.softplus(-fake_rel)) + _mean(jax.nn.softplus(real_rel))


# --- Registry ----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Objective:
  """A GAN objective: both players' losses plus the defaults of its paper.

  Attributes:
    d_loss: ``d_loss(*, real, fake, **hparams) -> scalar`` on discriminator outputs.
    g_loss: ``g_loss(*, fake, real=None) -> scalar``.
    outputs_are_logits: True if D's outputs are logits of P(real) (metrics report sigmoid(D)),
      False for critics (metrics report raw values).
    g_needs_real: whether ``g_loss`` reads D's outputs on real data (relativistic losses).
    defaults: paper defaults (optimizer, lr_g, lr_d, beta1, beta2, n_critic, clip_value, gp_weight),
      overridden by flags.
    reference: the paper.
    d_hparams: names of the scalar hyperparameters ``d_loss`` takes as keywords (read from
      ``GANState.hparams``, so sweeps can vary them); ``real_label`` means one-sided label smoothing
      is supported.
  """

  d_loss: LossFn
  g_loss: LossFn
  outputs_are_logits: bool
  g_needs_real: bool
  defaults: Mapping[str, float | int | str]
  reference: str
  d_hparams: tuple[str, ...] = ()


_ADAM_DCGAN = dict(optimizer="adam", lr_g=2e-4, lr_d=2e-4, beta1=0.5, beta2=0.999, n_critic=1)

OBJECTIVES: dict[str, Objective] = {
    "minimax": Objective(
        d_loss=minimax_d_loss, g_loss=minimax_g_loss, outputs_are_logits=True, g_needs_real=False,
        defaults=_ADAM_DCGAN, reference="Goodfellow et al. 2014, Generative Adversarial Nets, Eq. 1",
        d_hparams=("real_label",)),
    "nonsaturating": Objective(
        d_loss=minimax_d_loss, g_loss=nonsaturating_g_loss, outputs_are_logits=True, g_needs_real=False,
        defaults=_ADAM_DCGAN, reference="Goodfellow et al. 2014, Sec. 3 (non-saturating G loss)",
        d_hparams=("real_label",)),
    "wgan": Objective(
        d_loss=wasserstein_d_loss, g_loss=wasserstein_g_loss, outputs_are_logits=False,
        g_needs_real=False,
        defaults=dict(optimizer="rmsprop", lr_g=5e-5, lr_d=5e-5, beta1=0.0, beta2=0.0, n_critic=5,
                      clip_value=0.01),
        reference="Arjovsky et al. 2017, Wasserstein GAN, Algorithm 1"),
    "wgan_gp": Objective(
        d_loss=wasserstein_d_loss, g_loss=wasserstein_g_loss, outputs_are_logits=False,
        g_needs_real=False,
        defaults=dict(optimizer="adam", lr_g=1e-4, lr_d=1e-4, beta1=0.0, beta2=0.9, n_critic=5,
                      gp_weight=10.0),
        reference="Gulrajani et al. 2017, Improved Training of Wasserstein GANs, Algorithm 1"),
    "hinge": Objective(
        d_loss=hinge_d_loss, g_loss=wasserstein_g_loss, outputs_are_logits=False, g_needs_real=False,
        defaults=dict(optimizer="adam", lr_g=2e-4, lr_d=2e-4, beta1=0.0, beta2=0.9, n_critic=1),
        reference="Lim & Ye 2017; Miyato et al. 2018 (SNGAN), Eq. 16"),
    "lsgan": Objective(
        d_loss=lsgan_d_loss, g_loss=lsgan_g_loss, outputs_are_logits=False, g_needs_real=False,
        defaults=_ADAM_DCGAN, reference="Mao et al. 2017, Least Squares GANs, Eq. 2 (0-1 coding)",
        d_hparams=("real_label",)),
    "ebgan": Objective(
        d_loss=ebgan_d_loss, g_loss=ebgan_g_loss, outputs_are_logits=False, g_needs_real=False,
        defaults=dict(_ADAM_DCGAN, margin=1.0),
        reference="Zhao et al. 2017, Energy-based GAN, Eqs. 1-2", d_hparams=("margin",)),
    "rsgan": Objective(
        d_loss=rsgan_d_loss, g_loss=rsgan_g_loss, outputs_are_logits=False, g_needs_real=True,
        defaults=_ADAM_DCGAN, reference="Jolicoeur-Martineau 2019, The relativistic discriminator, Eqs. 8-9"),
    "ragan": Objective(
        d_loss=ragan_d_loss, g_loss=ragan_g_loss, outputs_are_logits=False, g_needs_real=True,
        defaults=_ADAM_DCGAN, reference="Jolicoeur-Martineau 2019, The relativistic discriminator, Eq. 10"),
}


def get_objective(name: str) -> Objective:
  """Returns the registered objective, or raises a ValueError listing the valid names."""
  try:
    return OBJECTIVES[name]
  except KeyError:
    raise ValueError(f"Unknown objective {name!r}; valid: {', '.join(sorted(OBJECTIVES))}") from None
