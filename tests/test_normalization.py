"""Tests for jaxgan.models.normalization (ConditionalBatchNorm, spectral_norm helper)."""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan.models.normalization import ConditionalBatchNorm, SpectralNorm, spectral_norm

NUM_CLASSES = 4
X_SHAPE = (6, 3, 3, 5)  # [B, H, W, C]


def _x(seed: int = 0) -> jax.Array:
    return 2.0 + 3.0 * jax.random.normal(jax.random.key(seed), X_SHAPE)


def _apply(module: nn.Module, variables, *args, train: bool):
    """Jitted apply that always returns (out, batch_stats)."""
    fn = jax.jit(
        lambda v, *a: module.apply(v, *a, train=train, mutable=["batch_stats"])
    )
    out, upd = fn(variables, *args)
    return out, upd["batch_stats"]


class PlainBN(nn.Module):
    """Reference: flax BatchNorm without affine parameters, same momentum/epsilon."""

    @nn.compact
    def __call__(self, x, *, train: bool):
        return nn.BatchNorm(
            use_running_average=not train, momentum=0.9, epsilon=1e-5, use_scale=False, use_bias=False
        )(x)


def _init_cbn(labels: jax.Array):
    cbn = ConditionalBatchNorm(NUM_CLASSES)
    variables = jax.jit(functools.partial(cbn.init, train=False))(jax.random.key(0), _x(), labels)
    return cbn, variables


def test_cbn_variables_layout_and_init():
    labels = jnp.array([0, 1, 2, 3, 0, 1], jnp.int32)
    _, v = _init_cbn(labels)
    c = X_SHAPE[-1]
    np.testing.assert_array_equal(v["params"]["scale"]["embedding"], np.ones((NUM_CLASSES, c)))
    np.testing.assert_array_equal(v["params"]["bias"]["embedding"], np.zeros((NUM_CLASSES, c)))
    assert set(v["batch_stats"]["bn"]) == {"mean", "var"}
    assert set(v) == {"params", "batch_stats"}


@pytest.mark.parametrize("train", [True, False])
def test_cbn_at_init_equals_plain_bn_without_affine(train: bool):
    labels = jnp.array([0, 1, 2, 3, 0, 1], jnp.int32)
    cbn, v = _init_cbn(labels)
    ref = PlainBN()
    rv = ref.init(jax.random.key(0), _x(), train=False)
    if not train:  # make running stats non-trivial so eval mode is actually tested
        stats = {"mean": jnp.arange(5.0), "var": jnp.linspace(0.5, 3.0, 5)}
        v = {"params": v["params"], "batch_stats": {"bn": stats}}
        rv = {"batch_stats": {"BatchNorm_0": stats}}
    out, stats = _apply(cbn, v, _x(1), labels, train=train)
    ref_out, ref_stats = _apply(ref, rv, _x(1), train=train)
    np.testing.assert_allclose(out, ref_out, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(stats["bn"]["mean"], ref_stats["BatchNorm_0"]["mean"], rtol=1e-6)
    np.testing.assert_allclose(stats["bn"]["var"], ref_stats["BatchNorm_0"]["var"], rtol=1e-6)
    if train:  # normalised per channel over B, H, W
        np.testing.assert_allclose(out.mean(axis=(0, 1, 2)), 0.0, atol=1e-5)
        np.testing.assert_allclose(out.std(axis=(0, 1, 2)), 1.0, rtol=1e-3)


def test_cbn_applies_per_class_scale_and_bias():
    labels = jnp.array([0, 1, 2, 3, 0, 1], jnp.int32)
    cbn, v = _init_cbn(labels)
    k1, k2 = jax.random.split(jax.random.key(3))
    gamma = 1.0 + jax.random.normal(k1, (NUM_CLASSES, X_SHAPE[-1]))
    beta = jax.random.normal(k2, (NUM_CLASSES, X_SHAPE[-1]))
    v = {"params": {"scale": {"embedding": gamma}, "bias": {"embedding": beta}},
         "batch_stats": v["batch_stats"]}
    out, _ = _apply(cbn, v, _x(1), labels, train=True)
    normed, _ = _apply(PlainBN(), {"batch_stats": {"BatchNorm_0": v["batch_stats"]["bn"]}}, _x(1), train=True)
    expected = normed * gamma[labels][:, None, None, :] + beta[labels][:, None, None, :]
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)

    # Same input batch, different labels -> different outputs (only where labels differ).
    other = (labels + 1) % NUM_CLASSES
    out2, _ = _apply(cbn, v, _x(1), other, train=True)
    diff = np.abs(np.asarray(out - out2)).max(axis=(1, 2, 3))
    assert np.all(diff > 1e-2), diff


