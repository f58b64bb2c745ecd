"""Train a GAN: ``python launch.py --objective=wgan --arch=dcgan``. The only place that reads flags.

Every flag mirrors a field of ``jaxgan.config.Config``; unset flags take the defaults of the chosen
objective/architecture/dataset. Values and combinations are validated while flags are parsed, so a bad
command fails at once with a message naming the fix.
"""

from __future__ import annotations

import dataclasses
import sys

from absl import app, flags

from jaxgan.config import ARCHS, Config, ConfigError
from jaxgan.objectives import OBJECTIVES

_D = Config()  # defaults

# What to train.
flags.DEFINE_enum("objective", None, list(OBJECTIVES), "GAN objective (loss pair). Default: nonsaturating "
                  "(cyclegan: lsgan).")
flags.DEFINE_enum("arch", _D.arch, list(ARCHS), "Architecture: mlp (2-D toy data), dcgan, resnet, "
                  "pix2pix, cyclegan, infogan, stylegan.")
flags.DEFINE_string("dataset", None, "ring8/grid25/grid16 (mlp); digits (embedded, offline), mnist, "
                    "fashion_mnist, cifar10, celeb_a, svhn_cropped or any TFDS image dataset. "
                    "Default: ring8 for mlp, digits for image architectures.")
flags.DEFINE_bool("conditional", _D.conditional, "Class-conditional G and D (image datasets with labels).")
flags.DEFINE_bool("spectral_norm", _D.spectral_norm, "Spectral normalisation in D (resnet).")
flags.DEFINE_integer("latent_dim", None, "Size of z. Default: 2 mlp, 100 dcgan, 128 resnet.")
flags.DEFINE_integer("resolution", None, "Image size (28, 32, 64). Default: the dataset's.")
flags.DEFINE_integer("width", None, "Hidden units (mlp), ngf=ndf (dcgan) or ch (resnet).")
# How long and how.
flags.DEFINE_integer("steps", None, "Generator updates. Default: 10000 toy, 2000 images.")
flags.DEFINE_integer("batch_size", None, "Global batch size. Default: 256 toy, 64 images.")
flags.DEFINE_enum("optimizer", None, ["adam", "rmsprop", "sgd"], "Default: the objective's.")
flags.DEFINE_float("lr_g", None, "Generator learning rate. Default: the objective's.")
flags.DEFINE_float("lr_d", None, "Discriminator learning rate. Default: the objective's.")
flags.DEFINE_float("beta1", None, "Adam beta1. Default: the objective's.")
flags.DEFINE_float("beta2", None, "Adam beta2. Default: the objective's.")
flags.DEFINE_integer("n_critic", None, "D updates per G update. Default: 5 for wgan/wgan_gp, else 1.")
flags.DEFINE_integer("seed", _D.seed, "Seed of everything random (init, latents, data order).")
# Regularizers and tricks.
flags.DEFINE_float("gp_weight", None, "Gradient penalty lambda (WGAN-GP). Default: 10 for wgan_gp, else 0.")
flags.DEFINE_float("r1_gamma", None, "R1 penalty gamma on real data (0 = off). Default: 0; 0.1 for stylegan (lazy).")
flags.DEFINE_float("dragan_weight", _D.dragan_weight, "DRAGAN penalty lambda (0 = off).")
flags.DEFINE_float("clip_value", None, "WGAN weight clipping c. Default: 0.01 for wgan.")
flags.DEFINE_float("instance_noise", _D.instance_noise, "Initial instance-noise std sigma_0 (0 = off).")
flags.DEFINE_integer("instance_noise_steps", _D.instance_noise_steps,
                     "Steps over which instance noise anneals linearly to 0.")
flags.DEFINE_integer("pack", _D.pack, "PacGAN packing degree k (1 = off).")
flags.DEFINE_float("label_smoothing", _D.label_smoothing, "One-sided label smoothing (real target 1-s).")
flags.DEFINE_float("ema_decay", None, "EMA decay of G's weights for evaluation (0 = off). "
                   "Default: 0.999 mlp and resnet, off for dcgan.")
