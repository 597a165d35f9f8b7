"""The lecture's activation table: values, derivatives by the lecture's formulas, and ranges;
SELU's constants and exact GELU (their contract runs in test_layer_contract.py, from
tests/references.py's ACTIVATIONS)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnet as jn
from tests import references as ref

GRID = jnp.linspace(-6.0, 6.0, 241)


def _elementwise_grad(layer: jn.Layer, a: jax.Array) -> jax.Array:
    return jax.vmap(jax.grad(lambda v: layer.apply({}, {}, v)[0]))(a)


def test_softmax_lecture_example():
    a = jnp.array([-0.21, 0.47, 1.72])
    y, _ = jn.nn.Softmax.apply({}, {}, a)
    assert [round(float(p), 1) for p in y] == [0.1, 0.2, 0.7]
    np.testing.assert_allclose(y.sum(), 1.0, rtol=1e-6)


def test_softmax_stays_finite_for_huge_logits():
    a = jnp.array([[-1000.0, 0.0, 1000.0], [1000.0, 1000.0, -1000.0]])
    y, _ = jn.nn.Softmax.apply({}, {}, a)
    assert bool(jnp.all(jnp.isfinite(y)))
    np.testing.assert_allclose(y, [[0.0, 0.0, 1.0], [0.5, 0.5, 0.0]], atol=1e-7)
    log_y, _ = jn.nn.LogSoftmax.apply({}, {}, a)
    assert bool(jnp.all(jnp.isfinite(log_y)))


def test_sigmoid_derivative_is_sigma_times_one_minus_sigma():
    s = jax.nn.sigmoid(GRID)
    np.testing.assert_allclose(_elementwise_grad(jn.nn.Sigmoid, GRID), s * (1 - s), atol=1e-7)


def test_tanh_derivative_is_four_over_cosh_form():
    expected = 4.0 / (jnp.exp(GRID) + jnp.exp(-GRID)) ** 2
    np.testing.assert_allclose(_elementwise_grad(jn.nn.Tanh, GRID), expected, atol=1e-6)


def test_relu_derivative_is_the_step():
    a = GRID[GRID != 0.0]
    np.testing.assert_array_equal(_elementwise_grad(jn.nn.Relu, a), (a > 0).astype(jnp.float32))


def test_softmax_jacobian_is_sigma_i_times_delta_minus_sigma_j():
    a = jnp.array([-0.21, 0.47, 1.72, -2.0])
    s = jax.nn.softmax(a)
    jacobian = jax.jacobian(lambda v: jn.nn.Softmax.apply({}, {}, v)[0])(a)
    expected = s[:, None] * (jnp.eye(4) - s[None, :])
    np.testing.assert_allclose(jacobian, expected, atol=1e-7)


@pytest.mark.parametrize(
    ("layer", "low", "high"),
    [
        (jn.nn.Sigmoid, 0.0, 1.0),
        (jn.nn.Tanh, -1.0, 1.0),
        (jn.nn.Relu, 0.0, np.inf),
        (jn.nn.Softmax, 0.0, 1.0),
        (jn.nn.Softplus, 0.0, np.inf),
        (jn.nn.Elu, -1.0, np.inf),
        (jn.nn.Selu, -ref.SELU_SCALE * ref.SELU_ALPHA, np.inf),
    ],
    ids=["sigmoid", "tanh", "relu", "softmax", "softplus", "elu", "selu"],
)
def test_outputs_stay_in_the_stated_range(layer, low, high):
    a = jnp.linspace(-8.0, 8.0, 161).reshape(7, 23)
    y, _ = layer.apply({}, {}, a)
    assert float(y.min()) >= low
    assert float(y.max()) <= high
    if layer is jn.nn.Relu:
        assert float(y.min()) == 0.0  # ReLU reaches its bound; the others approach theirs


def test_softmax_rows_sum_to_one():
    a = jax.random.normal(jax.random.key(0), (5, 7)) * 10
    np.testing.assert_allclose(jn.nn.Softmax.apply({}, {}, a)[0].sum(-1), np.ones(5), rtol=1e-6)


def test_activation_wraps_any_function_and_names_it():
    layer = jn.nn.Activation(jax.nn.silu)
    assert layer.name == "silu"
    net = jn.serial(jn.nn.Dense(2), layer)
    assert net.init(jax.random.key(0), (1, 3))[0] == (1, 2)
    assert jn.nn.Activation(jnp.abs, name="absolute").name == "absolute"


def test_activation_rejects_non_callable():
    with pytest.raises(TypeError, match="activation: fn must be callable, got int"):
        jn.nn.Activation(3)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- SELU, exact GELU


def test_selu_uses_the_papers_constants():
    y, _ = jn.nn.Selu.apply({}, {}, jnp.array([1.0, 0.0, -30.0]))
    np.testing.assert_allclose(
        y, [1.0507009873554805, 0.0, -1.0507009873554805 * 1.6732632423543772], rtol=1e-7
    )
    assert jn.nn.Selu.name == "selu"


def test_selu_maps_a_standard_normal_to_mean_zero_and_variance_one():
    """The fixed point the constants were chosen for: E[selu(z)] = 0, E[selu(z)²] = 1 for
    z ~ N(0, 1), by the trapezoidal rule on [-10, 10]."""
    z = np.linspace(-10.0, 10.0, 20001)
    density = np.exp(-(z**2) / 2) / math.sqrt(2 * math.pi)
    with jax.enable_x64(True):
        y = np.asarray(jn.nn.Selu.apply({}, {}, jnp.asarray(z))[0])
    assert abs(np.trapezoid(y * density, z)) < 1e-6
    assert abs(np.trapezoid(y**2 * density, z) - 1.0) < 1e-6


def test_gelu_exact_is_x_times_the_normal_cdf_and_gelu_stays_the_tanh_form():
    exact, _ = jn.nn.GeluExact.apply({}, {}, GRID)
    approximate, _ = jn.nn.Gelu.apply({}, {}, GRID)
    np.testing.assert_allclose(exact, ref.gelu_exact(GRID), rtol=1e-6, atol=1e-7)
    # In float32 the tanh form saturates to -0.0 below a ≈ -5.4, where a·Φ(a) is about -1e-7.
    np.testing.assert_allclose(approximate, ref.gelu_tanh(GRID), rtol=1e-6, atol=1e-6)
    gap = float(jnp.max(jnp.abs(exact - approximate)))
    assert 4e-4 < gap < 5e-4  # the documented bound; the two really differ
    assert jn.nn.GeluExact.name == "gelu_exact" and jn.nn.Gelu.name == "gelu"


def test_gelu_exact_derivative_is_cdf_plus_x_times_density():
    a = np.asarray(GRID, np.float64)
    cdf = np.array([0.5 * (1 + math.erf(v / math.sqrt(2))) for v in a])
    density = np.exp(-(a**2) / 2) / math.sqrt(2 * math.pi)
    np.testing.assert_allclose(
        _elementwise_grad(jn.nn.GeluExact, GRID), cdf + a * density, atol=1e-6
    )
