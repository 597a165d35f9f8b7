"""MultiHeadAttention: the layer contract, causality, padding, PyTorch's layout, errors."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnet as jn
from jaxnet.nn.attention import MultiHeadAttention
from tests import contract
from tests import references_recurrent as ref
from tests.contract import Case

SHAPE = (2, 5, 4)  # (batch, time, features)


def exact(message: str) -> str:
    """A pattern that matches ``message`` and nothing more."""
    return f"(?m)^{re.escape(message)}$"  # (?m): JAX may append a note after a newline


CASES = [
    Case("mha", MultiHeadAttention(2), SHAPE, lambda p, x: ref.attention(p, x, num_heads=2)),
    Case(
        "mha_causal",
        MultiHeadAttention(2, causal=True),
        SHAPE,
        lambda p, x: ref.attention(p, x, num_heads=2, causal=True),
    ),
    Case(
        "mha_widths_no_bias",
        MultiHeadAttention(3, head_features=2, out_features=3, use_bias=False),
        SHAPE,
        lambda p, x: ref.attention(p, x, num_heads=3),
    ),
]


# Second-order finite differences cost XLA about 10 s of compilation per case on CPU, whatever the
# sizes. The causal case exercises every operation of the others (plus the mask), so it alone runs
# them; the others pass every other check, grad included.
FINITE_DIFFERENCE_CASES = ("mha_causal",)
CONTRACT = [
    pytest.param(case, check, id=f"{case.id}-{check_id}")
    for case in CASES
    for check, check_id in zip(contract.CHECKS, contract.CHECK_IDS, strict=True)
    if check is not contract.check_finite_differences or case.id in FINITE_DIFFERENCE_CASES
]


@pytest.mark.parametrize(("case", "check"), CONTRACT)
def test_contract(case, check, key):
    check(case, key)


def test_param_layout(key):
    out_shape, params, state = MultiHeadAttention(3, head_features=2, out_features=5).init(
        key, (None, 7, 4)
    )
    assert out_shape == (None, 7, 5)
    assert state == {}
    projection = {"w": (4, 3, 2), "b": (3, 2)}
    assert jax.tree.map(jnp.shape, params) == {
        "query": projection,
        "key": projection,
        "value": projection,
        "out": {"w": (3, 2, 5), "b": (5,)},
    }


def test_projections_start_with_variance_one_over_fan_in(key):
    _, params, _ = MultiHeadAttention(4, head_features=64, out_features=64).init(key, (1, 1, 256))
    np.testing.assert_allclose(np.var(params["query"]["w"]), 1 / 256, rtol=0.1)
    np.testing.assert_allclose(np.var(params["out"]["w"]), 1 / (4 * 64), rtol=0.1)
    assert not np.allclose(params["query"]["w"], params["key"]["w"])


@pytest.mark.parametrize("causal", [True, False])
def test_causal_output_does_not_depend_on_later_inputs(causal, key):
    layer = MultiHeadAttention(2, causal=causal)
    _, params, state = layer.init(key, SHAPE)
    x = jax.random.normal(jax.random.key(1), SHAPE)
    jacobian = jax.jacobian(lambda x: layer.apply(params, state, x)[0])(x)  # (B, T, D, B, T, D)
    per_step = np.abs(np.asarray(jacobian[0, :, :, 0, :, :])).sum(axis=(1, 3))  # (t_out, t_in)
    later = np.triu(np.ones((5, 5), bool), k=1)  # t_in > t_out
    if causal:
        np.testing.assert_array_equal(per_step[later], 0.0)
    else:
        assert np.all(per_step[later] > 0)
    assert np.all(per_step[~later] > 0)


def test_padding_mask_matches_reference_and_ignores_padded_inputs(key):
    layer = MultiHeadAttention(2, causal=True)
    _, params, state = layer.init(key, SHAPE)
    x = jax.random.normal(jax.random.key(1), SHAPE)
    mask = np.array([[True, True, True, False, False], [False, True, True, True, True]])
    y, _ = jax.jit(layer.apply)(params, state, (x, jnp.asarray(mask)))
    expected = ref.attention(params, x, num_heads=2, causal=True, mask=mask)
    np.testing.assert_allclose(y, expected, rtol=2e-5, atol=2e-6)
    np.testing.assert_array_equal(y[0, 3:], 0.0)
    noisy = jnp.where(jnp.asarray(mask)[:, :, None], x, 100.0)  # change only padded positions
    np.testing.assert_array_equal(layer.apply(params, state, (noisy, jnp.asarray(mask)))[0], y)


def test_weights_in_pytorch_layout_load_with_the_documented_reshape(key):
    rng = np.random.default_rng(0)
    embed, heads = 4, 2
    in_proj_weight = rng.normal(size=(3 * embed, embed)) / 2
    in_proj_bias = rng.normal(size=3 * embed)
    out_weight = rng.normal(size=(embed, embed)) / 2
    out_bias = rng.normal(size=embed)
    loaded = {"out": {"w": out_weight.T.reshape(heads, -1, embed), "b": out_bias}}
    for j, name in enumerate(("query", "key", "value")):
        rows = slice(j * embed, (j + 1) * embed)
        loaded[name] = {
            "w": in_proj_weight[rows].T.reshape(embed, heads, -1),
            "b": in_proj_bias[rows].reshape(heads, -1),
        }
    x = rng.normal(size=(2, 5, embed))
    for causal in (False, True):
        layer = MultiHeadAttention(heads, causal=causal)
        _, params, state = layer.init(key, x.shape)
        assert jax.tree.map(jnp.shape, loaded) == jax.tree.map(jnp.shape, params)
        y, _ = layer.apply(jax.tree.map(jnp.float32, loaded), state, jnp.float32(x))
        expected = ref.torch_multihead_attention(
            in_proj_weight, in_proj_bias, out_weight, out_bias, x, heads, causal=causal
        )
        np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)


def test_residual_transformer_block(key):
    block = jn.residual(jn.serial(MultiHeadAttention(2, causal=True), jn.nn.Dense(4)))
    out_shape, params, _ = block.init(key, SHAPE)
    assert out_shape == SHAPE
    assert sorted(params["serial_0"]) == ["dense_0", "multi_head_attention_0"]


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (
            lambda: MultiHeadAttention(0),
            ValueError,
            "multi_head_attention: num_heads must be a positive int, got 0",
        ),
        (
            lambda: MultiHeadAttention(2, head_features=-1),
            ValueError,
            "multi_head_attention: head_features must be a positive int, got -1",
        ),
        (
            lambda: MultiHeadAttention(2, out_features=2.5),
            TypeError,
            "multi_head_attention: out_features must be a positive int, got float 2.5",
        ),
        (
            lambda: MultiHeadAttention(2, causal=1),
            TypeError,
            "multi_head_attention: causal must be a bool, got int 1",
        ),
        (
            lambda: MultiHeadAttention(2, use_bias="no"),
            TypeError,
            "multi_head_attention: use_bias must be a bool, got str 'no'",
        ),
    ],
)
def test_constructor_errors(build, error, message):
    with pytest.raises(error, match=exact(message)):
        build()


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        (
            (2, 4),
            "multi_head_attention: expected input (batch, time, features) with known features, got (2, 4)",
        ),
        (
            (2, 5, None),
            "multi_head_attention: expected input (batch, time, features) with known features, got (2, 5, None)",
        ),
        (
            (2, 5, 6),
            "multi_head_attention: input features must be divisible by num_heads=4 (or pass head_features), got (2, 5, 6)",
        ),
    ],
)
def test_init_shape_errors(shape, message, key):
    with pytest.raises(jn.ShapeError, match=exact(message)):
        MultiHeadAttention(4).init(key, shape)


def test_head_features_lifts_the_divisibility_requirement(key):
    assert jn.output_shape(MultiHeadAttention(4, head_features=3), (2, 5, 6)) == (2, 5, 6)


def test_init_error_carries_the_path(key):
    with pytest.raises(
        jn.ShapeError,
        match=exact(
            "serial/multi_head_attention_0: expected input (batch, time, features) with known features, got (2, 3)"
        ),
    ):
        jn.serial(jn.nn.Dense(3), MultiHeadAttention(1)).init(key, (2, 3))


@pytest.mark.parametrize(
    ("x", "message"),
    [
        (jnp.ones((2, 4)), "multi_head_attention: expected input (batch, time, 4), got (2, 4)"),
        (
            jnp.ones((2, 5, 3)),
            "multi_head_attention: expected input (batch, time, 4), got (2, 5, 3)",
        ),
        (
            (jnp.ones((2, 5, 4)), jnp.ones((2, 4), bool)),
            "multi_head_attention: expected mask (2, 5) (the input's batch and time axes), got (2, 4)",
        ),
    ],
)
def test_apply_shape_errors(x, message, key):
    layer = MultiHeadAttention(2)
    _, params, state = layer.init(key, SHAPE)
    with pytest.raises(jn.ShapeError, match=exact(message)):
        jax.jit(layer.apply)(params, state, x)


@pytest.mark.parametrize(
    ("x", "message"),
    [
        (
            (jnp.ones(SHAPE), jnp.ones((2, 5), jnp.int32)),
            "multi_head_attention: mask must be a bool array (True = real step), got int32",
        ),
        (
            (jnp.ones(SHAPE),),
            "multi_head_attention: input must be an array x or a pair (x, mask), got a tuple of 1",
        ),
    ],
)
def test_apply_type_errors(x, message, key):
    layer = MultiHeadAttention(2)
    _, params, state = layer.init(key, SHAPE)
    with pytest.raises(TypeError, match=exact(message)):
        layer.apply(params, state, x)


def test_float64_path_agrees_with_jax_dot_product_attention(key):
    """float64 inputs take a written-out softmax (jax.nn's is always float32): same values."""
    layer = MultiHeadAttention(2, causal=True)
    _, params, state = layer.init(key, SHAPE)
    x = jax.random.normal(jax.random.key(1), SHAPE)
    mask = jnp.array([[True, True, True, False, False], [False, True, True, True, True]])

    def loss(params, x):
        return jnp.sum(jnp.sin(layer.apply(params, state, (x, mask))[0]))

    value32, grads32 = jax.value_and_grad(loss, argnums=(0, 1))(params, x)
    with jax.enable_x64(True):
        params64, x64 = jax.tree.map(lambda a: a.astype(jnp.float64), (params, x))
        value64, grads64 = jax.value_and_grad(loss, argnums=(0, 1))(params64, x64)
        assert value64.dtype == jnp.float64
    np.testing.assert_allclose(value32, value64, rtol=1e-5)
    for g32, g64 in zip(jax.tree.leaves(grads32), jax.tree.leaves(grads64), strict=True):
        np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=1e-5)