flags.DEFINE_bool("reuse_fake", None, "G's update reuses the last D update's latents and samples through "
                  "one saved G pass, as the original DCGAN and pytorch/examples do (saves a G forward per "
                  "step). Default: on for dcgan, off for mlp/resnet.")
flags.DEFINE_float("margin", None, "EBGAN margin m. Default: 1.")
# Architecture-specific (unset = the architecture's default; an error for architectures that ignore them).
flags.DEFINE_float("l1_weight", None, "pix2pix: weight of the L1 loss to the target. Default: 100.")
flags.DEFINE_float("adv_weight", None, "pix2pix: weight of the adversarial loss; 0 trains the L1-only "
                   "baseline. Default: 1.")
flags.DEFINE_float("cycle_weight", None, "cyclegan: weight of the cycle-consistency losses. Default: 10.")
flags.DEFINE_float("identity_weight", None, "cyclegan: identity loss weight as a fraction of "
                   "--cycle_weight. Default: 0.5.")
flags.DEFINE_integer("pool_size", None, "cyclegan: generated images kept for D updates. Default: 50.")
flags.DEFINE_integer("lr_decay_start", None, "cyclegan: step where learning rates begin to decay linearly "
                     "to 0 at --steps. Default: -1 = steps // 2.")
flags.DEFINE_float("info_weight", None, "infogan: weight of the mutual-information bound. Default: 1.")
flags.DEFINE_integer("num_categories", None, "infogan: values of the categorical code. Default: 10.")
flags.DEFINE_integer("num_continuous", None, "infogan: continuous codes in [-1, 1]. Default: 2.")
flags.DEFINE_float("style_mixing", None, "stylegan: style-mixing probability in training. Default: 0.9.")
flags.DEFINE_float("truncation_psi", None, "stylegan: truncation psi of sample grids and evaluation "
                   "(1 = none). Default: 1.")
flags.DEFINE_integer("r1_interval", None, "stylegan: lazy R1 every this many D steps. Default: 16.")
# Compute.
flags.DEFINE_enum("precision", _D.precision, ["float32", "bfloat16"], "Layer computation dtype "
                  "(params and optimizer states stay float32). bfloat16: dcgan.")
flags.DEFINE_integer("num_devices", None, "Local devices to shard each batch over with pmap "
                     "(default: all). The global --batch_size must be divisible by it.")
flags.DEFINE_integer("steps_per_call", None, "Training steps per jitted dispatch (a lax.scan); must divide "
                     "--log_every, --eval_every and --ckpt_every. Default: 1 on the CPU (faster there), on "
                     "accelerators the largest divisor of those intervals up to 200.")
flags.DEFINE_string("coordinator_address", None, "Multi-host: host:port of process 0; with "
                    "--num_processes and --process_id, calls jax.distributed.initialize. Not needed "
                    "where JAX detects the cluster itself (e.g. SLURM, Cloud TPU): see --distributed.")
flags.DEFINE_integer("num_processes", None, "Multi-host: number of processes.")
flags.DEFINE_integer("process_id", None, "Multi-host: this process's index (0 writes logs and files).")
flags.DEFINE_bool("distributed", False, "Multi-host: call jax.distributed.initialize() and let JAX read "
                  "the cluster from its environment (implied by --coordinator_address).")
# Data.
flags.DEFINE_string("data_dir", None, "TFDS data directory (default: $TFDS_DATA_DIR or ~/tensorflow_datasets).")
flags.DEFINE_string("manual_dir", None, "Raw dataset files to prepare a TFDS dataset offline "
                    "(e.g. the four MNIST .gz files).")
flags.DEFINE_bool("download", _D.download, "Let TFDS download and prepare the dataset (needs internet).")
flags.DEFINE_bool("data_on_device", None, "Hold the whole image dataset on the device and gather batches "
                  "inside the step. Default: when it fits in 2 GiB; false streams batches from the host.")
# Outputs.
flags.DEFINE_string("workdir", _D.workdir, "Where config.json, metrics.jsonl, eval.json, samples/, tb/ "
                    "and checkpoints/ go. An existing run there is resumed.")
