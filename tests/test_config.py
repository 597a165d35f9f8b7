"""A net as JSON and back: to_config, from_config, register_layer, named initializers.

Every layer family's round trip runs in the contract suite (``check_config_round_trip``);
these tests pin the format, nesting, user layers and every error.
"""

import json
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnet as jn


def _same_init_and_outputs(net, rebuilt, input_shape):
    key = jax.random.key(3)
    shape, params, state = net.init(key, input_shape)
    again = rebuilt.init(key, input_shape)
    assert again[0] == shape
    jax.tree.map(np.testing.assert_array_equal, (params, state), again[1:])
    x = jax.random.normal(jax.random.key(4), tuple(d or 2 for d in input_shape))
    np.testing.assert_array_equal(
        rebuilt.apply(params, state, x)[0], net.apply(params, state, x)[0]
    )


def _through_json(net):
    return jn.from_config(json.loads(json.dumps(jn.to_config(net))))


def test_the_lecture_net_as_json():
    net = jn.serial(jn.nn.Dense(9), jn.nn.Sigmoid, jn.nn.Dense(4), jn.nn.Softmax)
    assert jn.to_config(net) == {
        "format": "jaxnet.model/1",
        "jaxnet_version": jn.__version__,
        "net": {
            "type": "serial",
            "arguments": {
                "layers": [
                    {"type": "nn.Dense", "arguments": {"features": 9}},
                    {"type": "nn.Sigmoid"},
                    {"type": "nn.Dense", "arguments": {"features": 4}},
                    {"type": "nn.Softmax"},
                ]
            },
        },
    }


def test_nested_combinators_and_named_layers_round_trip():
    block = jn.residual(jn.serial(jn.nn.LayerNorm(), jn.nn.Dense(6), jn.nn.Gelu))
    net = jn.serial(
        jn.named("embed", jn.nn.Dense(6)),
        block,
        jn.parallel(jn.nn.Dense(3), jn.serial(jn.nn.Dense(2), jn.nn.Relu), combine="concat"),
        jn.parallel(jn.nn.Dense(5), jn.nn.Identity, combine="sum"),
        jn.nn.Dropout(0.25),
        jn.named("head", jn.serial(jn.nn.Dense(4), jn.nn.LogSoftmax)),
    )
    rebuilt = _through_json(net)
    _same_init_and_outputs(net, rebuilt, (None, 6))
    assert sorted(rebuilt.init(jax.random.key(0), (1, 6))[1]) == sorted(
        net.init(jax.random.key(0), (1, 6))[1]
    )


def test_recurrent_cells_and_conv_arguments_round_trip():
    net = jn.serial(
        jn.nn.RNN(jn.nn.GRU(5), return_sequences=True),
        jn.nn.RNN(jn.nn.LSTM(4, forget_bias=0.5), reverse=True, return_sequences=False),
        jn.nn.Dense(2),
    )
    _same_init_and_outputs(net, _through_json(net), (2, 7, 3))
    conv = jn.serial(jn.nn.Conv(4, (3, 3), strides=(2, 1), padding=((1, 1), (0, 2))), jn.nn.Flatten)
    config = jn.to_config(conv)
    assert config["net"]["arguments"]["layers"][0]["arguments"]["padding"] == [[1, 1], [0, 2]]
    _same_init_and_outputs(conv, _through_json(conv), (2, 6, 6, 1))


