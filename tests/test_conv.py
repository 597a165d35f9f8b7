"""Conv and ConvTranspose: the layer contract, shapes, defaults, and every error message."""

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnet as jn
from jaxnet.nn.conv import Conv, ConvTranspose
from jaxnet.nn.pooling import AvgPool, MaxPool
from tests import contract
from tests import references as ref
from tests import references_conv as ref_conv
from tests.contract import Case


def _conv(**settings):
    return functools.partial(ref_conv.conv, **settings)


def _conv_transpose(**settings):
    return functools.partial(ref_conv.conv_transpose, **settings)


def _small_cnn(p, x):
    h = np.tanh(ref_conv.conv(p["conv_0"], x, padding="VALID"))
    h = ref_conv.avg_pool(h, (2, 2))
    return ref.dense(p["dense_0"], h.reshape(h.shape[0], -1))


def _normal(key, shape):
    """Standard normal inputs from NumPy: no PRNG program to compile for each new shape."""
    return jnp.asarray(np.random.default_rng(1).normal(size=shape), jnp.float32)


def _case(name, layer, input_shape, reference):
    return Case(name, layer, input_shape, reference, make_input=_normal)


# The full contract (with its slow second-order finite differences) runs on a core set of
# settings, each case combining several; more settings are checked against the reference only.
CASES = [
    _case(
        "conv1d_valid_stride2_dilation2",
        Conv(2, (2,), strides=2, padding="VALID", dilation=2),
        (2, 9, 3),
        _conv(strides=2, padding="VALID", dilation=2),
    ),
    _case(
        "conv2d_explicit_padding_uneven_strides_dilation",
        Conv(3, (2, 3), strides=(2, 1), padding=((1, 0), 2), dilation=(1, 2)),
        (2, 4, 5, 2),
        _conv(strides=(2, 1), padding=((1, 0), (2, 2)), dilation=(1, 2)),
    ),
    _case(
        "conv2d_groups_no_bias",
        Conv(2, (3, 3), feature_group_count=2, use_bias=False),
        (2, 4, 4, 4),
        _conv(groups=2),
    ),
    _case(
        "conv_transpose1d_valid_stride_above_kernel",
        ConvTranspose(2, (2,), strides=3, padding="VALID"),
        (2, 3, 1),
        _conv_transpose(strides=3, padding="VALID"),
    ),
    _case(
        "conv_transpose2d_explicit_padding_dilation",
        ConvTranspose(2, (2, 3), strides=(2, 1), padding=((1, 0), 1), dilation=(1, 2)),
        (2, 3, 3, 2),
        _conv_transpose(strides=(2, 1), padding=((1, 0), (1, 1)), dilation=(1, 2)),
    ),
]

REFERENCE_CASES = [
    _case("conv2d_same", Conv(4, (3, 3)), (2, 5, 5, 2), _conv()),
    _case(
        "conv_transpose2d_same_stride2",
        ConvTranspose(3, (3, 3), strides=2),
        (2, 3, 3, 2),
        _conv_transpose(strides=2),
    ),
    _case("conv1d_same", Conv(3, (3,)), (2, 7, 2), _conv()),
    _case(
        "conv2d_valid_stride2",
        Conv(3, (3, 3), strides=2, padding="VALID"),
        (2, 5, 5, 2),
        _conv(strides=2, padding="VALID"),
    ),
    _case(
        "conv2d_same_stride2_even_input", Conv(2, (3, 3), strides=2), (2, 6, 5, 1), _conv(strides=2)
    ),
    _case("conv2d_same_dilation2", Conv(2, (3, 3), dilation=2), (2, 5, 5, 2), _conv(dilation=2)),
    _case(
        "conv2d_depthwise_int_padding",
        Conv(4, (2, 2), feature_group_count=2, padding=1),
        (2, 4, 4, 2),
        _conv(groups=2, padding=1),
    ),
    _case("conv3d_same", Conv(2, (2, 2, 2)), (2, 3, 3, 3, 1), _conv()),
    _case(
        "conv_transpose1d_same_stride2",
        ConvTranspose(2, (3,), strides=2),
        (2, 4, 2),
        _conv_transpose(strides=2),
    ),
    _case(
        "conv_transpose1d_same_kernel_above_stride_by_one",
        ConvTranspose(1, (4,), strides=3),
        (2, 3, 1),
        _conv_transpose(strides=3),
    ),
    _case(
        "conv_transpose2d_valid_stride2",
        ConvTranspose(2, (3, 3), strides=2, padding="VALID"),
        (2, 3, 3, 2),
        _conv_transpose(strides=2, padding="VALID"),
    ),
    _case(
        "conv_transpose2d_same_stride1_no_bias",
        ConvTranspose(2, (3, 3), use_bias=False),
        (2, 4, 4, 2),
        _conv_transpose(),
    ),
    _case(
        "small_cnn",
        jn.serial(
            Conv(2, (3, 3), padding="VALID"),
            jn.nn.Tanh,
            AvgPool((2, 2)),
            jn.nn.Flatten,
            jn.nn.Dense(3),
        ),
        (2, 6, 6, 1),
        _small_cnn,
    ),
]


