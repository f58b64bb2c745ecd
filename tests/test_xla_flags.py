"""Tests for jaxgan.xla_flags: which XLA:CPU flags get added to XLA_FLAGS, and when none are."""

import subprocess
import sys

import jaxlib

from jaxgan.xla_flags import CPU_FLAGS, OPT_OUT_ENV, apply_cpu_defaults

TESTED = '0.10.2'
FLAG = f'--{CPU_FLAGS[0][0]}={CPU_FLAGS[0][1]}'


def test_adds_the_flags_and_keeps_the_users_flags():
  env = {'XLA_FLAGS': '--xla_force_host_platform_device_count=2'}
  assert apply_cpu_defaults(env, jaxlib_version=TESTED) == [FLAG]
  assert env['XLA_FLAGS'] == f'--xla_force_host_platform_device_count=2 {FLAG}'
  assert apply_cpu_defaults(env, jaxlib_version=TESTED) == []  # idempotent
  assert env['XLA_FLAGS'].count(FLAG) == 1


def test_users_own_value_of_the_flag_wins():
  env = {'XLA_FLAGS': f'--{CPU_FLAGS[0][0]}=individual_dot'}
  assert apply_cpu_defaults(env, jaxlib_version=TESTED) == []
  assert env['XLA_FLAGS'] == f'--{CPU_FLAGS[0][0]}=individual_dot'


def test_opt_out_and_untested_jaxlib_leave_xla_flags_alone():
  env = {OPT_OUT_ENV: '0'}
  assert apply_cpu_defaults(env, jaxlib_version=TESTED) == [] and 'XLA_FLAGS' not in env
  env = {}
  # an unknown flag name aborts XLA, so versions the flags were not measured on get none
  assert apply_cpu_defaults(env, jaxlib_version='0.11.0') == [] and 'XLA_FLAGS' not in env


def test_rejects_an_unclear_opt_out_value():
  import pytest
  for value in ('false', 'off', ''):
    with pytest.raises(ValueError, match=f'{OPT_OUT_ENV}=.*set it to 0'):
      apply_cpu_defaults({OPT_OUT_ENV: value}, jaxlib_version=TESTED)
  env = {OPT_OUT_ENV: '1'}
  assert apply_cpu_defaults(env, jaxlib_version=TESTED) == [FLAG]


def test_flags_are_accepted_by_the_installed_xla():
  """XLA aborts on unknown flag names: a fresh process with the flags added must run a convolution."""
  code = ('from jaxgan.xla_flags import apply_cpu_defaults; import os; added = apply_cpu_defaults(); '
          'import jax, jax.numpy as jnp; '
          'y = jax.lax.conv_general_dilated(jnp.ones((1, 8, 8, 2)), jnp.ones((4, 4, 2, 3)), (2, 2), '
          '((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC")); '
          'print(added, float(y.sum()), os.environ["XLA_FLAGS"])')
  out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120,
                       env={'PATH': '/usr/bin:/bin', 'HOME': '/tmp'})
  assert out.returncode == 0, out.stderr[-2000:]
  expected = [FLAG] if jaxlib.__version__.startswith('0.10.') else []
  assert out.stdout.startswith(repr(expected)), out.stdout


def test_too_late_once_the_backends_exist(monkeypatch):
  import os

  import jax
  jax.devices()  # the backends now exist: flags set from here on would be ignored
  monkeypatch.setenv('XLA_FLAGS', '')
  monkeypatch.delenv(OPT_OUT_ENV, raising=False)
  monkeypatch.setattr(jaxlib, '__version__', TESTED)
  assert apply_cpu_defaults() == []
  assert os.environ['XLA_FLAGS'] == ''