def test_bidirectional_and_the_new_layers_in_the_config():
    """The format; each layer's round trip with its params and outputs runs in its contract."""
    net = jn.serial(
        jn.nn.Bidirectional(jn.nn.RNN(jn.nn.GRU(3)), jn.nn.RNN(jn.nn.LSTM(2)), combine="concat"),
        jn.nn.GroupNorm(5, epsilon=1e-3),
        jn.nn.GeluExact,
        jn.nn.SumPool((2,), padding="SAME"),
        jn.nn.RMSNorm(use_scale=False),
        jn.nn.Selu,
        jn.nn.Bidirectional(jn.nn.RNN(jn.nn.SimpleRNN(2), return_sequences=False), combine="sum"),
    )
    layers = jn.to_config(net)["net"]["arguments"]["layers"]
    assert layers[0] == {  # combine="concat" is the default, so it is left out
        "type": "nn.Bidirectional",
        "arguments": {
            "forward": {
                "type": "nn.RNN",
                "arguments": {"cell": {"type": "nn.GRU", "arguments": {"features": 3}}},
            },
            "backward": {
                "type": "nn.RNN",
                "arguments": {"cell": {"type": "nn.LSTM", "arguments": {"features": 2}}},
            },
        },
    }
    assert layers[1:6] == [
        {"type": "nn.GroupNorm", "arguments": {"num_groups": 5, "epsilon": 1e-3}},
        {"type": "nn.GeluExact"},
        {"type": "nn.SumPool", "arguments": {"window": [2], "padding": "SAME"}},
        {"type": "nn.RMSNorm", "arguments": {"use_scale": False}},
        {"type": "nn.Selu"},
    ]
    assert "backward" not in layers[6]["arguments"]  # the same layer runs both ways
    rebuilt = _through_json(net)
    assert jn.to_config(rebuilt) == jn.to_config(net)
    assert jn.output_shape(rebuilt, (None, 6, 4)) == (None, 2)


def test_functions_of_jax_are_named_in_the_config():
    net = jn.serial(jn.nn.Activation(jnp.sin), jn.elementwise(jax.nn.silu, "silu"))
    layers = jn.to_config(net)["net"]["arguments"]["layers"]
    assert layers[0]["arguments"]["fn"] == {"function": "jax.numpy.sin"}
    assert layers[1]["arguments"]["fn"] == {"function": "jax.nn.silu"}
    x = jnp.linspace(-2.0, 2.0, 6).reshape(2, 3)
    np.testing.assert_array_equal(_through_json(net).apply({}, {}, x)[0], net.apply({}, {}, x)[0])


def test_named_initializer_equals_the_jax_closure_and_round_trips():
    he = jn.nn.initializer("he_normal")
    key = jax.random.key(0)
    np.testing.assert_array_equal(he(key, (8, 5)), jax.nn.initializers.he_normal()(key, (8, 5)))
    net = jn.nn.Dense(5, w_init=he, b_init=jax.nn.initializers.ones)
    assert jn.to_config(net)["net"]["arguments"] == {
        "features": 5,
        "w_init": {"type": "nn.initializer", "arguments": {"name": "he_normal"}},
        "b_init": {"function": "jax.nn.initializers.ones"},
    }
    _same_init_and_outputs(net, _through_json(net), (None, 8))
    scaled = jn.nn.initializer(
        "variance_scaling", scale=2.0, mode="fan_avg", distribution="uniform"
    )
    assert _through_json(jn.nn.Dense(3, w_init=scaled)).spec.arguments["w_init"].arguments == {
        "scale": 2.0,
        "mode": "fan_avg",
        "distribution": "uniform",
    }


def test_registered_constructor_and_instance_round_trip():
    @jn.register_layer("tests.Scale")
    def Scale(factor, *, bias=0.0):
        return jn.elementwise(lambda x: factor * x + bias, "scale")

    double = jn.register_layer(
        "tests.double", jn.Layer(lambda k, s: (tuple(s), {}, {}), lambda p, s, x, **_: (2 * x, s))
    )
    net = jn.serial(jn.nn.Dense(3), Scale(3.0, bias=1.0), double)
    config = jn.to_config(net)
    assert config["net"]["arguments"]["layers"][1:] == [
        {"type": "tests.Scale", "arguments": {"factor": 3.0, "bias": 1.0}},
        {"type": "tests.double"},
    ]
    _same_init_and_outputs(net, _through_json(net), (None, 4))


HAND_MADE = jn.Layer(lambda k, s: (tuple(s), {}, {}), lambda p, s, x, **_: (x, s), "scale")