@pytest.mark.parametrize("check", contract.CHECKS, ids=contract.CHECK_IDS)
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_contract(case, check, key):
    check(case, key)


@pytest.mark.parametrize("check", contract.REFERENCE_CHECKS, ids=contract.REFERENCE_CHECK_IDS)
@pytest.mark.parametrize("case", REFERENCE_CASES, ids=[c.id for c in REFERENCE_CASES])
def test_more_settings_match_the_reference(case, check, key):
    check(case, key)


# ----------------------------------------------------------------------------- shapes


SHAPE_SETTINGS = [
    dict(strides=s, padding=p, dilation=d)
    for s in (1, 2, 3)
    for p in ("SAME", "VALID", ((0, 1),), ((2, 1),))
    for d in (1, 2)
]


def _abstract_apply_shape(layer, input_shape):
    """The shape ``apply`` really returns, traced abstractly: no compilation, no data."""

    def run(key, x):
        _, params, state = layer.init(key, input_shape)
        return layer.apply(params, state, x)[0]

    return jax.eval_shape(
        run, jax.random.key(0), jax.ShapeDtypeStruct(input_shape, jnp.float32)
    ).shape


@pytest.mark.parametrize("settings", SHAPE_SETTINGS, ids=str)
@pytest.mark.parametrize("kernel", [1, 2, 3])
def test_declared_output_shape_is_real_shape_for_every_setting(settings, kernel):
    for layer in (Conv(2, (kernel,), **settings), ConvTranspose(2, (kernel,), **settings)):
        for width in (1, 2, 4, 5):
            try:
                declared = jn.output_shape(layer, (2, width, 3))
            except jn.ShapeError:
                continue  # too small for the kernel: the errors are pinned below
            assert _abstract_apply_shape(layer, (2, width, 3)) == declared, (layer.name, width)


@pytest.mark.parametrize(
    ("layer", "expected"),
    [
        (Conv(2, (3, 3), strides=2), (None, None, 3, 2)),
        (ConvTranspose(2, (3, 3), strides=2), (None, None, 10, 2)),
    ],
    ids=["conv", "conv_transpose"],
)
def test_unknown_spatial_sizes_stay_unknown(key, layer, expected):
    assert jn.output_shape(layer, (None, None, 5, 1)) == expected
    assert jn.output_shape(layer, (-1, -1, 5, 1)) == expected


@pytest.mark.parametrize(
    ("layer", "input_shape", "expected"),
    [
        (Conv(2, (3, 3), strides=2), (2, 7, 8, 1), (2, 4, 4, 2)),  # ceil(n / stride)
        (ConvTranspose(2, (3, 3), strides=2), (2, 7, 8, 1), (2, 14, 16, 2)),  # n * stride
        (ConvTranspose(2, (3,), strides=2, padding="VALID"), (2, 7, 1), (2, 15, 2)),  # full
        (ConvTranspose(2, (2,), strides=3, padding="VALID"), (2, 7, 1), (2, 21, 2)),  # n * stride
        (ConvTranspose(2, (3,), strides=2, padding=1), (2, 7, 1), (2, 13, 2)),  # full - 2
    ],
)
def test_output_sizes(layer, input_shape, expected):
    assert jn.output_shape(layer, input_shape) == expected


def _param_shapes(layer, input_shape):
    params = jax.eval_shape(lambda k: layer.init(k, input_shape)[1], jax.random.key(0))
    return jax.tree.map(lambda p: p.shape, params)