flags.DEFINE_integer("log_every", None, "Steps between metric lines. Default: steps/20, at most 500.")
flags.DEFINE_integer("eval_every", None, "Steps between sample plots. Default: steps/10.")
flags.DEFINE_integer("ckpt_every", None, "Steps between checkpoints. Default: steps/4.")
flags.DEFINE_integer("num_eval_samples", None, "Samples for evaluation. Default: 2500 toy, 1000 images.")
flags.DEFINE_string("classifier_dir", None, "A classifier saved by `python -m jaxgan.metrics.classifier` "
                    "for end-of-run classifier FID/KID/precision/recall (and conditional accuracy).")
flags.DEFINE_string("inception_weights", None, "Inception-v3 weights file for Inception FID at the end of "
                    "the run (never downloaded).")
flags.DEFINE_bool("overwrite", _D.overwrite, "Delete an existing run of a different config in --workdir.")
flags.DEFINE_string("sweep", None, "A sweep definition (e.g. experiments/sweeps/toy_lr.py): trains every run "
                    "it defines under --workdir (groups of same-shaped runs as one vmapped program) and "
                    "writes summary.csv/summary.md. Other flags are ignored.")

FLAGS = flags.FLAGS
CONFIG_FLAGS = [f.name for f in dataclasses.fields(Config)]


def config_from_flags(values: dict) -> Config:
  """A resolved Config from flag values (a dict name -> value); raises ConfigError."""
  return Config.from_dict({name: values[name] for name in CONFIG_FLAGS}).resolve()


_CONFIG_ERROR = "invalid configuration: "


def _validate(values: dict) -> bool:
  try:
    config_from_flags(values)
  except ConfigError as e:
    raise flags.ValidationError(_CONFIG_ERROR + str(e)) from None
  return True


def parse_flags(argv: list[str]) -> list[str]:
  """Parses argv; a bad value or combination prints just its message (not every flag's value) and exits 1."""
  try:
    return FLAGS(argv)
  except flags.Error as e:
    message = str(e)
    message = message[message.find(_CONFIG_ERROR):] if _CONFIG_ERROR in message else message
    sys.stderr.write(f"launch.py: {message}\nPass --helpfull to see every flag.\n")
    sys.exit(1)


flags.register_multi_flags_validator(CONFIG_FLAGS, _validate)


def _validate_distributed(values: dict) -> bool:
  """Multi-host flags: a complete, consistent job description (checked before JAX starts)."""
  address, count, index = values["coordinator_address"], values["num_processes"], values["process_id"]
  if (count is not None or index is not None) and not (address or values["distributed"]):
    raise flags.ValidationError(_CONFIG_ERROR + "--num_processes/--process_id need --coordinator_address "
                                "(host:port of process 0), or --distributed on a cluster JAX detects")
  if address and (count is None or index is None):
    raise flags.ValidationError(_CONFIG_ERROR + "--coordinator_address needs --num_processes and --process_id")
  if count is not None and not (count >= 1 and index is not None and 0 <= index < count):
    raise flags.ValidationError(_CONFIG_ERROR + f"--process_id must be in [0, --num_processes={count}) "
                                f"(got {index})")
  return True


flags.register_multi_flags_validator(
    ["coordinator_address", "num_processes", "process_id", "distributed"], _validate_distributed)


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  from jaxgan.xla_flags import apply_cpu_defaults
  try:
    apply_cpu_defaults()  # before the first JAX computation (XLA reads XLA_FLAGS once); opt out: JAXGAN_XLA_CPU_DEFAULTS=0
  except ValueError as e:  # a bad JAXGAN_XLA_CPU_DEFAULTS: its message only, as parse_flags does
    sys.stderr.write(f"launch.py: {e}\n")
    sys.exit(1)
  if FLAGS.coordinator_address or FLAGS.distributed:
    import jax  # before any other JAX call: initialize must run first
    jax.distributed.initialize(coordinator_address=FLAGS.coordinator_address,
                               num_processes=FLAGS.num_processes, process_id=FLAGS.process_id)
  from jaxgan.train import quiet_library_logs, train  # after flag parsing: JAX starts only for valid commands
  quiet_library_logs()
  if FLAGS.sweep:
    from jaxgan.sweep import run_sweep
    run_sweep(FLAGS.sweep, FLAGS.workdir)
    return
  train(config_from_flags({name: getattr(FLAGS, name) for name in CONFIG_FLAGS}))


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