@pytest.mark.parametrize(
    ("net", "message"),
    [
        (
            jn.serial(jn.nn.Dense(2), jn.residual(HAND_MADE)),
            "to_config: serial/residual_0/scale_0 is a layer built by hand (kind 'scale'), which "
            "a config cannot describe; register it with jn.register_layer(name, layer)",
        ),
        (
            jn.serial(jn.nn.Dense(2, w_init=jax.nn.initializers.he_normal())),
            "to_config: serial/dense_0/w_init: argument w_init=<function variance_scaling.<locals>"
            ".init",
        ),
        (
            jn.serial(jn.nn.Dense(2, w_init=jax.nn.initializers.he_normal())),
            "use jn.nn.initializer('he_normal') instead",
        ),
        (
            jn.nn.Activation(lambda x: x**3, "cube"),
            "to_config: cube/fn: argument fn=<function <lambda>",
        ),
        (
            jn.serial(jn.named("body", HAND_MADE)),
            "to_config: serial/body is a layer built by hand",
        ),
        (
            jn.nn.RNN(jn.nn.LSTM(2)._replace(spec=None)),
            "to_config: lstm/cell is a layer built by hand (kind 'lstm')",
        ),
    ],
)
def test_to_config_names_the_layer_that_cannot_be_described(net, message):
    with pytest.raises(jn.ConfigError, match=re.escape(message)):
        jn.to_config(net)


def test_to_config_refuses_what_is_not_a_layer():
    with pytest.raises(
        TypeError, match=re.escape("to_config: net must be a jaxnet Layer, got int")
    ):
        jn.to_config(3)


def _config(net):
    return {"format": "jaxnet.model/1", "jaxnet_version": "0.1.0", "net": net}


def _dense(**arguments):
    return {"type": "nn.Dense", "arguments": arguments}


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ([1, 2], "config: expected a JSON object, got list"),
        ({"net": {}}, "config: format must be 'jaxnet.model/1', got None (is this a to_config"),
        ({"format": "jaxnet.model/9", "net": {}}, "config: format must be 'jaxnet.model/1'"),
        ({"format": "jaxnet.model/1"}, "config: has no 'net' entry"),
        (_config({"type": "nn.Dens"}), "net.type: unknown layer 'nn.Dens'"),
        (
            _config({"type": "serial", "arguments": {"layers": [_dense(featurs=3)]}}),
            "net.arguments.layers[0].arguments: nn.Dense has no argument 'featurs' (its "
            "arguments: features, use_bias, w_init, b_init)",
        ),
        (
            _config({"type": "serial", "arguments": {"layers": [_dense(features=0)]}}),
            "net.arguments.layers[0]: nn.Dense: dense: features must be a positive int, got 0",
        ),
        (
            _config(_dense(features=2, w_init={"function": "os.system"})),
            "net.arguments.w_init.function: 'os.system' is not a function of jax.nn",
        ),
        (
            _config(_dense(features=2, w_init={"code": "print(1)"})),
            "net.arguments.w_init: expected a JSON value, a list, a layer",
        ),
        (_config({"type": "nn.Dense", "extra": 1}), "net: unexpected key 'extra'"),
        (_config({"type": "nn.Dense", "arguments": [2]}), "net.arguments: expected a JSON object"),
        (
            _config({"type": "nn.LSTM", "arguments": {"features": 2}}),
            "net: describes a Cell, not a layer",
        ),
    ],
)
def test_from_config_names_the_place_in_the_config(config, message):
    with pytest.raises(jn.ConfigError, match=re.escape(message)):
        jn.from_config(config)


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        (("serial", HAND_MADE), ValueError, "register_layer: 'serial' is the name of a built-in"),
        (("nn.Mine", HAND_MADE), ValueError, "names starting with 'nn.' are jaxnet's"),
        (("", HAND_MADE), ValueError, "register_layer: name must not be empty"),
        ((3, HAND_MADE), TypeError, "register_layer: name must be a string, got int"),
        (("mine", 3), TypeError, "expected a Layer or a function that builds one, got int"),
    ],
)
def test_register_layer_errors(args, error, message):
    with pytest.raises(error, match=re.escape(message)):
        jn.register_layer(*args)