# ----------------------------------------------------------------------------- spectral_norm


class SNDense(nn.Module):
    enabled: bool
    n_steps: int = 1

    @nn.compact
    def __call__(self, x, *, train: bool):
        layer = nn.Dense(7, name="fc")
        return spectral_norm(layer, enabled=self.enabled, train=train, n_steps=self.n_steps)(x)


class FlaxSNDense(nn.Module):
    """Same layout as SNDense(enabled=True) but with stock flax.linen.SpectralNorm."""

    @nn.compact
    def __call__(self, x, *, train: bool):
        return nn.SpectralNorm(nn.Dense(7, name="fc"), name="fc_sn")(x, update_stats=train)


X_SN = jax.random.normal(jax.random.key(5), (4, 9))


def test_spectral_norm_disabled_is_plain_layer():
    m = SNDense(enabled=False)
    v = m.init(jax.random.key(0), X_SN, train=False)
    assert set(v) == {"params"}
    out = jax.jit(functools.partial(m.apply, train=True))(v, X_SN)
    p = v["params"]["fc"]
    np.testing.assert_allclose(out, X_SN @ p["kernel"] + p["bias"], rtol=1e-5, atol=1e-5)


def test_spectral_norm_converges_and_uses_normalised_kernel():
    m = SNDense(enabled=True)
    v = m.init(jax.random.key(0), X_SN, train=False)
    assert set(v["batch_stats"]["fc_sn"]) == {"fc/kernel/u", "fc/kernel/sigma"}
    kernel = np.asarray(v["params"]["fc"]["kernel"])
    sigma_max = np.linalg.svd(kernel, compute_uv=False)[0]

    @jax.jit
    def power_iterate(bs):
        def body(_, bs):
            _, upd = m.apply({"params": v["params"], "batch_stats": bs}, X_SN, train=True,
                             mutable=["batch_stats"])
            return upd["batch_stats"]
        return jax.lax.fori_loop(0, 200, body, bs)

    bs = power_iterate(v["batch_stats"])
    # 9x7 Gaussian-like kernel: 200 iterations shrink the error by (s2/s1)^400, far below float32 eps.
    np.testing.assert_allclose(bs["fc_sn"]["fc/kernel/sigma"], sigma_max, rtol=1e-4)
    # Eval output uses W / sigma_max(W); bias is not normalised.
    out = jax.jit(functools.partial(m.apply, train=False))({"params": v["params"], "batch_stats": bs}, X_SN)
    expected = X_SN @ (kernel / sigma_max) + v["params"]["fc"]["bias"]
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)
    # Sanity: the normalised output is not the raw one (sigma_max is far from 1).
    assert abs(sigma_max - 1.0) > 0.1


def test_spectral_norm_updates_u_only_in_train_mode():
    m = SNDense(enabled=True)
    v = m.init(jax.random.key(0), X_SN, train=False)
    _, bs_eval = _apply(m, v, X_SN, train=False)
    same = jax.tree_util.tree_map(np.array_equal, bs_eval, v["batch_stats"])
    assert all(jax.tree_util.tree_leaves(same))
    _, bs_train = _apply(m, v, X_SN, train=True)
    assert not np.allclose(bs_train["fc_sn"]["fc/kernel/u"], v["batch_stats"]["fc_sn"]["fc/kernel/u"])


def test_spectral_norm_init_keeps_raw_weights_and_flax_apply():
    """Our SpectralNorm stores the initialiser's raw W (stock flax 0.12.8 stores W / sigma_hat) but
    has the same variable layout, the same u init and the same apply as flax's."""
    key = jax.random.key(0)
    ours = SNDense(enabled=True).init(key, X_SN, train=False)
    plain = SNDense(enabled=False).init(key, X_SN, train=False)
    flax_v = FlaxSNDense().init(key, X_SN, train=False)
    np.testing.assert_array_equal(ours["params"]["fc"]["kernel"], plain["params"]["fc"]["kernel"])
    assert not np.allclose(flax_v["params"]["fc"]["kernel"], plain["params"]["fc"]["kernel"])
    assert jax.tree_util.tree_structure(ours) == jax.tree_util.tree_structure(flax_v)
    np.testing.assert_array_equal(ours["batch_stats"]["fc_sn"]["fc/kernel/u"],
                                  flax_v["batch_stats"]["fc_sn"]["fc/kernel/u"])
    for train in (True, False):
        out, bs = _apply(SNDense(enabled=True), ours, X_SN, train=train)
        ref, ref_bs = _apply(FlaxSNDense(), ours, X_SN, train=train)
        np.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-6)
        jax.tree_util.tree_map(np.testing.assert_array_equal, bs, ref_bs)
