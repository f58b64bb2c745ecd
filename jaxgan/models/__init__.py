"""Architectures: ``MODELS`` maps ``--arch`` to a constructor of the (generator, discriminator) pair."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import flax.linen as nn
import jax.numpy as jnp

from jaxgan.models.mlp import MLPDiscriminator, MLPGenerator


@dataclasses.dataclass(frozen=True)
class ModelSpec:
  """What a constructor needs to know about the data and the run."""

  latent_dim: int
  width: int
  resolution: int | None  # None for vector data
  channels: int  # image channels, or the data dimension for vector data
  num_classes: int | None = None
  spectral_norm: bool = False
  axis_name: str | None = None  # pmap axis for cross-device BatchNorm statistics
  d_channels: int | None = None  # channels D sees if not ``channels`` (PacGAN packs k images: k * channels)
  dtype: Any = jnp.float32  # computation dtype (params stay float32): float32 or bfloat16


def _mlp(spec: ModelSpec) -> tuple[nn.Module, nn.Module]:
  hidden = (spec.width,) * 3
  return (MLPGenerator(output_dim=spec.channels, hidden=hidden, num_classes=spec.num_classes),
          MLPDiscriminator(hidden=hidden, num_classes=spec.num_classes))


def _dcgan(spec: ModelSpec) -> tuple[nn.Module, nn.Module]:
  from jaxgan.models.dcgan import DCGANDiscriminator, DCGANGenerator
  return (DCGANGenerator(resolution=spec.resolution, latent_dim=spec.latent_dim, ngf=spec.width,
                         channels=spec.channels, num_classes=spec.num_classes,
                         axis_name=spec.axis_name, dtype=spec.dtype),
          DCGANDiscriminator(resolution=spec.resolution, ndf=spec.width, channels=spec.d_channels or spec.channels,
                             num_classes=spec.num_classes, axis_name=spec.axis_name, dtype=spec.dtype))


def _resnet(spec: ModelSpec) -> tuple[nn.Module, nn.Module]:
  from jaxgan.models.resnet import ResNetDiscriminator, ResNetGenerator
  return (ResNetGenerator(resolution=spec.resolution, latent_dim=spec.latent_dim, ch=spec.width,
                          channels=spec.channels, num_classes=spec.num_classes,
                          axis_name=spec.axis_name, dtype=spec.dtype),
          ResNetDiscriminator(resolution=spec.resolution, ch=spec.width, channels=spec.d_channels or spec.channels,
                              num_classes=spec.num_classes, spectral_norm=spec.spectral_norm,
                              dtype=spec.dtype))


MODELS: dict[str, Callable[[ModelSpec], tuple[nn.Module, nn.Module]]] = {
    "mlp": _mlp,
    "dcgan": _dcgan,
    "resnet": _resnet,
}


def build_models(arch: str, spec: ModelSpec) -> tuple[nn.Module, nn.Module]:
  """Returns (generator, discriminator) for ``arch``; raises a ValueError listing valid names."""
  if arch not in MODELS:
    raise ValueError(f"Unknown arch {arch!r}; valid: {', '.join(MODELS)}")
  return MODELS[arch](spec)
