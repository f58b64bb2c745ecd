"""The run configuration: one frozen, validated dataclass (launch.py fills it from flags).

Fields left ``None`` mean "the default of the chosen objective / architecture / dataset";
``Config.resolve()`` fills them in (written to ``config.json`` so a run records what it actually used)
and validates every value and combination, raising ``ConfigError`` with a message naming the fix.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from typing import Any

from jaxgan.data.toy import TOY_DATASETS
from jaxgan.objectives import OBJECTIVES
from jaxgan.recipes import RECIPE_MODULES

ARCHS = tuple(RECIPE_MODULES)
# The architectures of the one-G-one-D recipe (jaxgan.recipes.gan), whose defaults live in this module;
# every other architecture's defaults and checks live in its recipe module (DEFAULTS, RESOLUTIONS, validate).
GAN_ARCHS = ("mlp", "dcgan", "resnet")
IMAGE_ARCHS = ("dcgan", "resnet")
# Resolutions each architecture supports (checked at parse time).
ARCH_RESOLUTIONS = {"mlp": (None,), "dcgan": (28, 32, 64), "resnet": (28, 32, 64)}
PRECISIONS = ("float32", "bfloat16")
# Architectures whose layers take a computation dtype (--precision=bfloat16): every convolutional one
# (params, optimizer states, normalisation statistics and losses stay float32); not the toy MLP.
BF16_ARCHS = ("dcgan", "resnet", "infogan", "stylegan", "pix2pix", "cyclegan")
# Fields only some architectures read: None unless the architecture's recipe has a default for them, and
# setting one for an architecture that ignores it is an error (rather than silently doing nothing).
ARCH_SPECIFIC_FIELDS = ("l1_weight", "adv_weight", "cycle_weight", "identity_weight", "pool_size", "lr_decay_start",
                        "info_weight", "num_categories", "num_continuous", "style_mixing",
                        "truncation_psi", "r1_interval")
EMBEDDED_DATASET = "digits"
# Default resolution of well-known datasets (anything else: 32, or set --resolution).
DATASET_RESOLUTION = {"digits": 28, "mnist": 28, "fashion_mnist": 28, "stacked_mnist": 28, "cifar10": 32,
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
  objective: str | None = None  # default: nonsaturating (cyclegan: lsgan)
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
  r1_gamma: float | None = None  # 0 = off; stylegan's recipe defaults it on
  dragan_weight: float = 0.0
  clip_value: float | None = None
  instance_noise: float = 0.0
  instance_noise_steps: int = 0
  pack: int = 1
  label_smoothing: float = 0.0
  ema_decay: float | None = None  # 0 = off; default: 0.999 for mlp and resnet, off for dcgan
  reuse_fake: bool | None = None  # G's update reuses D's last fake batch (one G pass); default: dcgan only
  margin: float | None = None
  # Architecture-specific (see ARCH_SPECIFIC_FIELDS and each recipe's DEFAULTS).
  l1_weight: float | None = None  # pix2pix: lambda of the L1 loss to the target
  adv_weight: float | None = None  # pix2pix: weight of the adversarial loss (0 = the L1-only baseline)
  cycle_weight: float | None = None  # cyclegan: lambda of the cycle-consistency loss
  identity_weight: float | None = None  # cyclegan: identity loss weight, as a fraction of cycle_weight
  pool_size: int | None = None  # cyclegan: history of generated images D trains on
  lr_decay_start: int | None = None  # cyclegan: step where the learning rates start decaying linearly to 0
  info_weight: float | None = None  # infogan: lambda of the mutual-information bound
  num_categories: int | None = None  # infogan: values of the categorical code
  num_continuous: int | None = None  # infogan: continuous codes, uniform in [-1, 1]
  style_mixing: float | None = None  # stylegan: probability of style mixing during training
  truncation_psi: float | None = None  # stylegan: truncation of w for sample grids and evaluation
  r1_interval: int | None = None  # stylegan: lazy R1, applied every this many D steps
  # Compute.
  precision: str = "float32"  # computation dtype of the layers; params and optimizer stay float32
  num_devices: int | None = None  # local devices to shard the batch over with pmap (None = all)
  steps_per_call: int | None = None  # training steps per jitted dispatch (lax.scan); None = automatic
  # Data.
  data_dir: str | None = None
  manual_dir: str | None = None
  download: bool = False
  data_on_device: bool | None = None  # hold the dataset on the device; None = when it fits (2 GiB)
  # Outputs.
  workdir: str = "runs/default"
  log_every: int | None = None
  eval_every: int | None = None
  ckpt_every: int | None = None
  num_eval_samples: int | None = None
  classifier_dir: str | None = None  # a saved jaxgan MNIST-style classifier for classifier FID etc.
  inception_weights: str | None = None  # Inception-v3 weights file for Inception FID (no download)
  overwrite: bool = False

  # --- derived -------------------------------------------------------------------------------------

  @property
  def recipe(self) -> Any:
    """The recipe module that trains ``arch`` (``jaxgan.recipes``)."""
    from jaxgan.recipes import get_recipe
    return get_recipe(self.arch)

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
    if self.arch not in ARCHS:
      raise ConfigError(f"--arch={self.arch!r} is unknown; valid: {', '.join(ARCHS)}")
    toy = self.arch == "mlp"
    recipe_defaults: dict[str, Any] = {}
    if self.arch not in GAN_ARCHS:
      try:
        recipe_defaults = dict(importlib.import_module(RECIPE_MODULES[self.arch]).DEFAULTS)
      except ImportError as e:
        raise ConfigError(f"--arch={self.arch} cannot be loaded ({e}); reinstall jaxgan "
                          f"(pip install -e .)") from None
    objective = self.objective or recipe_defaults.get("objective") or "nonsaturating"
    recipe_defaults.pop("objective", None)
    if objective not in OBJECTIVES:
      raise ConfigError(f"--objective={objective!r} is unknown; valid: {', '.join(OBJECTIVES)}")
    obj = OBJECTIVES[objective].defaults
    dataset = self.dataset or recipe_defaults.get("dataset") or ("ring8" if toy else EMBEDDED_DATASET)
    if toy and dataset not in TOY_DATASETS:
      raise ConfigError(f"--arch=mlp trains on 2-D toy data; --dataset must be one of "
                        f"{', '.join(TOY_DATASETS)} (got {dataset!r}); use --arch=dcgan or resnet for images")
    if not toy and dataset in TOY_DATASETS:
      raise ConfigError(f"--dataset={dataset} is 2-D toy data; train it with --arch=mlp")
    resolution = self.resolution or (None if toy else DATASET_RESOLUTION.get(dataset, 32))
    defaults = dict(
        dataset=dataset,
        resolution=resolution,
        latent_dim=ARCH_LATENT_DIM.get(self.arch, 100),
        width={"mlp": 128, "dcgan": 64, "resnet": 128}.get(self.arch, 64),
        steps=10_000 if toy else 2_000,
        batch_size=256 if toy else 64,
        optimizer=obj["optimizer"],
        lr_g=obj["lr_g"],
        lr_d=obj["lr_d"],
        beta1=obj["beta1"],
        beta2=obj["beta2"],
        n_critic=obj["n_critic"],
        gp_weight=obj.get("gp_weight", 0.0),
        r1_gamma=0.0,
        clip_value=obj.get("clip_value", 0.0),
        margin=obj.get("margin", 1.0),
        num_eval_samples=2500 if toy else 1000,
        ema_decay=0.0 if self.arch == "dcgan" else 0.999,
        reuse_fake=self.arch == "dcgan",
    )
    if self.arch in IMAGE_ARCHS:
      defaults.update(DATASET_PRESETS.get(dataset, {}))
    unused = [k for k in ARCH_SPECIFIC_FIELDS if getattr(self, k) is not None and k not in recipe_defaults]
    if unused:
      raise ConfigError(f"{', '.join('--' + k for k in unused)} do(es) not apply to --arch={self.arch}; "
                        f"drop it or choose the architecture that reads it")
    defaults.update(recipe_defaults)
    filled = {k: (defaults[k] if getattr(self, k) is None and k in defaults else getattr(self, k))
              for k in (f.name for f in dataclasses.fields(self))}
    filled["dataset"] = dataset
    filled["objective"] = objective
    steps = filled["steps"]
    filled["log_every"] = self.log_every or max(1, min(500, steps // 20))
    filled["eval_every"] = self.eval_every or max(1, steps // 10)
    filled["ckpt_every"] = self.ckpt_every or max(1, steps // 4)
    config = dataclasses.replace(self, **filled)
    config.validate()
    return config

  def with_backend(self, platform: str) -> "Config":
    """This resolved config with ``steps_per_call`` set for ``platform`` (``jax.default_backend()``).

    Separate from ``resolve`` because flags are validated before JAX starts (XLA flags and
    ``jax.distributed`` must come first); the loop calls it and records the value in config.json.
    """
    if self.steps_per_call is not None:
      return self
    from jaxgan.multistep import auto_steps_per_call  # pylint: disable=import-outside-toplevel
    return dataclasses.replace(self, steps_per_call=auto_steps_per_call(
        self.arch, platform, self.log_every, self.eval_every, self.ckpt_every))

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
    need(not self.reuse_fake or self.arch in GAN_ARCHS,
         f"--reuse_fake applies to --arch={'/'.join(GAN_ARCHS)} (not {self.arch}); drop it")
    need(self.objective != "wgan" or self.clip_value > 0,
         "--objective=wgan needs --clip_value > 0 (weight clipping is what makes it WGAN)")
    need(self.arch in IMAGE_ARCHS or not self.conditional,
         "--conditional needs labelled image data (--arch=dcgan or resnet)")
    need(self.arch == "resnet" or not self.spectral_norm,
         "--spectral_norm is implemented for --arch=resnet")
    resolutions = ARCH_RESOLUTIONS.get(self.arch) or tuple(self.recipe.RESOLUTIONS)
    need(self.precision in PRECISIONS, f"--precision={self.precision!r} is unknown; valid: {', '.join(PRECISIONS)}")
    need(self.precision == "float32" or self.arch in BF16_ARCHS,
         f"--precision={self.precision} is implemented for --arch={', '.join(BF16_ARCHS)}; use float32")
    need(self.num_devices is None or self.num_devices >= 1, f"--num_devices must be >= 1 (got {self.num_devices})")
    need(self.num_devices is None or self.batch_size % self.num_devices == 0,
         f"--batch_size={self.batch_size} must be divisible by --num_devices={self.num_devices} "
         f"(each device takes an equal slice of the global batch)")
    need(self.resolution in resolutions,
         f"--resolution={self.resolution} is not supported by --arch={self.arch}; valid: "
         f"{', '.join(str(r) for r in resolutions)}")
    for name in ("log_every", "eval_every", "ckpt_every", "num_eval_samples"):
      need(getattr(self, name) >= 1, f"--{name} must be >= 1 (got {getattr(self, name)})")
    need(self.manual_dir is None or not self.is_toy, "--manual_dir only applies to image datasets")
    # None = automatic: resolved by the training loop, which knows the backend (see with_backend).
    need(self.steps_per_call is None or self.steps_per_call >= 1,
         f"--steps_per_call must be >= 1 (got {self.steps_per_call}); leave it unset for the automatic value")
    for name in ("log_every", "eval_every", "ckpt_every"):
      need(self.steps_per_call is None or getattr(self, name) % self.steps_per_call == 0,
           f"--steps_per_call={self.steps_per_call} must divide --{name}={getattr(self, name)} (logging, "
           f"samples and checkpoints happen between calls); choose a divisor of it, set --{name} to a "
           f"multiple of {self.steps_per_call}, or leave --steps_per_call unset")
    need(self.data_on_device is not True or not self.is_toy,
         "--data_on_device applies to image datasets (toy data is always sampled on the device)")
    if self.arch not in GAN_ARCHS:
      self.recipe.validate(self)


# Fields that may differ when resuming a run from its workdir (everything else must match).
RESUMABLE_DIFFERENCES = frozenset(
    {"steps", "workdir", "log_every", "eval_every", "ckpt_every", "overwrite", "data_dir", "manual_dir",
     "download", "num_eval_samples", "num_devices", "classifier_dir", "inception_weights",
     "steps_per_call"})


def config_differences(saved: dict[str, Any], current: Config) -> dict[str, tuple[Any, Any]]:
  """Fields whose saved and current values differ (ignoring those a resume may change)."""
  now = dataclasses.asdict(current)
  keys = (set(saved) | set(now)) - RESUMABLE_DIFFERENCES
  return {k: (saved.get(k), now.get(k)) for k in sorted(keys) if saved.get(k) != now.get(k)}
