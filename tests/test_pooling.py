"""MaxPool, AvgPool, SumPool and GlobalAvgPool: the layer contract, padding rules, and every error message."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnet as jn
from jaxnet.nn.pooling import AvgPool, GlobalAvgPool, MaxPool, SumPool
from tests import contract
from tests import references_conv as ref_conv
from tests.contract import Case


def _max(window, **settings):
    return lambda p, x: ref_conv.max_pool(x, window, **settings)


def _avg(window, **settings):
    return lambda p, x: ref_conv.avg_pool(x, window, **settings)


def _sum(window, **settings):
    return lambda p, x: ref_conv.sum_pool(x, window, **settings)


def _global(p, x):
    return ref_conv.global_avg_pool(x)


def _normal(key, shape):
    """Standard normal inputs from NumPy: no PRNG program to compile for each new shape."""
    return jnp.asarray(np.random.default_rng(1).normal(size=shape), jnp.float32)


def _case(name, layer, input_shape, reference):
    return Case(name, layer, input_shape, reference, make_input=_normal)


# The full contract (with its slow second-order finite differences) runs on a core set of
# settings; more settings are checked against the reference only.
CASES = [
    _case("max_pool1d", MaxPool((2,)), (2, 7, 2), _max((2,))),
    _case(
        "max_pool2d_same_overlapping",
        MaxPool((3, 3), strides=2, padding="SAME"),
        (2, 5, 5, 2),
        _max((3, 3), strides=2, padding="SAME"),
    ),
    _case(
        "avg_pool2d_same",
        AvgPool((2, 2), padding="SAME"),
        (2, 5, 5, 2),
        _avg((2, 2), padding="SAME"),
    ),
    _case(
        "avg_pool1d_explicit_padding_strides",
        AvgPool((3,), strides=2, padding=((2, 1),)),
        (2, 6, 2),
        _avg((3,), strides=2, padding=((2, 1),)),
    ),
    _case(
        "sum_pool2d_same_overlapping",
        SumPool((2, 2), strides=1, padding="SAME"),
        (2, 4, 4, 2),
        _sum((2, 2), strides=1, padding="SAME"),
    ),
    _case("global_avg_pool2d", GlobalAvgPool, (2, 3, 4, 2), _global),
]

REFERENCE_CASES = [
    _case("max_pool2d", MaxPool((2, 2)), (2, 5, 5, 2), _max((2, 2))),
    _case(
        "max_pool1d_int_padding_stride1",
        MaxPool((3,), strides=1, padding=1),
        (2, 5, 2),
        _max((3,), strides=1, padding=1),
    ),
    _case("max_pool3d", MaxPool((2, 2, 2)), (2, 3, 3, 3, 1), _max((2, 2, 2))),
    _case("avg_pool1d", AvgPool((3,)), (2, 7, 2), _avg((3,))),
    _case("avg_pool2d", AvgPool((2, 2)), (2, 4, 4, 3), _avg((2, 2))),
    _case(
        "avg_pool2d_uneven_window_and_strides_same",
        AvgPool((2, 3), strides=(1, 2), padding="SAME"),
        (2, 4, 5, 1),
        _avg((2, 3), strides=(1, 2), padding="SAME"),
    ),
    _case("sum_pool1d", SumPool((3,)), (2, 7, 2), _sum((3,))),
    _case(
        "sum_pool1d_explicit_padding_strides",
        SumPool((3,), strides=2, padding=((2, 1),)),
        (2, 6, 2),
        _sum((3,), strides=2, padding=((2, 1),)),
    ),
    _case("global_avg_pool1d", GlobalAvgPool, (2, 5, 3), _global),
    _case("global_avg_pool3d", GlobalAvgPool, (2, 2, 3, 2, 1), _global),
]


@pytest.mark.parametrize("check", contract.CHECKS, ids=contract.CHECK_IDS)
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_contract(case, check, key):
    check(case, key)


@pytest.mark.parametrize("check", contract.REFERENCE_CHECKS, ids=contract.REFERENCE_CHECK_IDS)
@pytest.mark.parametrize("case", REFERENCE_CASES, ids=[c.id for c in REFERENCE_CASES])
def test_more_settings_match_the_reference(case, check, key):
    check(case, key)


# ----------------------------------------------------------------------------- behaviour


def _pool(layer, x):
    return layer.apply({}, {}, jnp.asarray(x))[0]


def test_windows_tile_the_input_by_default():
    x = np.arange(16.0).reshape(1, 4, 4, 1)
    np.testing.assert_array_equal(_pool(MaxPool((2, 2)), x)[0, :, :, 0], [[5, 7], [13, 15]])
    np.testing.assert_array_equal(_pool(AvgPool((2, 2)), x)[0, :, :, 0], [[2.5, 4.5], [10.5, 12.5]])


def test_avg_pool_does_not_count_padding():
    ones = np.ones((1, 5, 5, 1), np.float32)
    np.testing.assert_array_equal(_pool(AvgPool((2, 2), padding="SAME"), ones), 1.0)
    np.testing.assert_array_equal(_pool(AvgPool((3, 3), strides=1, padding=1), ones), 1.0)
    np.testing.assert_allclose(
        _pool(AvgPool((2,), padding="SAME"), [[[1.0], [3.0], [8.0]]])[0, :, 0], [2.0, 8.0]
    )


@pytest.mark.parametrize(
    ("window", "strides"), [((2, 2), None), ((3, 2), (1, 2))], ids=["tiling", "overlapping"]
)
def test_sum_pool_is_avg_pool_times_the_window_size_on_valid_padding(window, strides):
    x = _normal(None, (2, 5, 6, 3))
    summed = _pool(SumPool(window, strides=strides), x)
    averaged = _pool(AvgPool(window, strides=strides), x)
    np.testing.assert_allclose(summed, averaged * np.prod(window), rtol=1e-6, atol=1e-6)


def test_sum_pool_same_padding_sums_the_real_entries_only():
    ones = np.ones((1, 5, 5, 1), np.float32)
    y = _pool(SumPool((2, 2), padding="SAME"), ones)[0, :, :, 0]  # windows at 0, 2, 4 per axis
    np.testing.assert_array_equal(y, [[4, 4, 2], [4, 4, 2], [2, 2, 1]])
    np.testing.assert_array_equal(
        _pool(SumPool((2,), padding="SAME"), [[[1.0], [3.0], [8.0]]])[0, :, 0], [4.0, 8.0]
    )


def test_sum_pool_keeps_integer_inputs():
    x = np.arange(-8, 8, dtype=np.int32).reshape(1, 4, 4, 1)
    y = _pool(SumPool((3, 3), strides=2, padding="SAME"), x)
    assert y.dtype == jnp.int32
    np.testing.assert_array_equal(y, ref_conv.sum_pool(x, (3, 3), strides=2, padding="SAME"))


def test_max_pool_padding_never_wins_even_over_negative_inputs():
    x = -1.0 - np.arange(9.0, dtype=np.float32).reshape(1, 3, 3, 1)
    y = _pool(MaxPool((2, 2), strides=1, padding=1), x)
    np.testing.assert_array_equal(y, ref_conv.max_pool(x, (2, 2), strides=1, padding=1))
    assert float(jnp.max(y)) == -1.0


def test_max_pool_keeps_integer_inputs():
    x = np.arange(-8, 8, dtype=np.int32).reshape(1, 4, 4, 1)
    y = _pool(MaxPool((3, 3), strides=2, padding="SAME"), x)
    assert y.dtype == jnp.int32
    np.testing.assert_array_equal(y, ref_conv.max_pool(x, (3, 3), strides=2, padding="SAME"))


def test_max_pool_gradient_goes_to_the_largest_entry():
    x = jnp.array([[[1.0], [4.0], [2.0], [3.0]]])  # (1, 4, 1)
    grad = jax.grad(lambda x: jnp.sum(_pool(MaxPool((2,)), x)))(x)
    np.testing.assert_array_equal(grad[0, :, 0], [0.0, 1.0, 0.0, 1.0])


@pytest.mark.parametrize(
    ("layer", "input_shape", "expected"),
    [
        (MaxPool((2, 2)), (None, 8, 8, 3), (None, 4, 4, 3)),
        (MaxPool((2, 2)), (None, None, 7, None), (None, None, 3, None)),
        (AvgPool((3,), strides=2, padding="SAME"), (-1, 7, 2), (None, 4, 2)),
        (AvgPool((2, 2), strides=1), (2, 3, 3, 1), (2, 2, 2, 1)),
        (SumPool((2, 2), padding="SAME"), (None, 5, None, 3), (None, 3, None, 3)),
        (GlobalAvgPool, (None, 8, 8, 16), (None, 16)),
        (GlobalAvgPool, (None, None, 5, None), (None, None)),
    ],
)
def test_output_shapes(layer, input_shape, expected):
    assert jn.output_shape(layer, input_shape) == expected


def test_pooling_layers_have_no_params_or_state(key):
    for layer in (MaxPool((2,)), AvgPool((2,)), SumPool((2,)), GlobalAvgPool):
        assert layer.init(key, (2, 4, 3))[1:] == ({}, {})


def test_global_avg_pool_is_a_ready_layer_in_a_network(key):
    net = jn.serial(GlobalAvgPool, jn.nn.Dense(3))
    out_shape, params, _ = net.init(key, (None, 4, 4, 5))
    assert out_shape == (None, 3)
    assert sorted(params) == ["dense_0"]
    assert GlobalAvgPool.name == "global_avg_pool"


# ----------------------------------------------------------------------------- errors


WINDOW_HINT = "one per spatial axis (e.g. (3, 3) for images, (5,) for sequences)"
SMALLER = "padding must be smaller than the window on each side (a window of padding alone has nothing to pool)"


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (
            lambda: MaxPool(2),
            TypeError,
            f"max_pool: window must be a tuple of positive ints, {WINDOW_HINT}, got int 2",
        ),
        (
            lambda: AvgPool(None),
            TypeError,
            f"avg_pool: window must be a tuple of positive ints, {WINDOW_HINT}, got NoneType None",
        ),
        (lambda: MaxPool((0, 2)), ValueError, "max_pool: window must be positive ints, got (0, 2)"),
        (
            lambda: AvgPool((2, 2.0)),
            TypeError,
            "avg_pool: window must be positive ints, got (2, 2.0)",
        ),
        (
            lambda: MaxPool(()),
            ValueError,
            "max_pool: window must have 1, 2 or 3 entries, one per spatial axis, got ()",
        ),
        (
            lambda: MaxPool((2, 2), strides=(1,)),
            ValueError,
            "max_pool: strides must be a positive int or a tuple of 2 positive ints, got (1,)",
        ),
        (
            lambda: AvgPool((2,), strides=-1),
            ValueError,
            "avg_pool: strides must be a positive int or a tuple of 1 positive ints, got -1",
        ),
        (
            lambda: AvgPool((2,), strides=0.5),
            TypeError,
            "avg_pool: strides must be a positive int or a tuple of 1 positive ints, got 0.5",
        ),
        (
            lambda: AvgPool((2, 2), padding="FULL"),
            ValueError,
            "avg_pool: padding must be one of ('SAME', 'VALID'), an int, or one int or (low, high) pair per spatial axis, got 'FULL'",
        ),
        (
            lambda: MaxPool((2, 2), padding=((1, 1),)),
            ValueError,
            "max_pool: padding must be a non-negative int or 2 entries (one per spatial axis), each a non-negative int or a (low, high) pair of them, got ((1, 1),)",
        ),
        (
            lambda: AvgPool((2,), padding=((2, 0),)),
            ValueError,
            f"avg_pool: {SMALLER}, got padding ((2, 0),) for window (2,)",
        ),
        (
            lambda: SumPool(3),
            TypeError,
            f"sum_pool: window must be a tuple of positive ints, {WINDOW_HINT}, got int 3",
        ),
        (
            lambda: SumPool((2,), strides=(1, 1)),
            ValueError,
            "sum_pool: strides must be a positive int or a tuple of 1 positive ints, got (1, 1)",
        ),
        (
            lambda: SumPool((2, 2), padding=(2, 0)),
            ValueError,
            f"sum_pool: {SMALLER}, got padding ((2, 2), (0, 0)) for window (2, 2)",
        ),
        (
            lambda: MaxPool((3, 2), padding=2),
            ValueError,
            f"max_pool: {SMALLER}, got padding ((2, 2), (2, 2)) for window (3, 2)",
        ),
    ],
)
def test_bad_hyperparameters_fail_at_construction(make, error, message):
    with pytest.raises(error, match=re.escape(message)):
        make()


@pytest.mark.parametrize(
    ("layer", "input_shape", "message"),
    [
        (
            MaxPool((2, 2)),
            (2, 8),
            "max_pool: expected input (batch, height, width, channels) for window (2, 2), got (2, 8)",
        ),
        (
            AvgPool((2,)),
            (2, 8, 8, 1),
            "avg_pool: expected input (batch, width, channels) for window (2,), got (2, 8, 8, 1)",
        ),
        (
            MaxPool((3, 3)),
            (2, 2, 4, 1),
            "max_pool: window (3, 3), which does not fit in the padded input (2, 4); got input (2, 2, 4, 1) with padding ((0, 0), (0, 0))",
        ),
        (
            AvgPool((2,)),
            (2, 4, 0),
            "avg_pool: sizes must be positive ints, -1 or None, got (2, 4, 0)",
        ),
        (
            GlobalAvgPool,
            (2, 8),
            "global_avg_pool: expected input (batch, *spatial, channels) with at least one spatial axis, got (2, 8)",
        ),
    ],
)
def test_bad_input_shapes_fail_at_init(key, layer, input_shape, message):
    with pytest.raises(jn.ShapeError, match=re.escape(message)):
        layer.init(key, input_shape)


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize(
    ("layer", "x_shape", "message"),
    [
        (
            MaxPool((2, 2)),
            (2, 8, 3),
            "serial/max_pool_0: expected input (batch, height, width, channels) for window (2, 2), got (2, 8, 3)",
        ),
        (
            AvgPool((3,), padding="VALID"),
            (2, 2, 3),
            "serial/avg_pool_0: window (3,), which does not fit in the padded input (2,); got input (2, 2, 3) with padding ((0, 0),)",
        ),
        (
            SumPool((2, 2)),
            (2, 1, 4, 3),
            "serial/sum_pool_0: window (2, 2), which does not fit in the padded input (1, 4); got input (2, 1, 4, 3) with padding ((0, 0), (0, 0))",
        ),
        (
            GlobalAvgPool,
            (2, 3),
            "serial/global_avg_pool_0: expected input (batch, *spatial, channels) with at least one spatial axis, got (2, 3)",
        ),
    ],
)
def test_bad_inputs_fail_at_trace_time_with_the_path(jit, layer, x_shape, message):
    net = jn.serial(layer)

    def run(x):
        return net.apply({}, {}, x)[0]

    run = jax.jit(run) if jit else run
    with pytest.raises(jn.ShapeError, match=re.escape(message)):
        run(jnp.ones(x_shape))


def test_references_agree_on_a_hand_computed_example():
    x = np.array([[[1.0], [2.0], [6.0]]])  # (1, 3, 1)
    np.testing.assert_array_equal(ref_conv.avg_pool(x, (2,), padding="SAME")[0, :, 0], [1.5, 6.0])
    np.testing.assert_array_equal(ref_conv.max_pool(x, (2,), strides=1)[0, :, 0], [2.0, 6.0])
    np.testing.assert_array_equal(ref_conv.global_avg_pool(x), [[3.0]])
    np.testing.assert_array_equal(ref_conv.sum_pool(x, (2,), padding="SAME")[0, :, 0], [3.0, 6.0])
