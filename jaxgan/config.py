"""The run configuration: one frozen, validated dataclass (launch.py fills it from flags).

Fields left ``None`` mean "the default of the chosen objective / architecture / dataset";
``Config.resolve()`` fills them in (written to ``config.json`` so a run records what it actually used)
and validates every value and combination, raising ``ConfigError`` with a message naming the fix.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from jaxgan.data.toy import TOY_DATASETS
from jaxgan.objectives import OBJECTIVES

ARCHS = ("mlp", "dcgan", "resnet")
IMAGE_ARCHS = ("dcgan", "resnet")
# Resolutions each architecture supports (checked at parse time).
ARCH_RESOLUTIONS = {"mlp": (None,), "dcgan": (28, 32, 64), "resnet": (28, 32, 64)}
EMBEDDED_DATASET = "digits"
# Default resolution of well-known datasets (anything else: 32, or set --resolution).
DATASET_RESOLUTION = {"digits": 28, "mnist": 28, "fashion_mnist": 28, "cifar10": 32,
                      "svhn_cropped": 32, "celeb_a": 64}
# A 2-D latent for 2-D toy data: measured here, z in R^2 covered all 8 ring modes where z in R^16 collapsed.
# The embedded digits are the CPU-sized default of image architectures (the README's first command):
# a narrower net, fewer steps and a learning rate of 2e-4 for every objective (WGAN's paper value, 5e-5,
# needs far more steps than a CPU run allows: measured here, noise after 80 steps where 2e-4 shows
# digit shapes after 240). Explicit flags override these; other datasets use the papers' values.
DATASET_PRESETS = {"digits": dict(width=32, steps=1200, lr_g=2e-4, lr_d=2e-4)}
ARCH_LATENT_DIM = {"mlp": 2, "dcgan": 100, "resnet": 128}


class ConfigError(ValueError):
  """A flag value or combination that cannot work; the message names the fix."""


@dataclasses.dataclass(frozen=True)
class Config:
  """Everything that defines a run. See README.md for each field's meaning (they mirror the flags)."""

  # What to train.
  objective: str = "nonsaturating"
  arch: str = "mlp"
  dataset: str | None = None
  conditional: bool = False
  spectral_norm: bool = False
  latent_dim: int | None = None
  resolution: int | None = None
  width: int | None = None  # ngf/ndf for DCGAN, ch for ResNet, hidden units for the MLP
  # How long and how.
  steps: int | None = None
  batch_size: int | None = None
  optimizer: str | None = None
  lr_g: float | None = None
  lr_d: float | None = None
  beta1: float | None = None
  beta2: float | None = None
  n_critic: int | None = None
  seed: int = 0
  # Regularizers and tricks.
  gp_weight: float | None = None
  r1_gamma: float = 0.0
  dragan_weight: float = 0.0
  clip_value: float | None = None
  instance_noise: float = 0.0
  instance_noise_steps: int = 0
  pack: int = 1
  label_smoothing: float = 0.0
  ema_decay: float | None = None  # 0 = off; default: 0.999 for mlp and resnet, off for dcgan
  margin: float | None = None
  # Data.
  data_dir: str | None = None
  manual_dir: str | None = None
  download: bool = False
  # Outputs.
  workdir: str = "runs/default"
  log_every: int | None = None
  eval_every: int | None = None
  ckpt_every: int | None = None
  num_eval_samples: int | None = None
  overwrite: bool = False

  # --- derived -------------------------------------------------------------------------------------

  @property
  def is_toy(self) -> bool:
    return self.dataset in TOY_DATASETS

  def to_json(self) -> str:
    return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

  @classmethod
  def from_dict(cls, values: dict[str, Any]) -> "Config":
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
      raise ConfigError(f"Unknown config fields {unknown}; valid: {sorted(known)}")
    return cls(**values)

  # --- defaults and validation -----------------------------------------------------------------------

  def resolve(self) -> "Config":
    """Fills every None with its default and validates; returns the complete config."""
    if self.objective not in OBJECTIVES:
      raise ConfigError(f"--objective={self.objective!r} is unknown; valid: {', '.join(OBJECTIVES)}")
    if self.arch not in ARCHS:
      raise ConfigError(f"--arch={self.arch!r} is unknown; valid: {', '.join(ARCHS)}")
    obj = OBJECTIVES[self.objective].defaults
    toy = self.arch == "mlp"
    dataset = self.dataset or ("ring8" if toy else EMBEDDED_DATASET)
    if toy and dataset not in TOY_DATASETS:
      raise ConfigError(f"--arch=mlp trains on 2-D toy data; --dataset must be one of "
                        f"{', '.join(TOY_DATASETS)} (got {dataset!r}); use --arch=dcgan or resnet for images")
    if not toy and dataset in TOY_DATASETS:
      raise ConfigError(f"--dataset={dataset} is 2-D toy data; train it with --arch=mlp")
    resolution = self.resolution or (None if toy else DATASET_RESOLUTION.get(dataset, 32))
    defaults = dict(
        dataset=dataset,
        resolution=resolution,
        latent_dim=ARCH_LATENT_DIM[self.arch],
        width={"mlp": 128, "dcgan": 64, "resnet": 128}[self.arch],
        steps=10_000 if toy else 2_000,
        batch_size=256 if toy else 64,
        optimizer=obj["optimizer"],
        lr_g=obj["lr_g"],
        lr_d=obj["lr_d"],
        beta1=obj["beta1"],
        beta2=obj["beta2"],
        n_critic=obj["n_critic"],
        gp_weight=obj.get("gp_weight", 0.0),
        clip_value=obj.get("clip_value", 0.0),
        margin=obj.get("margin", 1.0),
        num_eval_samples=2500 if toy else 1000,
        ema_decay=0.0 if self.arch == "dcgan" else 0.999,
    )
    defaults.update(DATASET_PRESETS.get(dataset, {}) if not toy else {})
    filled = {k: (defaults[k] if getattr(self, k) is None and k in defaults else getattr(self, k))
              for k in (f.name for f in dataclasses.fields(self))}
    filled["dataset"] = dataset
    steps = filled["steps"]
    filled["log_every"] = self.log_every or max(1, min(500, steps // 20))
    filled["eval_every"] = self.eval_every or max(1, steps // 10)
    filled["ckpt_every"] = self.ckpt_every or max(1, steps // 4)
    config = dataclasses.replace(self, **filled)
    config.validate()
    return config

  def validate(self) -> None:
    """Raises ConfigError for any bad value or combination of a resolved config."""
    def need(cond: bool, message: str) -> None:
      if not cond:
        raise ConfigError(message)

    need(self.steps > 0, f"--steps must be > 0 (got {self.steps})")
    need(self.batch_size > 0, f"--batch_size must be > 0 (got {self.batch_size})")
    need(self.optimizer in ("adam", "rmsprop", "sgd"),
         f"--optimizer={self.optimizer!r} is unknown; valid: adam, rmsprop, sgd")
    need(self.lr_g > 0 and self.lr_d > 0, f"--lr_g and --lr_d must be > 0 (got {self.lr_g}, {self.lr_d})")
    need(0 <= self.beta1 < 1 and 0 <= self.beta2 < 1,
         f"--beta1 and --beta2 must be in [0, 1) (got {self.beta1}, {self.beta2})")
    need(self.n_critic >= 1, f"--n_critic must be >= 1 (got {self.n_critic})")
    need(self.latent_dim >= 1, f"--latent_dim must be >= 1 (got {self.latent_dim})")
    need(self.width >= 1, f"--width must be >= 1 (got {self.width})")
    for name in ("gp_weight", "r1_gamma", "dragan_weight", "clip_value", "instance_noise", "margin"):
      need(getattr(self, name) >= 0, f"--{name} must be >= 0 (got {getattr(self, name)})")
    need(self.instance_noise_steps >= 0, "--instance_noise_steps must be >= 0")
    need(not (self.instance_noise > 0 and self.instance_noise_steps == 0),
         "--instance_noise > 0 needs --instance_noise_steps > 0 (the steps over which it anneals to 0)")
    need(self.pack >= 1, f"--pack must be >= 1 (got {self.pack})")
    need(self.batch_size % self.pack == 0,
         f"--batch_size={self.batch_size} must be divisible by --pack={self.pack}")
    need(not (self.pack > 1 and self.conditional),
         "--pack > 1 cannot be combined with --conditional (a packed input mixes labels); drop one")
    need(0 <= self.label_smoothing < 1, f"--label_smoothing must be in [0, 1) (got {self.label_smoothing})")
    need(self.label_smoothing == 0 or "real_label" in OBJECTIVES[self.objective].d_hparams,
         f"--label_smoothing is defined for cross-entropy/least-squares objectives "
         f"({', '.join(n for n, o in OBJECTIVES.items() if 'real_label' in o.d_hparams)}), "
         f"not --objective={self.objective}")
    need(0 <= self.ema_decay < 1, f"--ema_decay must be in [0, 1) (got {self.ema_decay})")
    need(self.objective != "wgan" or self.clip_value > 0,
         "--objective=wgan needs --clip_value > 0 (weight clipping is what makes it WGAN)")
    need(self.arch in IMAGE_ARCHS or not self.conditional,
         "--conditional needs labelled image data (--arch=dcgan or resnet)")
    need(self.arch == "resnet" or not self.spectral_norm,
         "--spectral_norm is implemented for --arch=resnet")
    need(self.resolution in ARCH_RESOLUTIONS[self.arch],
         f"--resolution={self.resolution} is not supported by --arch={self.arch}; valid: "
         f"{', '.join(str(r) for r in ARCH_RESOLUTIONS[self.arch])}")
    for name in ("log_every", "eval_every", "ckpt_every", "num_eval_samples"):
      need(getattr(self, name) >= 1, f"--{name} must be >= 1 (got {getattr(self, name)})")
    need(self.manual_dir is None or not self.is_toy, "--manual_dir only applies to image datasets")


# Fields that may differ when resuming a run from its workdir (everything else must match).
RESUMABLE_DIFFERENCES = frozenset(
    {"steps", "workdir", "log_every", "eval_every", "ckpt_every", "overwrite", "data_dir", "manual_dir",
     "download", "num_eval_samples"})


def config_differences(saved: dict[str, Any], current: Config) -> dict[str, tuple[Any, Any]]:
  """Fields whose saved and current values differ (ignoring those a resume may change)."""
  now = dataclasses.asdict(current)
  keys = (set(saved) | set(now)) - RESUMABLE_DIFFERENCES
  return {k: (saved.get(k), now.get(k)) for k in sorted(keys) if saved.get(k) != now.get(k)}