def test_param_shapes():
    assert _param_shapes(Conv(6, (3, 2), feature_group_count=3), (1, 5, 5, 9)) == {
        "w": (3, 2, 3, 6),
        "b": (6,),
    }
    assert _param_shapes(ConvTranspose(4, (3,), use_bias=False), (1, 5, 7)) == {"w": (3, 7, 4)}


@pytest.mark.parametrize(
    ("layer", "input_shape", "fan_in"),
    [
        (Conv(64, (3, 3), feature_group_count=4), (1, 4, 4, 32), 3 * 3 * 8),
        (ConvTranspose(64, (3, 3)), (1, 4, 4, 32), 3 * 3 * 32),
    ],
    ids=["conv_groups", "conv_transpose"],
)
def test_default_init_is_lecun_normal_over_the_fan_in(key, layer, input_shape, fan_in):
    _, params, _ = layer.init(key, input_shape)
    assert np.std(params["w"]) == pytest.approx(1 / np.sqrt(fan_in), rel=0.1)
    np.testing.assert_array_equal(params["b"], 0.0)


def test_initializers_can_be_replaced(key):
    layer = Conv(2, (3,), w_init=jax.nn.initializers.ones, b_init=jax.nn.initializers.ones)
    _, params, _ = layer.init(key, (1, 4, 3))
    np.testing.assert_array_equal(params["w"], 1.0)
    np.testing.assert_array_equal(params["b"], 1.0)


@pytest.mark.parametrize("dtype", [jnp.uint8, jnp.bfloat16])
def test_inputs_and_kernels_of_other_dtypes_are_promoted(dtype):
    x = jnp.ones((1, 4, 1), dtype)
    for layer in (Conv(1, (2,), use_bias=False), ConvTranspose(1, (2,), use_bias=False)):
        y, _ = layer.apply({"w": jnp.ones((2, 1, 1))}, {}, x)
        assert y.dtype == jnp.float32
        assert float(y[0, 1, 0]) == 2.0


def test_padding_words_are_case_insensitive(key):
    assert jn.output_shape(Conv(2, (3,), padding="valid"), (1, 5, 1)) == (1, 3, 2)
    assert jn.output_shape(ConvTranspose(2, (3,), strides=2, padding="same"), (1, 5, 1)) == (
        1,
        10,
        2,
    )


@pytest.mark.parametrize(
    ("strides", "padding", "dilation"),
    [(2, "SAME", 1), (2, "VALID", 1), (2, ((1, 0),), 2), (1, "SAME", 2), (3, ((0, 1),), 1)],
)
def test_conv_transpose_is_the_gradient_of_conv(key, strides, padding, dilation):
    """ConvTranspose with w[k, c, f] is the input-gradient of a Conv with kernel w[k, f, c]."""
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(2, 4, 3)), jnp.float32)  # (B, n, C): the transpose's input
    params = {"w": jnp.asarray(rng.normal(size=(3, 3, 2)), jnp.float32)}  # (k, C, features)
    transpose = ConvTranspose(
        2, (3,), strides=strides, padding=padding, dilation=dilation, use_bias=False
    )
    out_shape = jn.output_shape(transpose, x.shape)
    y, _ = transpose.apply(params, {}, x)
    forward = Conv(3, (3,), strides=strides, padding=padding, dilation=dilation, use_bias=False)
    forward_params = {"w": jnp.swapaxes(params["w"], -1, -2)}  # (k, 2, 3): from 2 to 3 channels
    assert jn.output_shape(forward, out_shape) == x.shape
    _, vjp = jax.vjp(lambda z: forward.apply(forward_params, {}, z)[0], jnp.zeros(out_shape))
    np.testing.assert_allclose(vjp(x)[0], y, rtol=1e-5, atol=1e-6)