def test_a_registered_constructor_must_build_a_layer():
    broken = jn.register_layer("tests.broken", lambda: 3)
    with pytest.raises(
        TypeError, match=re.escape("the constructor 'tests.broken' returned int, not a")
    ):
        broken()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: jn.nn.initializer("he_normall"), "initializer: unknown name 'he_normall'"),
        (lambda: jn.nn.initializer("normal", sigma=1.0), "initializer: normal"),
    ],
)
def test_initializer_errors(call, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


def test_spec_reads_as_the_call_that_built_the_net():
    net = jn.serial(jn.nn.Dense(9), jn.nn.Sigmoid, jn.nn.RNN(jn.nn.LSTM(3)))
    assert repr(net.spec) == (
        "Spec(serial(nn.Dense(features=9), nn.Sigmoid, nn.RNN(cell=nn.LSTM(features=3))))"
    )


def test_a_constructor_with_star_args_round_trips():
    @jn.register_layer("tests.Sum")
    def Sum(first, *more, scale=1.0):
        return jn.elementwise(lambda x: scale * (x + first + sum(more)), "sum")

    net = jn.serial(Sum(1.0, 2.0, 3.0, scale=2.0))
    assert jn.to_config(net)["net"]["arguments"]["layers"][0]["arguments"] == {
        "first": 1.0,
        "more": [2.0, 3.0],
        "scale": 2.0,
    }
    x = jnp.ones((2, 3))
    np.testing.assert_array_equal(_through_json(net).apply({}, {}, x)[0], net.apply({}, {}, x)[0])


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (
            {"jaxnet_version": None},
            "config: jaxnet_version must be a version such as '0.1.0', got None",
        ),
        ({"jaxnet_version": "next"}, "config: jaxnet_version must be a version such as '0.1.0'"),
        ({"comment": "mine"}, "config: unexpected key 'comment'"),
    ],
)
def test_from_config_checks_the_header(header, message):
    config = {**jn.to_config(jn.nn.Dense(2)), **header}
    with pytest.raises(jn.ConfigError, match=re.escape(message)):
        jn.from_config(config)


def test_arguments_a_config_cannot_hold_are_refused_by_name():
    message = "to_config: reshape/by[0]: argument by is of type ndarray, which a config cannot hold"
    with pytest.raises(jn.ConfigError, match=re.escape(message)):
        jn.to_config(_with_array_argument())


def _with_array_argument():
    @jn.register_layer("tests.Shift")
    def Shift(by):
        return jn.elementwise(lambda x: x + by, "reshape")

    return Shift((np.zeros(2),))


def test_a_deeply_nested_config_is_one_error():
    net = {"type": "nn.Dense", "arguments": {"features": 2}}
    for _ in range(5000):
        net = {"type": "nn.RNN", "arguments": {"cell": net}}
    with pytest.raises(jn.ConfigError, match=re.escape("net: nested too deeply to be a net")):
        jn.from_config({"format": "jaxnet.model/1", "jaxnet_version": "0.1.0", "net": net})


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: jn.nn.Dense(2, w_init="zeros"), TypeError, "dense: w_init must be an initializer"),
        (lambda: jn.nn.Conv(2, (3,), b_init=1.0), TypeError, "conv: b_init must be an initializer"),
        (
            lambda: jn.nn.Activation(jnp.sin, name=5),
            TypeError,
            "activation: name must be a string, got int",
        ),
        (
            lambda: jn.nn.initializer("normal", stddev=np.zeros(2)),
            ValueError,
            "initializer: stddev=array([0., 0.]) is not a number, string, None or a tuple of them",
        ),
    ],
)
def test_constructor_arguments_that_a_config_could_smuggle_in(call, error, message):
    with pytest.raises(error, match=re.escape(message)):
        call()
