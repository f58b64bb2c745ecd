"""Flags: bad values fail while parsing, with a message listing valid choices or naming the fix."""

import os
import subprocess
import sys

import pytest
from absl import flags

import launch


@pytest.fixture
def parse():
  def _parse(*args):
    launch.FLAGS.unparse_flags()
    return launch.FLAGS(["launch.py", *args])
  yield _parse
  launch.FLAGS.unparse_flags()


def test_valid_flags_parse_into_a_resolved_config(parse):
  parse("--objective=wgan", "--arch=dcgan", "--steps=10")
  config = launch.config_from_flags({n: getattr(launch.FLAGS, n) for n in launch.CONFIG_FLAGS})
  assert (config.objective, config.arch, config.steps, config.n_critic) == ("wgan", "dcgan", 10, 5)


@pytest.mark.parametrize("args,message", [
    (["--objective=wgan-gp"], "should be one of"),
    (["--arch=vit"], "should be one of"),
    (["--pack=3"], "divisible by --pack=3"),
    (["--arch=dcgan", "--resolution=100"], "not supported by --arch=dcgan"),
    (["--dataset=grid25", "--arch=dcgan"], "--arch=mlp"),
    (["--steps=-5"], "--steps must be > 0"),
    (["--num_processes=2", "--process_id=0"], "need --coordinator_address"),
    (["--coordinator_address=localhost:1234", "--num_processes=2"], "needs --num_processes and --process_id"),
    (["--coordinator_address=localhost:1234", "--num_processes=2", "--process_id=2"],
     r"--process_id must be in \[0, --num_processes=2\)"),
    (["--num_devices=0"], "--num_devices must be >= 1"),
    (["--precision=bfloat16"], "--precision=bfloat16 is implemented for --arch=dcgan"),
])
def test_bad_flags_fail_at_parse_time(parse, args, message):
  with pytest.raises(flags.Error, match=message):
    parse(*args)


def test_command_line_error_is_printed_and_exits_nonzero():
  proc = subprocess.run([sys.executable, "launch.py", "--objective=nope"], capture_output=True, text=True,
                        timeout=120)
  assert proc.returncode != 0
  assert "nonsaturating" in proc.stderr  # lists the valid choices


def test_a_bad_combination_prints_only_its_message():
  proc = subprocess.run([sys.executable, "launch.py", "--pack=3"], capture_output=True, text=True, timeout=120)
  assert proc.returncode == 1
  assert "invalid configuration: --batch_size=256 must be divisible by --pack=3" in proc.stderr
  assert "objective=" not in proc.stderr  # not absl's dump of every flag's value


def test_an_unclear_xla_defaults_switch_prints_only_its_message():
  env = {**os.environ, "JAXGAN_XLA_CPU_DEFAULTS": "off"}
  proc = subprocess.run([sys.executable, "launch.py", "--steps=1"], capture_output=True, text=True, timeout=120,
                        env=env)
  assert proc.returncode == 1
  assert "JAXGAN_XLA_CPU_DEFAULTS='off': set it to 0" in proc.stderr
  assert "Traceback" not in proc.stderr
