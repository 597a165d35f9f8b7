"""Mixed precision: 16-bit compute, float32 parameters and loss, dynamic loss scaling."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxnet as jn

NET = jn.serial(jn.nn.Dense(16), jn.nn.Relu, jn.nn.Dense(3))
IRIS = jn.data.load("iris")
BATCH = (jnp.asarray(IRIS.x_train[:32]), jnp.asarray(IRIS.y_train[:32]))


def _step(precision, optimizer):
    ts = jn.train.TrainState.create(NET, optimizer, (None, 4), key=jax.random.key(0))
    step = jn.train.make_train_step(
        NET, jn.losses.softmax_cross_entropy, optimizer, precision=precision, grad_norm=True
    )
    return ts, jax.jit(step)(ts, BATCH)


@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_16_bit_compute_keeps_float32_params_and_close_loss(precision):
    _, (reference, ref_metrics) = _step("float32", optax.sgd(0.1))
    optimizer = (
        jn.train.dynamic_loss_scale(optax.sgd(0.1)) if precision == "float16" else optax.sgd(0.1)
    )
    _, (new, metrics) = _step(precision, optimizer)
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(new.params))
    assert metrics["loss"].dtype == jnp.float32
    tolerance = 2e-2 if precision == "bfloat16" else 2e-3  # 8 vs 11 mantissa bits
    np.testing.assert_allclose(metrics["loss"], ref_metrics["loss"], rtol=tolerance)
    np.testing.assert_allclose(metrics["grad_norm"], ref_metrics["grad_norm"], rtol=5 * tolerance)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=0.05, atol=5e-3),
        new.params,
        reference.params,
    )


def test_float16_without_loss_scaling_is_refused():
    message = "precision='float16' needs loss scaling: wrap the optimizer with jn.train.dynamic_loss_scale(optimizer)"
    with pytest.raises(ValueError, match=re.escape(message)):
        _step("float16", optax.sgd(0.1))


def test_unknown_precision_is_refused():
    with pytest.raises(
        ValueError,
        match=re.escape("precision must be one of ('float32', 'bfloat16', 'float16'), got 'fp8'"),
    ):
        jn.train.make_train_step(NET, jn.losses.mse, optax.sgd(0.1), precision="fp8")


def test_dynamic_loss_scale_unscales_skips_and_grows():
    opt = jn.train.dynamic_loss_scale(optax.sgd(1.0), initial_scale=8.0, growth_interval=2)
    params = {"w": jnp.ones(2)}
    state = opt.init(params)
    updates, state = opt.update({"w": jnp.array([8.0, 16.0])}, state, params)
    np.testing.assert_array_equal(updates["w"], [-1.0, -2.0])  # grads / 8, then sgd(1.0)
    assert float(state.scale) == 8.0 and int(state.good_steps) == 1
    updates, state = opt.update({"w": jnp.array([8.0, 8.0])}, state, params)
    assert float(state.scale) == 16.0 and int(state.good_steps) == 0  # two good steps: grow
    updates, state = opt.update({"w": jnp.array([jnp.inf, 1.0])}, state, params)
    np.testing.assert_array_equal(updates["w"], [0.0, 0.0])  # overflow: skipped
    assert float(state.scale) == 8.0 and int(state.good_steps) == 0


def test_dynamic_loss_scale_keeps_the_inner_state_on_overflow():
    opt = jn.train.dynamic_loss_scale(optax.adam(0.1), initial_scale=2.0)
    params = {"w": jnp.ones(2)}
    state = opt.init(params)
    _, after = opt.update({"w": jnp.array([jnp.nan, 1.0])}, state, params)
    jax.tree.map(np.testing.assert_array_equal, after.inner, state.inner)


@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_fit_with_mixed_precision_learns(precision):
    result = jn.train.fit(
        NET,
        IRIS,
        optimizer=optax.adam(0.01),
        loss=jn.losses.softmax_cross_entropy,
        metrics={"accuracy": jn.metrics.accuracy},
        epochs=30,
        batch_size=16,
        precision=precision,
        progress=False,
    )
    assert result.history[-1]["test_accuracy"] >= 0.9
    is_scaled = isinstance(result.train_state.opt_state, jn.train.LossScaleState)
    assert is_scaled == (precision == "float16")