def test_references_agree_on_hand_computed_examples():
    x = np.array([[[1.0], [2.0], [3.0]]])  # (1, 3, 1)
    w = np.array([1.0, 10.0]).reshape(2, 1, 1)  # (k, C, F)
    np.testing.assert_array_equal(
        ref_conv.conv({"w": w}, x, padding="VALID")[0, :, 0], [21.0, 32.0]
    )
    np.testing.assert_array_equal(
        ref_conv.conv({"w": w}, x, padding="SAME")[0, :, 0], [21.0, 32.0, 3.0]
    )
    scattered = ref_conv.conv_transpose({"w": w}, x[:, :2], strides=2, padding="VALID")
    np.testing.assert_array_equal(scattered[0, :, 0], [1.0, 10.0, 2.0, 20.0])
    np.testing.assert_array_equal(
        ref_conv.conv_transpose({"w": w}, x, padding="SAME")[0, :, 0], [1.0, 12.0, 23.0]
    )


def test_conv_transpose_scatters_the_kernel_unflipped():
    y, _ = ConvTranspose(1, (2,), strides=2, use_bias=False).apply(
        {"w": jnp.array([1.0, 10.0]).reshape(2, 1, 1)}, {}, jnp.array([[[1.0], [2.0]]])
    )
    np.testing.assert_array_equal(y[0, :, 0], [1.0, 10.0, 2.0, 20.0])


# ----------------------------------------------------------------------------- a small CNN


def test_small_cnn_infers_shapes_and_works_under_jit_vmap_grad(key):
    net = jn.serial(Conv(4, (3, 3)), jn.nn.Relu, MaxPool((2, 2)), jn.nn.Flatten, jn.nn.Dense(10))
    out_shape, params, state = net.init(key, (None, 8, 8, 1))
    assert out_shape == (None, 10)
    assert jax.tree.map(jnp.shape, params) == {
        "conv_0": {"w": (3, 3, 1, 4), "b": (4,)},
        "dense_0": {"w": (64, 10), "b": (10,)},
    }
    x = _normal(None, (3, 8, 8, 1))
    y = jax.jit(lambda p, x: net.apply(p, state, x)[0])(params, x)
    assert y.shape == (3, 10)
    per_example = jax.jit(jax.vmap(lambda e: net.apply(params, state, e[None])[0][0]))(x)
    np.testing.assert_allclose(per_example, y, rtol=1e-5, atol=1e-5)
    grads = jax.jit(jax.grad(lambda p: jnp.sum(net.apply(p, state, x)[0] ** 2)))(params)
    assert jax.tree.structure(grads) == jax.tree.structure(params)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))
    assert float(jnp.abs(grads["conv_0"]["w"]).sum()) > 0


# ----------------------------------------------------------------------------- errors


