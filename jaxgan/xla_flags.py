"""XLA:CPU flags that jaxgan's CPU speed depends on, added to ``XLA_FLAGS`` before JAX starts its backends.

jax 0.10.2's XLA:CPU hands convolutions to YNNPACK by default, and YNNPACK's strided-convolution weight
gradient and its stride-1 2x2 convolutions are 2-3x slower than XLA's Eigen convolutions on the CPUs
measured here (``bench/RESULTS.md``, "Where the time went"): with the flag below one DCGAN training
iteration at 64x64 batch 64 took 0.83x PyTorch's time, without it 1.11x (each timed alternately with
PyTorch in its own process, since the flag is per process).
YNNPACK still runs the matrix multiplications (the flag only removes ``individual_convolution`` from its
fusion list).

XLA reads ``XLA_FLAGS`` once, when the first JAX computation creates the backends, and aborts the process
on a flag name it does not know, so :func:`apply_cpu_defaults`

* adds the flags only on the jaxlib versions they were measured on (``TESTED_JAXLIB``),
* leaves a flag alone if ``XLA_FLAGS`` already sets it (the user's choice wins),
* does nothing when ``JAXGAN_XLA_CPU_DEFAULTS=0`` (opt out; any value but 0 or 1 is a ValueError), or when
  the backends already exist (then it is too late: it says so and returns nothing).

``launch.py`` and the benchmarks call it first thing; code that imports jaxgan's step functions calls it
before its first JAX computation to get the same speed (nothing changes numerically beyond float
rounding: the same convolutions are computed by another kernel library).
"""

from __future__ import annotations

import logging
import os
from collections.abc import MutableMapping

# (flag name, value) pairs; only flags that exist in every TESTED_JAXLIB version.
CPU_FLAGS: tuple[tuple[str, str], ...] = (
    ('xla_cpu_experimental_ynn_fusion_type', '-individual_convolution'),
)
TESTED_JAXLIB = ('0.10.',)  # version prefixes on which CPU_FLAGS were measured (bench/RESULTS.md)
OPT_OUT_ENV = 'JAXGAN_XLA_CPU_DEFAULTS'


def _jaxlib_version() -> str:
  import jaxlib  # noqa: PLC0415 - only the version string; starts no backend

  return jaxlib.__version__


def _backends_initialized() -> bool:
  try:
    from jax._src import xla_bridge  # noqa: PLC0415
  except ImportError:  # pragma: no cover - layout of a future jax
    return False
  return bool(getattr(xla_bridge, 'backends_are_initialized', lambda: False)())


def apply_cpu_defaults(environ: MutableMapping[str, str] | None = None, *,
                       jaxlib_version: str | None = None) -> list[str]:
  """Append the missing ``CPU_FLAGS`` to ``environ['XLA_FLAGS']``; returns the flags it added.

  ``environ`` defaults to ``os.environ`` and ``jaxlib_version`` to the installed one (both injectable
  for tests). Call it before the first JAX computation of the process.
  """
  environ = os.environ if environ is None else environ
  switch = environ.get(OPT_OUT_ENV, '1')
  if switch not in ('0', '1'):
    raise ValueError(f'{OPT_OUT_ENV}={switch!r}: set it to 0 (leave XLA_FLAGS alone) or 1 (the default)')
  if switch == '0':
    return []
  version = _jaxlib_version() if jaxlib_version is None else jaxlib_version
  if not version.startswith(TESTED_JAXLIB):
    logging.info('jaxgan: jaxlib %s is not one of %s; XLA_FLAGS left as they are', version, TESTED_JAXLIB)
    return []
  current = environ.get('XLA_FLAGS', '')
  added = [f'--{name}={value}' for name, value in CPU_FLAGS if f'--{name}=' not in current]
  if not added:
    return []
  if environ is os.environ and _backends_initialized():
    logging.warning('jaxgan: JAX backends already exist, so XLA_FLAGS %s cannot take effect; call '
                    'jaxgan.xla_flags.apply_cpu_defaults() before the first JAX computation', added)
    return []
  environ['XLA_FLAGS'] = ' '.join([current, *added]).strip()
  return added
