"""InfoGAN networks and latent codes (Chen et al. 2016, "InfoGAN", Appendix C.1: the MNIST architecture).

* Codes: noise z ~ N(0, I) (``noise_dim``), one categorical code c1 ~ Cat(K) (one-hot) and ``C``
  continuous codes ~ U[-1, 1]; G's input is their concatenation ``[z, onehot(c1), c_cont]``.
* G: FC 1024 BN ReLU -> FC (R/4)x(R/4)x128 BN ReLU -> up-conv 64 4x4/2 BN ReLU -> up-conv ``channels``
  4x4/2 tanh (``ConvTranspose2x``: the sub-pixel transposed conv that XLA:CPU differentiates quickly).
* D trunk: conv 64 4x4/2 lReLU -> conv 128 4x4/2 BN lReLU -> FC 1024 BN lReLU; the D head is one
  logit, the Q head (sharing the trunk) is FC 128 BN lReLU -> categorical logits [K] and the means of
  the continuous codes [C] (a factored Gaussian with fixed unit std, as the authors' code for MNIST).
  LeakyReLU slope 0.1 (the paper's MNIST networks).
* ``width`` (w, default 64 = the paper) scales every layer: 64 -> w, 128 -> 2w, 1024 -> 16w.

The model contract of ``jaxgan.state.GANState`` holds: ``G(codes, labels=None, train=)`` and
``D(x, labels=None, train=)``; D returns ``(d_logits [B], cat_logits [B, K], cont_mean [B, C])``.

``dtype`` is the layers' computation dtype (e.g. bfloat16); parameters and BatchNorm statistics stay
float32, and G's images and all of D's outputs are float32 (the losses are computed in float32).
"""

from __future__ import annotations

import math
from typing import Any

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgan.models.layers import ConvTranspose2x, dcgan_normal

Array = jax.Array
LEAKY_SLOPE = 0.1
# Weight of the continuous codes' Gaussian log-likelihood relative to the categorical cross-entropy
# (InfoGAN Sec. 7: lambda = 1 for discrete codes, smaller for continuous ones to match scales).
CONTINUOUS_FACTOR = 0.1


def code_dim(noise_dim: int, num_categories: int, num_continuous: int) -> int:
  """Length of G's input vector ``[z, onehot(c1), c_cont]``."""
  return noise_dim + num_categories + num_continuous


def sample_codes(key: Array, batch: int, noise_dim: int, num_categories: int, num_continuous: int
                 ) -> tuple[Array, Array, Array]:
  """Draws ``(g_input [B, code_dim], c1 [B] int32, c_cont [B, C])`` from the InfoGAN prior."""
  z_key, cat_key, cont_key = jax.random.split(key, 3)
  z = jax.random.normal(z_key, (batch, noise_dim), jnp.float32)
  c1 = jax.random.randint(cat_key, (batch,), 0, num_categories, jnp.int32)
  c_cont = jax.random.uniform(cont_key, (batch, num_continuous), jnp.float32, -1.0, 1.0)
  return assemble_codes(z, c1, c_cont, num_categories), c1, c_cont


def assemble_codes(z: Array, c1: Array, c_cont: Array, num_categories: int) -> Array:
  """``[z, onehot(c1), c_cont]``: G's input for given codes (used for grids that sweep one code)."""
  chex.assert_rank([z, c1, c_cont], [2, 1, 2])
  return jnp.concatenate([z, jax.nn.one_hot(c1, num_categories, dtype=z.dtype), c_cont], axis=-1)


def mutual_information_loss(cat_logits: Array, cont_mean: Array, c1: Array, c_cont: Array, *,
                            continuous_factor: float = CONTINUOUS_FACTOR) -> tuple[Array, dict[str, Array]]:
  """The negated variational MI lower bound minus the constant H(c): ``CE(c1) + f * NLL(c_cont)``.

  ``L_I(G, Q) = E[log Q(c|x)] + H(c)`` (InfoGAN Eq. 5); since H(c) is fixed by the prior, minimising
  ``-E[log Q(c|x)]`` maximises the bound. ``-log Q`` is the categorical cross-entropy of c1 plus the
  Gaussian negative log-likelihood of each continuous code under N(mean, 1):
  ``0.5 (c - mean)^2 + 0.5 log(2 pi)`` summed over codes; both averaged over the batch. Returns the loss
  and its parts (``info_ce``, ``info_nll``; the MI estimate of c1 is ``log K - info_ce``).
  """
  chex.assert_equal_shape([cont_mean, c_cont])
  chex.assert_rank(cat_logits, 2)
  ce = -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(cat_logits), c1[:, None], axis=-1))
  nll = jnp.mean(jnp.sum(0.5 * jnp.square(c_cont - cont_mean) + 0.5 * math.log(2 * math.pi), axis=-1))
  return ce + continuous_factor * nll, {"info_ce": ce, "info_nll": nll}