KERNEL_HINT = "one per spatial axis (e.g. (3, 3) for images, (5,) for sequences)"
PADDING_2D = (
    "padding must be a non-negative int or 2 entries (one per spatial axis), "
    "each a non-negative int or a (low, high) pair of them, got "
)


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: Conv(0, (3, 3)), ValueError, "conv: features must be a positive int, got 0"),
        (
            lambda: Conv(2.5, (3, 3)),
            TypeError,
            "conv: features must be a positive int, got float 2.5",
        ),
        (
            lambda: Conv(4, 3),
            TypeError,
            f"conv: kernel_size must be a tuple of positive ints, {KERNEL_HINT}, got int 3",
        ),
        (
            lambda: Conv(4, "33"),
            TypeError,
            f"conv: kernel_size must be a tuple of positive ints, {KERNEL_HINT}, got str '33'",
        ),
        (
            lambda: Conv(4, (0, 3)),
            ValueError,
            "conv: kernel_size must be positive ints, got (0, 3)",
        ),
        (
            lambda: Conv(4, (2.5, 3)),
            TypeError,
            "conv: kernel_size must be positive ints, got (2.5, 3)",
        ),
        (
            lambda: Conv(4, (True, 3)),
            TypeError,
            "conv: kernel_size must be positive ints, got (True, 3)",
        ),
        (
            lambda: Conv(4, ()),
            ValueError,
            "conv: kernel_size must have 1, 2 or 3 entries, one per spatial axis, got ()",
        ),
        (
            lambda: Conv(4, (1, 1, 1, 1)),
            ValueError,
            "conv: kernel_size must have 1, 2 or 3 entries, one per spatial axis, got (1, 1, 1, 1)",
        ),
        (
            lambda: Conv(4, (3, 3), strides=(1, 0)),
            ValueError,
            "conv: strides must be a positive int or a tuple of 2 positive ints, got (1, 0)",
        ),
        (
            lambda: Conv(4, (3, 3), strides=(1, 2, 1)),
            ValueError,
            "conv: strides must be a positive int or a tuple of 2 positive ints, got (1, 2, 1)",
        ),
        (
            lambda: Conv(4, (3, 3), strides=1.5),
            TypeError,
            "conv: strides must be a positive int or a tuple of 2 positive ints, got 1.5",
        ),
        (
            lambda: Conv(4, (3, 3), strides="2"),
            TypeError,
            "conv: strides must be a positive int or a tuple of 2 positive ints, got '2'",
        ),
        (
            lambda: Conv(4, (3, 3), strides=(1, None)),
            TypeError,
            "conv: strides must be a positive int or a tuple of 2 positive ints, got (1, None)",
        ),
        (
            lambda: Conv(4, (3,), dilation=0),
            ValueError,
            "conv: dilation must be a positive int or a tuple of 1 positive ints, got 0",
        ),
        (
            lambda: Conv(4, (3, 3), padding="FULL"),
            ValueError,
            "conv: padding must be one of ('SAME', 'VALID'), an int, or one int or (low, high) pair per spatial axis, got 'FULL'",
        ),
        (lambda: Conv(4, (3, 3), padding=((1, 1),)), ValueError, f"conv: {PADDING_2D}((1, 1),)"),
        (lambda: Conv(4, (3, 3), padding=-1), ValueError, f"conv: {PADDING_2D}-1"),
        (lambda: Conv(4, (3, 3), padding=1.5), ValueError, f"conv: {PADDING_2D}1.5"),
        (
            lambda: Conv(4, (3, 3), padding=((1, 2, 3), (1, 1))),
            ValueError,
            f"conv: {PADDING_2D}((1, 2, 3), (1, 1))",
        ),
        (
            lambda: Conv(4, (3, 3), padding=((1, -1), 0)),
            ValueError,
            f"conv: {PADDING_2D}((1, -1), 0)",
        ),
        (lambda: Conv(4, (3, 3), padding=None), ValueError, f"conv: {PADDING_2D}None"),
        (
            lambda: Conv(4, (3, 3), feature_group_count=0),
            ValueError,
            "conv: feature_group_count must be a positive int, got 0",
        ),
        (
            lambda: Conv(6, (3, 3), feature_group_count=4),
            ValueError,
            "conv: features (6) must be divisible by feature_group_count (4)",
        ),
        (
            lambda: ConvTranspose(0, (3,)),
            ValueError,
            "conv_transpose: features must be a positive int, got 0",
        ),
        (
            lambda: ConvTranspose(2, 3),
            TypeError,
            f"conv_transpose: kernel_size must be a tuple of positive ints, {KERNEL_HINT}, got int 3",
        ),
        (
            lambda: ConvTranspose(2, (3,), strides=0),
            ValueError,
            "conv_transpose: strides must be a positive int or a tuple of 1 positive ints, got 0",
        ),
        (
            lambda: ConvTranspose(2, (3,), dilation=(1, 1)),
            ValueError,
            "conv_transpose: dilation must be a positive int or a tuple of 1 positive ints, got (1, 1)",
        ),
        (
            lambda: ConvTranspose(2, (3,), padding="full"),
            ValueError,
            "conv_transpose: padding must be one of ('SAME', 'VALID'), an int, or one int or (low, high) pair per spatial axis, got 'full'",
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
            Conv(4, (3, 3)),
            (2, 5, 5),
            "conv: expected input (batch, height, width, channels) for kernel_size (3, 3), got (2, 5, 5)",
        ),
        (
            Conv(4, (3,)),
            (2, 5, 5, 1),
            "conv: expected input (batch, width, channels) for kernel_size (3,), got (2, 5, 5, 1)",
        ),
        (
            Conv(4, (1, 1, 1)),
            (2, 5, 1),
            "conv: expected input (batch, depth, height, width, channels) for kernel_size (1, 1, 1), got (2, 5, 1)",
        ),
        (
            Conv(4, (3, 3)),
            (2, 5, 5, 0),
            "conv: sizes must be positive ints, -1 or None, got (2, 5, 5, 0)",
        ),
        (
            Conv(4, (3, 3)),
            (2, 5, 5, None),
            "conv: needs a known number of input channels, got (2, 5, 5, None)",
        ),
        (
            Conv(4, (3, 3), feature_group_count=2),
            (2, 5, 5, 3),
            "conv: input channels (3) must be divisible by feature_group_count (2), got input (2, 5, 5, 3)",
        ),
        (
            Conv(2, (3, 3), padding="VALID", dilation=2),
            (2, 4, 9, 1),
            "conv: kernel_size (3, 3) with dilation (2, 2) spans (5, 5), which does not fit in the padded input (4, 9); got input (2, 4, 9, 1) with padding ((0, 0), (0, 0))",
        ),
        (
            Conv(2, (4,), padding=((1, 0),)),
            (2, 2, 1),
            "conv: kernel_size (4,) with dilation (1,) spans (4,), which does not fit in the padded input (3,); got input (2, 2, 1) with padding ((1, 0),)",
        ),
        (
            ConvTranspose(2, (3, 3)),
            (2, 5, 5),
            "conv_transpose: expected input (batch, height, width, channels) for kernel_size (3, 3), got (2, 5, 5)",
        ),
        (
            ConvTranspose(2, (3,)),
            (2, 5, None),
            "conv_transpose: needs a known number of input channels, got (2, 5, None)",
        ),
        (
            ConvTranspose(2, (2,), padding=((2, 1),)),
            (2, 1, 1),
            "conv_transpose: padding ((2, 1),) leaves nothing of the full output (2,); got input (2, 1, 1)",
        ),
    ],
)
def test_bad_input_shapes_fail_at_init(key, layer, input_shape, message):
    with pytest.raises(jn.ShapeError, match=re.escape(message)):
        layer.init(key, input_shape)


