"""Combinators, naming, keys and the errors users meet first."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnet as jn

LECTURE_NET = jn.serial(jn.nn.Dense(9), jn.nn.Sigmoid, jn.nn.Dense(4), jn.nn.Softmax)


def test_design_example(key):
    out_shape, params, state = LECTURE_NET.init(key, (1, 8))
    assert out_shape == (1, 4)
    assert state == {}
    assert jax.tree.map(jnp.shape, params) == {
        "dense_0": {"w": (8, 9), "b": (9,)},
        "dense_1": {"w": (9, 4), "b": (4,)},
    }
    y, _ = LECTURE_NET.apply(params, state, jnp.ones((1, 8)))
    assert y.shape == (1, 4)


def test_children_are_counted_per_kind_and_named_layers_keep_their_name(key):
    net = jn.serial(
        jn.nn.Dense(3), jn.nn.Relu, jn.named("hidden", jn.nn.Dense(3)), jn.nn.Relu, jn.nn.Dense(2)
    )
    _, params, _ = net.init(key, (1, 4))
    assert sorted(params) == ["dense_0", "dense_1", "hidden"]


def test_nested_combinators_nest_their_params(key):
    block = jn.residual(jn.serial(jn.nn.Dense(4), jn.nn.Tanh))
    net = jn.serial(block, block, jn.parallel(jn.nn.Dense(1), jn.nn.Dense(2)))
    out_shape, params, _ = net.init(key, (None, 4))
    assert out_shape == (None, 3)
    assert sorted(params) == ["parallel_0", "residual_0", "residual_1"]
    assert sorted(params["residual_1"]["serial_0"]) == ["dense_0"]
    assert sorted(params["parallel_0"]) == ["dense_0", "dense_1"]


def test_children_get_independent_init_keys(key):
    _, params, _ = jn.parallel(jn.nn.Dense(3), jn.nn.Dense(3)).init(key, (1, 3))
    assert not np.allclose(params["dense_0"]["w"], params["dense_1"]["w"])


def test_adding_a_layer_does_not_change_the_others_init(key):
    short = jn.serial(jn.nn.Dense(3), jn.nn.Dense(2))
    longer = jn.serial(jn.nn.Dense(3), jn.nn.Dense(2), jn.nn.Relu)
    np.testing.assert_array_equal(
        short.init(key, (1, 3))[1]["dense_1"]["w"], longer.init(key, (1, 3))[1]["dense_1"]["w"]
    )


def test_child_keys_are_folded_from_the_parent_key_by_name(key):
    seen = {}

    def spy(name):
        def init(k, shape):
            return tuple(shape), {}, {}

        def apply(params, state, x, *, key=None, train=False):
            seen[name] = key
            return x, state

        return jn.Layer(init, apply, name)

    net = jn.serial(spy("a"), spy("a"), jn.serial(spy("b")))
    net.apply({}, {}, jnp.ones((1, 2)), key=key)
    keys = [jax.random.key_data(seen[n]) for n in ("a", "b")]
    assert not np.array_equal(keys[0], keys[1])
    net.apply({}, {}, jnp.ones((1, 2)))
    assert seen["a"] is None  # no key given, none invented


def test_parallel_sum_and_concat_shapes(key):
    assert jn.parallel(jn.nn.Dense(3), jn.nn.Dense(3), combine="sum").init(key, (2, 5))[0] == (2, 3)
    assert jn.parallel(jn.nn.Dense(3), jn.nn.Dense(5)).init(key, (2, 5))[0] == (2, 8)


def test_apply_rejects_misspelt_keywords(key):
    _, params, state = LECTURE_NET.init(key, (1, 8))
    with pytest.raises(TypeError, match="trainng"):
        LECTURE_NET.apply(params, state, jnp.ones((1, 8)), trainng=True)  # type: ignore[call-arg]


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_wrong_input_width_names_the_layer_and_both_shapes(key, jit):
    _, params, state = LECTURE_NET.init(key, (1, 8))

    def run(x):
        return LECTURE_NET.apply(params, state, x)[0]

    run = jax.jit(run) if jit else run
    message = "serial/dense_0: expected input (..., 8), got (1, 7)"
    with pytest.raises(jn.ShapeError, match=re.escape(message)):
        run(jnp.ones((1, 7)))


def test_wrong_width_deep_inside_names_the_full_path(key):
    inner = jn.serial(jn.nn.Dense(3), jn.nn.Dense(2))
    net = jn.serial(jn.nn.Relu, jn.named("block", inner))
    _, params, state = net.init(key, (1, 4))
    params["block"]["dense_1"]["w"] = jnp.ones((5, 2))
    # dense_1's input comes from dense_0, which is right, so the params are to blame
    message = (
        "serial/block/dense_1: expected param w of shape (3, 2) for input (1, 3), got (5, 2); "
        "were they made by this net's init?"
    )
    with pytest.raises(jn.ShapeError, match=re.escape(message)):
        net.apply(params, state, jnp.ones((1, 4)))


def test_named_root_appears_in_errors(key):
    net = jn.named("mlp", jn.serial(jn.nn.Dense(2)))
    _, params, state = net.init(key, (1, 3))
    with pytest.raises(
        jn.ShapeError, match=re.escape("mlp/dense_0: expected input (..., 3), got (1, 4)")
    ):
        net.apply(params, state, jnp.ones((1, 4)))


def test_a_lone_layer_names_itself(key):
    _, params, state = jn.nn.Dense(2).init(key, (1, 3))
    with pytest.raises(jn.ShapeError, match=re.escape("dense: expected input (..., 3), got (5,)")):
        jn.nn.Dense(2).apply(params, state, jnp.ones((5,)))


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: jn.nn.Dense(0), ValueError, "dense: features must be a positive int, got 0"),
        (lambda: jn.nn.Dense(-3), ValueError, "dense: features must be a positive int, got -3"),
        (
            lambda: jn.nn.Dense(2.5),
            TypeError,
            "dense: features must be a positive int, got float 2.5",
        ),
        (
            lambda: jn.nn.Dense("8"),
            TypeError,
            "dense: features must be a positive int, got str '8'",
        ),
        (lambda: jn.nn.Dense(True), TypeError, "dense: features must be a positive int, got bool"),
        (
            lambda: jn.serial(jn.nn.Dense(2), "relu"),
            TypeError,
            "serial: argument 1 must be a jaxnet Layer, got str",
        ),
        (
            lambda: jn.serial(jn.nn.Dense),
            TypeError,
            "did you pass a constructor without calling it",
        ),
        (lambda: jn.serial(), ValueError, "serial: needs at least one layer"),
        (
            lambda: jn.parallel(jn.nn.Relu, combine="mean"),
            ValueError,
            "parallel: combine must be one of",
        ),
        (
            lambda: jn.parallel(jn.nn.Relu, 3),
            TypeError,
            "parallel: argument 1 must be a jaxnet Layer, got int",
        ),
        (
            lambda: jn.residual(None),
            TypeError,
            "residual: argument 0 must be a jaxnet Layer, got NoneType",
        ),
        (
            lambda: jn.named("a/b", jn.nn.Relu),
            ValueError,
            "named: name must be non-empty and contain no '/'",
        ),
        (lambda: jn.named("", jn.nn.Relu), ValueError, "named: name must be non-empty"),
        (lambda: jn.named(3, jn.nn.Relu), TypeError, "named: name must be a string, got int"),
        (
            lambda: jn.serial(jn.named("x", jn.nn.Relu), jn.named("x", jn.nn.Tanh)),
            ValueError,
            "serial: two children share the name 'x'",
        ),
        (
            lambda: jn.nn.Reshape((0, 2)),
            ValueError,
            "reshape: shape must be positive ints with at most one -1",
        ),
        (lambda: jn.nn.Reshape((-1, -1)), ValueError, "at most one -1, got (-1, -1)"),
        (lambda: jn.nn.Reshape(4), TypeError, "reshape: shape must be a tuple of ints, got 4"),
    ],
)
def test_bad_arguments_fail_when_the_layer_is_built(make, error, message):
    with pytest.raises(error, match=re.escape(message)):
        make()


@pytest.mark.parametrize(
    ("layer", "shape", "message"),
    [
        (
            jn.nn.Dense(2),
            (8,),
            "dense: needs inputs (batch, ..., in_features) with a known in_features, got (8,)",
        ),
        (jn.nn.Dense(2), (4, None), "with a known in_features, got (4, None)"),
        (jn.nn.Dense(2), (4, 0), "dense: sizes must be positive ints, -1 or None, got (4, 0)"),
        (jn.nn.Dense(2), (), "dense: input_shape needs at least a batch axis, got ()"),
        (
            jn.nn.Reshape((5, -1)),
            (2, 12),
            "reshape: cannot reshape examples of shape (12,) to (5, -1)",
        ),
        (
            jn.residual(jn.nn.Dense(3)),
            (2, 4),
            "residual: the inner layer must keep the input shape (2, 4), but gives (2, 3)",
        ),
        (
            jn.parallel(jn.nn.Dense(3), jn.nn.Dense(4), combine="sum"),
            (2, 4),
            "parallel: combine='sum' needs equal shapes; branch 0 gives (2, 3), branch 1 gives (2, 4)",
        ),
        (
            jn.parallel(jn.nn.Identity, jn.nn.Flatten),
            (2, 3, 4),
            "parallel: combine='concat' needs all but the last axis equal; branch 0 gives (2, 3, 4)",
        ),
        (
            jn.serial(jn.nn.Relu, jn.nn.Dense(3)),
            (5,),
            "serial/dense_0: needs inputs (batch, ..., in_features)",
        ),
    ],
)
def test_bad_input_shapes_fail_at_init(layer, shape, message, key):
    with pytest.raises(jn.ShapeError, match=re.escape(message)):
        layer.init(key, shape)


def test_input_shape_must_be_a_tuple(key):
    with pytest.raises(
        TypeError, match=re.escape("dense: input_shape must be a tuple of ints, got 8")
    ):
        jn.nn.Dense(2).init(key, 8)  # type: ignore[arg-type]


def test_shape_error_is_a_value_error():
    assert issubclass(jn.ShapeError, ValueError)


def test_user_written_layer_is_two_functions(key):
    def init(key, input_shape):
        return tuple(input_shape), {"scale": jnp.full((), 2.0)}, {"calls": jnp.zeros((), jnp.int32)}

    def apply(params, state, x, *, key=None, train=False):
        return params["scale"] * x, {"calls": state["calls"] + 1}

    net = jn.serial(jn.nn.Dense(3), jn.Layer(init, apply, "scale"))
    _, params, state = net.init(key, (2, 3))
    assert state == {"scale_0": {"calls": 0}}
    y, state = net.apply(params, state, jnp.ones((2, 3)))
    assert int(state["scale_0"]["calls"]) == 1
    dense_only, _ = jn.nn.Dense(3).apply(params["dense_0"], {}, jnp.ones((2, 3)))
    np.testing.assert_allclose(y, 2.0 * dense_only)


def test_output_shape_creates_no_parameters():
    huge = jn.serial(jn.nn.Dense(100_000), jn.nn.Dense(100_000))
    assert jn.output_shape(huge, (None, 100_000)) == (None, 100_000)


def test_intermediates_show_every_output_in_forward_order(key):
    net = jn.serial(jn.nn.Dense(3), jn.residual(jn.serial(jn.nn.Dense(3), jn.nn.Tanh)), jn.nn.Relu)
    _, params, state = net.init(key, (2, 4))
    x = jnp.ones((2, 4))
    outputs = jn.intermediates(net, params, state, x)
    assert list(outputs) == [
        "serial/dense_0",
        "serial/residual_0/serial_0/dense_0",
        "serial/residual_0/serial_0/tanh_0",
        "serial/residual_0/serial_0",
        "serial/residual_0",
        "serial/relu_0",
        "serial",
    ]
    np.testing.assert_array_equal(outputs["serial"], net.apply(params, state, x)[0])
    np.testing.assert_allclose(
        outputs["serial/residual_0"],
        outputs["serial/dense_0"] + outputs["serial/residual_0/serial_0/tanh_0"],
        rtol=1e-6,
    )
    jitted = jax.jit(lambda p, x: jn.intermediates(net, p, state, x))(params, x)
    assert sorted(jitted) == sorted(outputs)
    assert list(jn.intermediates(jn.nn.Relu, {}, {}, x)) == ["relu"]


def test_params_of_another_net_name_the_layer(key):
    _, params, state = LECTURE_NET.init(key, (1, 8))
    message = "serial/dense_1: params lack the entries 'b', 'w'; were they made by this net's init?"
    with pytest.raises(jn.ShapeError, match=re.escape(message)):
        LECTURE_NET.apply({"dense_0": params["dense_0"]}, state, jnp.ones((1, 8)))


def test_activation_names_must_be_identifiers():
    with pytest.raises(
        ValueError,
        match=re.escape("activation: name must be an identifier such as 'my_act', got '<lambda>'"),
    ):
        jn.nn.Activation(lambda a: a)
    with pytest.raises(ValueError, match=re.escape("got 'a/b'")):
        jn.nn.Activation(jnp.abs, name="a/b")


# ----------------------------------------------------------------------------- foreign params

SMALL_NET = jn.serial(jn.nn.Dense(3), jn.nn.Relu, jn.nn.Dense(2))


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize(
    ("other", "message"),
    [
        (
            jn.serial(jn.nn.Dense(3), jn.nn.Relu, jn.nn.Dense(2), jn.nn.Dense(2)),
            "serial: params hold an unexpected entry 'dense_2'; were they made by this net's init?",
        ),
        (
            jn.serial(jn.nn.Dense(5), jn.nn.Relu, jn.nn.Dense(2)),
            "serial/dense_0: expected param b of shape (3,) for input (2, 4), got (5,); "
            "were they made by this net's init?",
        ),
        (
            jn.serial(jn.nn.Dense(3, use_bias=False), jn.nn.Relu, jn.nn.Dense(2)),
            "serial/dense_0: params lack the entry 'b'; were they made by this net's init?",
        ),
    ],
    ids=["deeper", "wider", "no_bias"],
)
def test_params_of_another_net_are_refused_with_the_entry(other, message, jit, key):
    _, params, state = other.init(key, (None, 4))
    run = jax.jit(SMALL_NET.apply) if jit else SMALL_NET.apply
    with pytest.raises(jn.ShapeError, match=re.escape(message)):
        run(params, state, jnp.ones((2, 4)))


def test_an_unexpected_entry_inside_a_layer_is_refused(key):
    _, params, state = SMALL_NET.init(key, (None, 4))
    params["dense_1"]["extra"] = jnp.zeros(2)
    params["relu_0"] = {"a": jnp.zeros(1), "b": jnp.zeros(1)}
    message = (
        "serial/relu_0: params hold unexpected entries 'a', 'b'; were they made by this net's init?"
    )
    with pytest.raises(jn.ShapeError, match=re.escape(message)):
        SMALL_NET.apply(params, state, jnp.ones((2, 4)))
    del params["relu_0"]
    message = "serial/dense_1: params hold an unexpected entry 'extra'; were they made by this net's init?"
    with pytest.raises(jn.ShapeError, match=re.escape(message)):
        SMALL_NET.apply(params, state, jnp.ones((2, 4)))


def test_wrong_shapes_are_found_in_every_family_and_in_state(key):
    """The check lives in the combinators, so it covers conv, norm and recurrent layers alike."""
    cases = [
        (jn.nn.Conv(4, (3, 3)), jn.nn.Conv(5, (3, 3)), (2, 6, 6, 1), "params", "b", "(4,)", "(5,)"),
        (
            jn.nn.RNN(jn.nn.LSTM(3)),
            jn.nn.RNN(jn.nn.LSTM(4)),
            (2, 5, 2),
            "params",
            "b",
            "(12,)",
            "(16,)",
        ),
        (
            jn.nn.BatchNorm(use_scale=False, use_bias=False),
            None,
            (2, 3),
            "state",
            "mean",
            "(3,)",
            "(4,)",
        ),
    ]
    for layer, other, shape, kind, entry, want, got in cases:
        net = jn.serial(jn.nn.Identity, layer)
        _, params, state = net.init(key, shape)
        if other is None:
            state = {"batch_norm_0": {"mean": jnp.zeros(4), "var": jnp.ones(4)}}
        else:
            params = {f"{layer.name}_0": other.init(key, shape)[1]}
        noun = "param" if kind == "params" else kind
        message = (
            f"serial/{layer.name}_0: expected {noun} {entry} of shape {want} for input "
            f"{shape}, got {got}; were they made by this net's init?"
        )
        with pytest.raises(jn.ShapeError, match=re.escape(message)):
            jax.jit(net.apply)(params, state, jnp.ones(shape))


def test_a_wrong_input_is_still_blamed_on_the_input_not_the_params(key):
    _, params, state = SMALL_NET.init(key, (None, 4))
    with pytest.raises(
        jn.ShapeError, match=re.escape("serial/dense_0: expected input (..., 4), got (2, 5)")
    ):
        SMALL_NET.apply(params, state, jnp.ones((2, 5)))


@pytest.mark.parametrize(
    ("net", "root"),
    [
        (SMALL_NET, "serial"),
        (jn.parallel(jn.nn.Dense(2), jn.nn.Identity), "parallel"),
        (jn.residual(jn.nn.Dense(4)), "residual"),
        (jn.named("hidden", jn.nn.Dense(2)), "hidden"),
        (jn.nn.Dense(2), "dense"),
    ],
)
def test_a_python_list_is_refused_naming_x_and_the_layer(net, root, key):
    """jaxnet follows jax.numpy, which refuses lists; NumPy arrays are accepted."""
    _, params, state = net.init(key, (None, 4))
    message = f"{root}: x must be an array (jax or NumPy), got list; convert it with jnp.asarray(x)"
    with pytest.raises(TypeError, match=re.escape(message)):
        net.apply(params, state, [[1.0, 2.0, 3.0, 4.0]])
    y, _ = net.apply(params, state, np.ones((1, 4), np.float32))
    np.testing.assert_array_equal(y, net.apply(params, state, jnp.ones((1, 4)))[0])