def _bn(train: bool, axis_name: str | None, name: str, dtype: Any) -> nn.BatchNorm:
  """BatchNorm with DCGAN init; its statistics are computed in float32 whatever ``dtype`` is (flax)."""
  return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                      scale_init=dcgan_normal(1.0, 0.02), dtype=dtype, axis_name=axis_name, name=name)


class InfoGANGenerator(nn.Module):
  """codes [B, code_dim] -> images [B, R, R, channels] in [-1, 1] (R = 4 * base)."""

  resolution: int = 28
  channels: int = 1
  width: int = 64
  axis_name: str | None = None
  dtype: Any = jnp.float32  # computation dtype; params and images stay float32

  @nn.compact
  def __call__(self, codes: Array, labels: Array | None = None, *, train: bool = True) -> Array:
    del labels  # unconditional: the codes are the conditioning
    chex.assert_rank(codes, 2)
    if self.resolution % 4:
      raise ValueError(f"resolution must be divisible by 4, got {self.resolution}")
    base = self.resolution // 4
    init = dcgan_normal()
    w = self.width
    dt = self.dtype
    x = nn.Dense(16 * w, kernel_init=init, dtype=dt, name="fc1")(codes)
    x = nn.relu(_bn(train, self.axis_name, "bn1", dt)(x))
    x = nn.Dense(base * base * 2 * w, kernel_init=init, dtype=dt, name="fc2")(x)
    x = nn.relu(_bn(train, self.axis_name, "bn2", dt)(x)).reshape(-1, base, base, 2 * w)
    x = ConvTranspose2x(w, kernel_init=init, dtype=dt, name="up1")(x)
    x = nn.relu(_bn(train, self.axis_name, "bn3", dt)(x))
    x = ConvTranspose2x(self.channels, use_bias=True, kernel_init=init, dtype=dt, name="up2")(x)
    x = jnp.tanh(x).astype(jnp.float32)
    chex.assert_shape(x, (codes.shape[0], self.resolution, self.resolution, self.channels))
    return x


class InfoGANDiscriminator(nn.Module):
  """images -> (d_logits [B], cat_logits [B, K], cont_mean [B, C]): D and Q share the trunk."""

  num_categories: int = 10
  num_continuous: int = 2
  width: int = 64
  axis_name: str | None = None
  dtype: Any = jnp.float32  # computation dtype; params and the three outputs stay float32

  @nn.compact
  def __call__(self, x: Array, labels: Array | None = None, *, train: bool = True
               ) -> tuple[Array, Array, Array]:
    del labels
    chex.assert_rank(x, 4)
    init = dcgan_normal()
    act = lambda h: nn.leaky_relu(h, LEAKY_SLOPE)  # noqa: E731
    w, dt = self.width, self.dtype
    h = act(nn.Conv(w, (4, 4), (2, 2), padding=((1, 1), (1, 1)), kernel_init=init, dtype=dt,
                    name="conv1")(x))
    h = nn.Conv(2 * w, (4, 4), (2, 2), padding=((1, 1), (1, 1)), use_bias=False, kernel_init=init,
                dtype=dt, name="conv2")(h)
    h = act(_bn(train, self.axis_name, "bn2", dt)(h)).reshape(x.shape[0], -1)
    h = nn.Dense(16 * w, use_bias=False, kernel_init=init, dtype=dt, name="fc")(h)
    h = act(_bn(train, self.axis_name, "bn3", dt)(h))
    d_logits = nn.Dense(1, kernel_init=init, dtype=dt, name="d_head")(h)[:, 0]
    q = nn.Dense(2 * w, use_bias=False, kernel_init=init, dtype=dt, name="q_fc")(h)
    q = act(_bn(train, self.axis_name, "q_bn", dt)(q))
    cat_logits = nn.Dense(self.num_categories, kernel_init=init, dtype=dt, name="q_cat")(q)
    cont_mean = (nn.Dense(self.num_continuous, kernel_init=init, dtype=dt, name="q_cont")(q)
                 if self.num_continuous else jnp.zeros((x.shape[0], 0), q.dtype))
    f32 = lambda a: a.astype(jnp.float32)  # noqa: E731  the losses are computed in float32
    return f32(d_logits), f32(cat_logits), f32(cont_mean)
