"""A functional history of generated images for discriminator updates (Shrivastava et al. 2017).

CycleGAN (Zhu et al. 2017, Sec. 4) updates its discriminators on a history of generated images rather
than only the latest ones, to reduce oscillation. This is the ``ImagePool`` of the authors' code
(``util/image_pool.py`` in junyanz/pytorch-CycleGAN-and-pytorch-pix2pix) as a pure function of arrays:

* while the pool holds fewer than ``pool_size`` images, each new image is stored and returned as is;
* once full, each new image is, with probability 1/2, swapped with a uniformly chosen stored image
  (the stored one is returned, the new one takes its place), else returned as is (pool unchanged).

Images of a batch are processed one after another (``lax.scan``), exactly like the reference loop.
The pool is part of the training state (``ImagePool`` is a pytree), so checkpoints and resumes carry
it; randomness comes only from the key passed in.
"""

from __future__ import annotations

import chex
import flax
import jax
import jax.numpy as jnp
from jax import lax

Array = jax.Array


@flax.struct.dataclass
class ImagePool:
  """``images[:count]`` are the stored images (``count <= pool_size``); the rest is unused zeros."""

  images: Array  # [pool_size, H, W, C]
  count: Array  # int32 scalar

  @classmethod
  def create(cls, pool_size: int, example_shape: tuple[int, ...]) -> "ImagePool":
    """An empty pool for images of ``example_shape`` (``pool_size`` >= 0; 0 disables the history)."""
    if pool_size < 0:
      raise ValueError(f"pool_size must be >= 0, got {pool_size}")
    return cls(images=jnp.zeros((pool_size,) + tuple(example_shape), jnp.float32),
               count=jnp.zeros((), jnp.int32))

  @property
  def pool_size(self) -> int:
    return self.images.shape[0]


def query(pool: ImagePool, images: Array, key: Array) -> tuple[ImagePool, Array]:
  """Returns ``(new_pool, out)``: ``out[i]`` is ``images[i]`` or a stored image (see module docstring).

  With ``pool_size == 0`` the images are returned unchanged (the reference code's behaviour).
  """
  chex.assert_equal_shape_suffix([pool.images, images], images.ndim - 1)
  if pool.pool_size == 0:
    return pool, images
  size = pool.pool_size

  def one(carry, inputs):
    stored, count = carry
    image, k = inputs
    swap_key, index_key = jax.random.split(k)
    filling = count < size
    swap = jnp.logical_and(~filling, jax.random.uniform(swap_key) < 0.5)
    index = jnp.where(filling, jnp.minimum(count, size - 1), jax.random.randint(index_key, (), 0, size))
    old = stored[index]
    out = jnp.where(swap, old, image)
    write = jnp.logical_or(filling, swap)
    stored = stored.at[index].set(jnp.where(write, image, old))
    return (stored, count + filling.astype(count.dtype)), out

  keys = jax.random.split(key, images.shape[0])
  (stored, count), out = lax.scan(one, (pool.images, pool.count), (images.astype(jnp.float32), keys))
  return ImagePool(images=stored, count=count), out.astype(images.dtype)
