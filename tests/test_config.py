"""Config defaults resolution and validation of every value and combination."""

import dataclasses

import pytest

from jaxgan.config import Config, ConfigError, config_differences


def test_defaults_follow_objective_and_arch():
  toy = Config().resolve()
  assert (toy.arch, toy.dataset, toy.objective, toy.n_critic) == ("mlp", "ring8", "nonsaturating", 1)
  wgan = Config(objective="wgan", arch="dcgan").resolve()
  assert wgan.dataset == "digits" and wgan.resolution == 28
  assert (wgan.optimizer, wgan.n_critic, wgan.clip_value, wgan.beta1) == ("rmsprop", 5, 0.01, 0.0)
  gp = Config(objective="wgan_gp", arch="resnet", dataset="cifar10").resolve()
  assert (gp.gp_weight, gp.beta1, gp.beta2, gp.resolution, gp.ema_decay) == (10.0, 0.0, 0.9, 32, 0.999)
  explicit = Config(objective="wgan", arch="dcgan", n_critic=2, lr_d=1e-3).resolve()
  assert (explicit.n_critic, explicit.lr_d) == (2, 1e-3)
  # G reuses D's fake batch by default only for DCGAN (as dcgan.torch / pytorch/examples do).
  assert (wgan.reuse_fake, toy.reuse_fake, gp.reuse_fake) == (True, False, False)
  assert Config(arch="dcgan", reuse_fake=False).resolve().reuse_fake is False


BAD = [
    (dict(objective="nope"), "valid: .*nonsaturating"),
    (dict(arch="transformer"), "valid: mlp, dcgan, resnet, pix2pix, cyclegan, infogan, stylegan"),
    (dict(arch="mlp", dataset="mnist"), "toy data.*--arch=dcgan"),
    (dict(arch="dcgan", dataset="ring8"), "--arch=mlp"),
    (dict(steps=0), "--steps must be > 0"),
    (dict(batch_size=-4), "--batch_size must be > 0"),
    (dict(lr_g=-1.0), "--lr_g and --lr_d must be > 0"),
    (dict(beta1=1.0), "--beta1 and --beta2"),
    (dict(n_critic=0), "--n_critic must be >= 1"),
    (dict(pack=3, batch_size=64), "divisible by --pack=3"),
    (dict(arch="dcgan", pack=2, conditional=True), "--pack > 1 cannot be combined with --conditional"),
    (dict(conditional=True), "--conditional needs labelled image data"),
    (dict(objective="wgan", label_smoothing=0.1), "--label_smoothing is defined for"),
    (dict(label_smoothing=1.0), r"--label_smoothing must be in \[0, 1\)"),
    (dict(instance_noise=0.1), "--instance_noise_steps > 0"),
    (dict(objective="wgan", clip_value=0.0), "needs --clip_value > 0"),
    (dict(arch="dcgan", resolution=48), "--resolution=48 is not supported by --arch=dcgan"),
    (dict(arch="dcgan", spectral_norm=True), "--spectral_norm is implemented for --arch=resnet"),
    (dict(ema_decay=1.0), "--ema_decay must be in"),
    (dict(arch="pix2pix", reuse_fake=True), "--reuse_fake applies to --arch=mlp/dcgan/resnet"),
    (dict(gp_weight=-1.0), "--gp_weight must be >= 0"),
    (dict(optimizer="lbfgs"), "--optimizer='lbfgs' is unknown"),
    (dict(log_every=-1), "--log_every must be >= 1"),
    (dict(manual_dir="/tmp"), "--manual_dir only applies to image datasets"),
    (dict(precision="float16"), "--precision='float16' is unknown; valid: float32, bfloat16"),
    (dict(precision="bfloat16"), "--precision=bfloat16 is implemented for --arch=dcgan"),
    (dict(num_devices=0), "--num_devices must be >= 1"),
    (dict(batch_size=100, num_devices=8), "--batch_size=100 must be divisible by --num_devices=8"),
    (dict(l1_weight=10.0), "--l1_weight do\\(es\\) not apply to --arch=mlp"),
    (dict(arch="dcgan", truncation_psi=0.5, r1_interval=4),
     "--truncation_psi, --r1_interval do\\(es\\) not apply to --arch=dcgan"),
]


@pytest.mark.parametrize("overrides,message", BAD, ids=[m for _, m in BAD])
def test_bad_values_raise_a_message_naming_the_fix(overrides, message):
  with pytest.raises(ConfigError, match=message):
    Config(**overrides).resolve()


def test_unknown_fields_are_rejected():
  with pytest.raises(ConfigError, match="Unknown config fields"):
    Config.from_dict({"objectiv": "wgan"})


def test_config_differences_ignore_what_a_resume_may_change():
  a = Config(steps=100).resolve()
  b = dataclasses.replace(a, steps=200, workdir="elsewhere", log_every=7)
  assert config_differences(dataclasses.asdict(a), b) == {}
  c = dataclasses.replace(a, lr_g=0.5)
  assert set(config_differences(dataclasses.asdict(a), c)) == {"lr_g"}
