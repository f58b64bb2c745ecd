"""Toy 2-D Gaussian-mixture datasets for mode-collapse experiments.

The standard benchmarks of VEEGAN (Srivastava et al. 2017) and PacGAN (Lin et al. 2018):
``ring8`` (8 modes on the unit circle, sigma=0.01), ``grid25`` (5x5 grid on {-4,-2,0,2,4}^2,
sigma=0.05) and ``grid16`` (4x4 grid on {-3,-1,1,3}^2, sigma=0.05). Samples are drawn on the fly
from a JAX key, so a train step can sample real data inside ``jax.jit`` with no input pipeline.
"""

from __future__ import annotations

import dataclasses
import itertools

import chex
import jax
import jax.numpy as jnp
import numpy as np


# eq=False: identity hashing, so a mixture (which holds an unhashable ndarray) can be a static
# argument of jax.jit; the registry entries below are module-level singletons.
@dataclasses.dataclass(frozen=True, eq=False)
class ToyMixture:
    """An equally weighted isotropic Gaussian mixture in 2-D.

    Attributes:
      name: registry name.
      means: [K, 2] float32 mode centres.
      std: per-coordinate standard deviation of every mode.
    """

    name: str
    means: np.ndarray
    std: float

    def __post_init__(self) -> None:
        means = np.asarray(self.means, dtype=np.float32)
        if means.ndim != 2 or means.shape[1] != 2:
            raise ValueError(f"means must have shape [K, 2], got {means.shape}")
        means.setflags(write=False)
        object.__setattr__(self, "means", means)

    @property
    def num_modes(self) -> int:
        """Number of mixture components K."""
        return int(self.means.shape[0])

    def sample(self, key: chex.PRNGKey, n: int) -> jax.Array:
        """Draws ``n`` points: a mode uniformly at random, plus N(0, std^2 I) noise.

        Pure and jittable (``n`` must be static). Returns [n, 2] float32.
        """
        mode_key, noise_key = jax.random.split(key)
        idx = jax.random.randint(mode_key, (n,), 0, self.num_modes)
        centres = jnp.asarray(self.means)[idx]
        noise = jax.random.normal(noise_key, (n, 2), dtype=jnp.float32)
        out = centres + jnp.float32(self.std) * noise
        chex.assert_shape(out, (n, 2))
        chex.assert_type(out, jnp.float32)
        return out


def _ring(num_modes: int, radius: float) -> np.ndarray:
    """``num_modes`` points evenly spaced on a circle of ``radius``, starting at angle 0."""
    angles = 2.0 * np.pi * np.arange(num_modes) / num_modes
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def _grid(coords: tuple[float, ...]) -> np.ndarray:
    """Cartesian product coords x coords as [len(coords)^2, 2]."""
    return np.array(list(itertools.product(coords, coords)), dtype=np.float32)


TOY_DATASETS: dict[str, ToyMixture] = {
    "ring8": ToyMixture("ring8", _ring(8, 1.0), 0.01),
    "grid25": ToyMixture("grid25", _grid((-4.0, -2.0, 0.0, 2.0, 4.0)), 0.05),
    "grid16": ToyMixture("grid16", _grid((-3.0, -1.0, 1.0, 3.0)), 0.05),
}


def get_toy_dataset(name: str) -> ToyMixture:
    """Looks up a toy mixture by name; raises ValueError listing the valid names."""
    try:
        return TOY_DATASETS[name]
    except KeyError:
        raise ValueError(
            f"Unknown toy dataset {name!r}; valid names: {sorted(TOY_DATASETS)}"
        ) from None
