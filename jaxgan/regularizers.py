"""Discriminator regularizers and training tricks as pure functions.

Penalties take ``d_fn: x -> outputs [B]`` (the discriminator with its parameters bound, so the penalty
is differentiable with respect to them through the closure), the inputs, and a key where they sample.
Gradients with respect to inputs use ``jax.vjp`` with a ones cotangent: since D scores each example
independently (no BatchNorm in critics that use penalties; with BatchNorm the per-example gradient
is the usual approximation every library makes), ``d/dx_i sum_j D(x_j)`` is example i's input gradient.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import optax

Array = jax.Array
DiscriminatorFn = Callable[[Array], Array]


def _per_example_input_grad_norm(d_fn: DiscriminatorFn, x: Array) -> Array:
  """||dD(x_i)/dx_i||_2 for each example, shape [B]."""
  outputs, vjp = jax.vjp(d_fn, x)
  (grads,) = vjp(jnp.ones_like(outputs))
  flat = grads.reshape(grads.shape[0], -1)
  # Tiny epsilon keeps the gradient of the norm finite where the input gradient is exactly zero.
  return jnp.sqrt(jnp.sum(jnp.square(flat), axis=1) + 1e-12)


def _per_example_uniform(key: Array, x: Array) -> Array:
  """U[0, 1] per example, broadcastable against x."""
  return jax.random.uniform(key, (x.shape[0],) + (1,) * (x.ndim - 1), dtype=x.dtype)


def gradient_penalty(d_fn: DiscriminatorFn, real: Array, fake: Array, key: Array) -> Array:
  """E[(||grad D(x_hat)|| - 1)^2] on per-example random interpolates (WGAN-GP, Gulrajani et al. 2017).

  x_hat = eps * x + (1 - eps) * G(z), eps ~ U[0, 1] drawn independently for each example
  (Algorithm 1, line 6). Multiply by lambda (10 in the paper) outside.
  """
  eps = _per_example_uniform(key, real)
  interpolates = eps * real + (1.0 - eps) * fake
  norms = _per_example_input_grad_norm(d_fn, interpolates)
  return jnp.mean(jnp.square(norms - 1.0))


def r1_penalty(d_fn: DiscriminatorFn, real: Array) -> Array:
  """E[||grad D(x)||^2] on real data (R1, Mescheder et al. 2018, Eq. 9). Multiply by gamma/2 outside."""
  outputs, vjp = jax.vjp(d_fn, real)
  (grads,) = vjp(jnp.ones_like(outputs))
  return jnp.mean(jnp.sum(jnp.square(grads.reshape(grads.shape[0], -1)), axis=1))


def dragan_penalty(d_fn: DiscriminatorFn, real: Array, key: Array, *, perturb_scale: float = 0.5) -> Array:
  """DRAGAN (Kodali et al. 2017): gradient penalty around perturbed real data.

  Following the authors' reference code: x_p = x + c * std(x) * u with u ~ U[0, 1] elementwise and
  c = 0.5, then x_hat = x + alpha * (x_p - x) with alpha ~ U[0, 1] per example; penalty
  E[(||grad D(x_hat)|| - 1)^2]. Multiply by lambda (10 in the paper) outside.
  """
  noise_key, alpha_key = jax.random.split(key)
  perturbed = real + perturb_scale * jnp.std(real) * jax.random.uniform(noise_key, real.shape, real.dtype)
  alpha = _per_example_uniform(alpha_key, real)
  x_hat = real + alpha * (perturbed - real)
  norms = _per_example_input_grad_norm(d_fn, x_hat)
  return jnp.mean(jnp.square(norms - 1.0))


def clip_weights(params, clip_value: Array | float):
  """Projects every parameter onto [-c, c] (WGAN weight clipping, applied after each critic update)."""
  return jax.tree_util.tree_map(lambda p: jnp.clip(p, -clip_value, clip_value), params)


def instance_noise_std(step: Array, *, initial_std: Array | float, anneal_steps: int) -> Array:
  """sigma_t = sigma_0 * max(0, 1 - t / T): instance noise annealed linearly to zero.

  Instance noise (Sønderby et al. 2017; Arjovsky & Bottou 2017) adds N(0, sigma_t^2) to the inputs
  of D, real and fake alike, so that the two distributions overlap early in training.
  """
  frac = jnp.clip(1.0 - step.astype(jnp.float32) / max(anneal_steps, 1), 0.0, 1.0)
  return initial_std * frac


def add_instance_noise(x: Array, key: Array, std: Array) -> Array:
  """x + std * N(0, I)."""
  return x + std * jax.random.normal(key, x.shape, x.dtype)


def pack(x: Array, k: int) -> Array:
  """PacGAN packing (Lin et al. 2018): k consecutive samples become one input to D.

  ``[B, ...features, C] -> [B/k, ...features, k*C]``: for vectors the k samples are concatenated; for
  images they are stacked along channels (as in the PacGAN reference DCGAN). Real and fake are packed
  separately, so a packed input is all-real or all-fake.
  """
  if k == 1:
    return x
  b = x.shape[0]
  if b % k:
    raise ValueError(f"Batch size {b} is not divisible by pack={k}")
  grouped = x.reshape((b // k, k) + x.shape[1:])  # [B/k, k, ..., C]
  grouped = jnp.moveaxis(grouped, 1, -2)  # [B/k, ..., k, C]
  return grouped.reshape(grouped.shape[:-2] + (k * x.shape[-1],))


def ema_update(ema_params, params, decay: Array | float):
  """ema <- decay * ema + (1 - decay) * params (EMA of G's weights, Karras et al. 2018; Yazici et al. 2019)."""
  return optax.incremental_update(params, ema_params, step_size=1.0 - decay)