def test_init_errors_name_the_path_in_a_network(key):
    net = jn.serial(Conv(4, (3, 3)), MaxPool((2, 2)), Conv(4, (5, 5), padding="VALID"))
    message = "serial/conv_1: kernel_size (5, 5) with dilation (1, 1) spans (5, 5), which does not fit in the padded input (4, 4); got input (None, 4, 4, 4) with padding ((0, 0), (0, 0))"
    with pytest.raises(jn.ShapeError, match=re.escape(message)):
        net.init(key, (None, 8, 8, 1))


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize(
    ("layer", "init_shape", "x_shape", "message"),
    [
        (
            Conv(4, (3, 3)),
            (2, 5, 5, 2),
            (2, 5, 5, 3),
            "serial/conv_0: expected input (batch, height, width, 2), got (2, 5, 5, 3)",
        ),
        (
            Conv(4, (3, 3), feature_group_count=2),
            (2, 5, 5, 4),
            (2, 5, 5, 2),
            "serial/conv_0: expected input (batch, height, width, 4), got (2, 5, 5, 2)",
        ),
        (
            Conv(4, (3,)),
            (2, 5, 2),
            (2, 5, 5, 2),
            "serial/conv_0: expected input (batch, width, 2), got (2, 5, 5, 2)",
        ),
        (
            Conv(4, (3, 3), padding="VALID"),
            (2, 5, 5, 2),
            (2, 2, 5, 2),
            "serial/conv_0: kernel_size (3, 3) with dilation (1, 1) spans (3, 3), which does not fit in the padded input (2, 5); got input (2, 2, 5, 2) with padding ((0, 0), (0, 0))",
        ),
        (
            ConvTranspose(4, (3, 3)),
            (2, 5, 5, 2),
            (2, 5, 5, 3),
            "serial/conv_transpose_0: expected input (batch, height, width, 2), got (2, 5, 5, 3)",
        ),
        (
            ConvTranspose(2, (2,), padding=((1, 1),)),
            (2, 3, 1),
            (2, 1, 1),
            "serial/conv_transpose_0: padding ((1, 1),) leaves nothing of the full output (2,); got input (2, 1, 1)",
        ),
    ],
)
def test_bad_inputs_fail_at_trace_time_with_the_path(key, jit, layer, init_shape, x_shape, message):
    net = jn.serial(layer)
    abstract = jax.eval_shape(lambda k: net.init(k, init_shape)[1:], key)
    params, state = jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), abstract)  # no RNG

    def run(x):
        return net.apply(params, state, x)[0]

    run = jax.jit(run) if jit else run
    with pytest.raises(jn.ShapeError, match=re.escape(message)):
        run(jnp.ones(x_shape))
