"""Nets shaped like graphs: ``jn.graph``, ``jn.each`` and the fan layers, against the same
computation written by hand in NumPy, through the layer contract, and their errors."""

import json
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnet as jn
from tests import contract
from tests import references as ref
from tests import references_conv as ref_conv
from tests.contract import Case


def exactly(message: str) -> str:
    return f"^{re.escape(message)}$"


def skip_concat() -> jn.Layer:
    """A dense layer whose input is joined to its activation: a DenseNet-style skip."""
    return jn.graph(
        {
            "hidden": (jn.nn.Dense(5), "input"),
            "act": (jn.nn.Tanh, "hidden"),
            "skip": (jn.nn.FanInConcat(axis=-1), ("input", "act")),
            "out": (jn.nn.Dense(3), "skip"),
        }
    )


def _skip_concat_ref(p, x):
    act = np.tanh(ref.dense(p["hidden"], x))
    return ref.dense(p["out"], np.concatenate([x, act], axis=-1))


def mini_unet() -> jn.Layer:
    """One level of a U-Net: encode, pool, decode, upsample, join the skip on channels."""
    return jn.graph(
        {
            "down": (jn.nn.Conv(2, (3, 3)), "input"),
            "act": (jn.nn.Tanh, "down"),
            "pool": (jn.nn.MaxPool((2, 2)), "act"),
            "bottom": (jn.nn.Conv(3, (3, 3)), "pool"),
            "up": (jn.nn.ConvTranspose(2, (2, 2), strides=2), "bottom"),
            "skip": (jn.nn.FanInConcat(axis=-1), ("up", "act")),
            "out": (jn.nn.Conv(1, (1, 1)), "skip"),
        }
    )


def _mini_unet_ref(p, x):
    act = np.tanh(ref_conv.conv(p["down"], x))
    bottom = ref_conv.conv(p["bottom"], ref_conv.max_pool(act, (2, 2)))
    up = ref_conv.conv_transpose(p["up"], bottom, strides=2)
    return ref_conv.conv(p["out"], np.concatenate([up, act], axis=-1))


def stax_residual() -> jn.Layer:
    """stax's way to write a residual block: FanOut, parallel (``each``), FanInSum."""
    return jn.serial(
        jn.nn.FanOut(2),
        jn.each(jn.serial(jn.nn.Dense(4), jn.nn.Tanh), jn.nn.Identity),
        jn.nn.FanInSum,
    )


def _stax_residual_ref(p, x):
    return np.tanh(ref.dense(p["each_0"]["serial_0"]["dense_0"], x)) + x


def two_heads_summed() -> jn.Layer:
    """A net of two outputs, selected and summed again: Select and a tuple output."""
    heads = jn.graph(
        {"a": (jn.nn.Dense(3), "input"), "b": (jn.nn.Dense(3), "input")},
        outputs=("a", "b"),
    )
    return jn.serial(heads, jn.parallel(jn.nn.Select(0), jn.nn.Select(1), combine="sum"))


def _two_heads_ref(p, x):
    heads = p["graph_0"]
    return ref.dense(heads["a"], x) + ref.dense(heads["b"], x)


CASES = [
    Case("graph_skip_concat", skip_concat(), (3, 4), _skip_concat_ref),
    Case("graph_mini_unet", mini_unet(), (2, 4, 4, 1), _mini_unet_ref, tolerance=1e-4),
    Case("stax_residual", stax_residual(), (3, 4), _stax_residual_ref),
    Case("two_heads_selected", two_heads_summed(), (3, 4), _two_heads_ref),
]


@pytest.mark.parametrize("check", contract.CHECKS, ids=contract.CHECK_IDS)
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_contract(case, check, key):
    check(case, key)


# ----------------------------------------------------------------- several inputs and outputs


def two_towers() -> jn.Layer:
    """Two inputs, each through its own tower, joined; two outputs."""
    return jn.graph(
        {
            "left_tower": (jn.nn.Dense(3), "left"),
            "right_tower": (jn.nn.Dense(3), "right"),
            "sum": (jn.nn.FanInSum, ("left_tower", "right_tower")),
            "act": (jn.nn.Relu, "sum"),
            "classes": (jn.nn.Dense(4), "act"),
            "value": (jn.nn.Dense(1), ("act")),
        },
        inputs=("left", "right"),
        outputs=("classes", "value"),
    )


def _two_towers_ref(p, left, right):
    act = np.maximum(ref.dense(p["left_tower"], left) + ref.dense(p["right_tower"], right), 0)
    return ref.dense(p["classes"], act), ref.dense(p["value"], act)


def _inputs():
    rng = np.random.default_rng(0)
    return rng.normal(size=(5, 2)).astype(np.float32), rng.normal(size=(5, 6)).astype(np.float32)


def test_two_inputs_two_outputs_match_numpy(key):
    net = two_towers()
    shape, params, state = net.init(key, ((None, 2), (None, 6)))
    assert shape == ((None, 4), (None, 1))
    assert list(params) == ["left_tower", "right_tower", "classes", "value"]
    left, right = _inputs()
    (classes, value), _ = net.apply(params, state, (left, right))
    want_classes, want_value = _two_towers_ref(jax.tree.map(np.asarray, params), left, right)
    np.testing.assert_allclose(classes, want_classes, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(value, want_value, rtol=1e-5, atol=1e-6)


def test_dict_inputs_equal_tuple_inputs(key):
    net = two_towers()
    by_tuple = net.init(key, ((None, 2), (None, 6)))
    by_dict = net.init(key, {"right": (None, 6), "left": (None, 2)})
    assert by_dict[0] == by_tuple[0]
    jax.tree.map(np.testing.assert_array_equal, by_dict[1], by_tuple[1])
    left, right = _inputs()
    params, state = by_tuple[1:]
    from_tuple = net.apply(params, state, (left, right))[0]
    from_dict = net.apply(params, state, {"left": left, "right": right})[0]
    jax.tree.map(np.testing.assert_array_equal, from_dict, from_tuple)


def test_gradients_equal_the_hand_written_function(key):
    net = two_towers()
    _, params, state = net.init(key, ((None, 2), (None, 6)))
    left, right = _inputs()

    def dense(p, x):
        return x @ p["w"] + p["b"][None, :]

    def by_hand(p):
        act = jax.nn.relu(dense(p["left_tower"], left) + dense(p["right_tower"], right))
        classes, value = dense(p["classes"], act), dense(p["value"], act)
        return jnp.sum(classes**2) + jnp.sum(jnp.sin(value))

    def by_net(p):
        classes, value = net.apply(p, state, (left, right))[0]
        return jnp.sum(classes**2) + jnp.sum(jnp.sin(value))

    want = jax.grad(by_hand)(params)
    got = jax.jit(jax.grad(by_net))(params)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), got, want)


def test_nodes_run_in_dependency_order_whatever_the_dict_order(key):
    ordered = skip_concat()
    shuffled = jn.graph(
        {
            "out": (jn.nn.Dense(3), "skip"),
            "skip": (jn.nn.FanInConcat(axis=-1), ("input", "act")),
            "act": (jn.nn.Tanh, "hidden"),
            "hidden": (jn.nn.Dense(5), "input"),
        }
    )
    assert [row.path for row in jn.summary_rows(shuffled, (None, 4))] == [
        "graph/hidden",
        "graph/act",
        "graph/skip",
        "graph/out",
    ]
    _, params, state = ordered.init(key, (3, 4))
    again = shuffled.init(key, (3, 4))[1]  # each node's key comes from its name, not its place
    jax.tree.map(np.testing.assert_array_equal, again, params)
    x = jnp.ones((3, 4))
    np.testing.assert_array_equal(
        shuffled.apply(params, state, x, key=key)[0], ordered.apply(params, state, x)[0]
    )


def test_intermediates_hold_every_node(key):
    net = two_towers()
    _, params, state = net.init(key, ((None, 2), (None, 6)))
    left, right = _inputs()
    outputs = jn.intermediates(net, params, state, (left, right))
    assert list(outputs) == [
        "graph/left_tower",
        "graph/right_tower",
        "graph/sum",
        "graph/act",
        "graph/classes",
        "graph/value",
        "graph",
    ]
    p = jax.tree.map(np.asarray, params)
    np.testing.assert_allclose(
        outputs["graph/sum"],
        ref.dense(p["left_tower"], left) + ref.dense(p["right_tower"], right),
        rtol=1e-5,
        atol=1e-6,
    )
    assert isinstance(outputs["graph"], tuple) and len(outputs["graph"]) == 2


def test_summary_of_a_net_of_two_inputs():
    table = jn.summary(two_towers(), {"left": (None, 2), "right": (None, 6)}, show=False)
    lines = table.splitlines()
    assert lines[1].split()[:4] == ["graph/left_tower", "N×2", "·", "2×3"]
    assert "(N×3, N×3) → N×3" in lines[3]
    assert lines[-1].split()[:2] == ["total", f"{2 * 3 + 3 + 6 * 3 + 3 + 3 * 4 + 4 + 3 + 1}"]


def test_summary_writes_dict_shapes():
    net = jn.serial(jn.nn.Select("image"), jn.nn.Flatten)
    table = jn.summary(net, {"image": (1, 2, 2), "age": (1, 1)}, show=False)
    assert "{image: 1×2×2, age: 1×1} → 1×2×2" in table


def test_config_round_trip_of_several_inputs(key):
    net = two_towers()
    config = jn.to_config(net)
    assert config["net"]["arguments"]["inputs"] == ["left", "right"]
    assert config["net"]["arguments"]["nodes"]["dict"]["sum"] == [
        {"type": "nn.FanInSum"},
        ["left_tower", "right_tower"],
    ]
    rebuilt = jn.from_config(json.loads(json.dumps(config)))
    assert jn.to_config(rebuilt) == config
    _, params, state = net.init(key, ((None, 2), (None, 6)))
    jax.tree.map(
        np.testing.assert_array_equal, rebuilt.init(key, ((None, 2), (None, 6)))[1], params
    )
    left, right = _inputs()
    jax.tree.map(
        np.testing.assert_array_equal,
        rebuilt.apply(params, state, (left, right))[0],
        net.apply(params, state, (left, right))[0],
    )


def test_each_node_has_its_own_randomness_and_state(key):
    net = jn.graph(
        {
            "drop_a": (jn.nn.Dropout(0.5), "input"),
            "drop_b": (jn.nn.Dropout(0.5), "input"),
            "norm": (jn.nn.BatchNorm(momentum=0.9), "input"),
            "join": (jn.nn.FanInConcat(axis=-1), ("drop_a", "drop_b", "norm")),
        }
    )
    _, params, state = net.init(key, (64, 8))
    assert list(state) == ["norm"]
    x = jnp.ones((64, 8)) + jnp.arange(8.0)[None, :]
    y, new_state = net.apply(params, state, x, key=key, train=True)
    a, b = y[:, :8], y[:, 8:16]
    assert not np.array_equal(a == 0, b == 0)  # two masks, from keys folded with each name
    np.testing.assert_allclose(
        new_state["norm"]["mean"], 0.9 * state["norm"]["mean"] + 0.1 * x.mean(0), rtol=1e-5
    )


# ----------------------------------------------------------------- stax's fan layers


@pytest.mark.parametrize(
    ("shapes", "axis", "expected"),
    [
        ([(2, 3), (2, 1)], 1, (2, 4)),
        ([(2, 3), (2, 1)], -1, (2, 4)),
        ([(1, 2, 4), (1, 1, 4)], 1, (1, 3, 4)),
        ([(2, 3), (5, 3)], 0, (7, 3)),
        ([(None, 3), (None, 3)], 0, (None, 3)),
    ],
)
def test_fan_in_concat_takes_lists_as_stax_does(shapes, axis, expected, key):
    layer = jn.nn.FanInConcat(axis)
    out, params, state = layer.init(key, shapes)
    assert out == expected and params == {} and state == {}
    rng = np.random.default_rng(0)
    arrays = [
        rng.normal(size=[1 if d is None else d for d in s]).astype(np.float32) for s in shapes
    ]
    y, _ = layer.apply(params, state, arrays)
    np.testing.assert_array_equal(y, np.concatenate(arrays, axis=axis))


@pytest.mark.parametrize("shape", [(3, 4), (2, 5, 6, 1)])
def test_fan_in_sum_and_fan_out(shape, key):
    out, params, state = jn.nn.FanInSum.init(key, [shape, shape, shape])
    assert out == shape
    rng = np.random.default_rng(1)
    arrays = [rng.normal(size=shape).astype(np.float32) for _ in range(3)]
    np.testing.assert_allclose(
        jn.nn.FanInSum.apply(params, state, arrays)[0], arrays[0] + arrays[1] + arrays[2]
    )
    assert jn.nn.FanOut(3).init(key, shape)[0] == (shape, shape, shape)
    copies = jn.nn.FanOut(3).apply({}, {}, arrays[0])[0]
    assert len(copies) == 3 and all(c is arrays[0] for c in copies)


def test_select_by_position_and_by_key(key):
    assert jn.nn.Select(-1).init(key, ((1, 2), (1, 3)))[0] == (1, 3)
    assert jn.nn.Select("b").init(key, {"a": (1, 2), "b": (1, 3)})[0] == (1, 3)
    x = {"a": jnp.zeros((1, 2)), "b": jnp.ones((1, 3))}
    assert jn.nn.Select("b").apply({}, {}, x)[0] is x["b"]


# ----------------------------------------------------------------- errors


def _dense(name="input"):
    return (jn.nn.Dense(2), name)


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (
            lambda: jn.graph({"a": _dense(), "b": (jn.nn.Dense(2), "c")}),
            ValueError,
            "graph: node 'b' takes 'c', which is neither an input ('input') nor a node",
        ),
        (
            lambda: jn.graph(
                {"a": _dense("b"), "b": _dense("a"), "out": (jn.nn.FanInSum, ("a", "input"))}
            ),
            ValueError,
            "graph: the nodes 'a' -> 'b' -> 'a' form a cycle (each feeds the next)",
        ),
        (
            lambda: jn.graph(
                {
                    "a": (jn.nn.FanInSum, ("input", "c")),
                    "b": _dense("a"),
                    "c": _dense("b"),
                }
            ),
            ValueError,
            "graph: the nodes 'a' -> 'b' -> 'c' -> 'a' form a cycle (each feeds the next)",
        ),
        (
            lambda: jn.graph({"a": (jn.nn.FanInSum, ("input", "a"))}),
            ValueError,
            "graph: the nodes 'a' -> 'a' form a cycle (each feeds the next)",
        ),
        (
            lambda: jn.graph({"a": _dense(), "b": _dense()}, outputs="b"),
            ValueError,
            "graph: node 'a' does not lead to any output ('b'); remove it or name it in outputs",
        ),
        (
            lambda: jn.graph({"a": _dense(), "b": _dense()}),
            ValueError,
            "graph: name the outputs; the nodes that no node takes are 'a', 'b', so the output "
            "is not clear (outputs=('a', 'b') returns all of them)",
        ),
        (
            lambda: jn.graph({"a": _dense("x")}, inputs=("x", "y")),
            ValueError,
            "graph: input 'y' is not taken by any node",
        ),
        (
            lambda: jn.graph({"a": _dense()}, outputs="z"),
            ValueError,
            "graph: output 'z' is neither a node nor an input",
        ),
        (
            lambda: jn.graph({"input": _dense()}),
            ValueError,
            "graph: node 'input' has the name of an input; rename one",
        ),
        (
            lambda: jn.graph({"a/b": _dense()}),
            ValueError,
            "graph: a node name must be a non-empty string without '/', got 'a/b'",
        ),
        (
            lambda: jn.graph({"a": jn.nn.Dense(2)}),
            TypeError,
            "graph: node 'a' must be a pair (layer, input_names), got ",
        ),
        (
            lambda: jn.graph({"a": (jn.nn.Dense, "input")}),
            TypeError,
            "graph: node 'a': argument 0 must be a jaxnet Layer, got function",
        ),
        (
            lambda: jn.graph({"a": (jn.nn.Dense(2), 3)}),
            TypeError,
            "graph: node 'a''s inputs must be a name or a tuple of names, got 3",
        ),
        (
            lambda: jn.graph({"a": _dense("x")}, inputs=("x", "x")),
            ValueError,
            "graph: the inputs ('x', 'x') repeat a name",
        ),
        (lambda: jn.graph({}), TypeError, "graph: nodes must be a non-empty dict"),
        (lambda: jn.nn.FanOut(0), ValueError, "FanOut: num must be a positive int, got 0"),
        (lambda: jn.nn.FanInConcat(1.0), TypeError, "FanInConcat: axis must be an int, got 1.0"),
        (lambda: jn.nn.Select(None), TypeError, "Select: index must be an int or a string"),
    ],
)
def test_bad_graphs_are_refused_when_built(build, error, message):
    with pytest.raises(error, match=f"^{re.escape(message)}"):
        build()


@pytest.mark.parametrize(
    ("layer", "shape", "message"),
    [
        (
            two_towers(),
            (None, 2),
            "graph: expects 2 inputs ('left', 'right') as a tuple or a dict, got (None, 2)",
        ),
        (
            two_towers(),
            {"left": (None, 2)},
            "graph: the dict of shapes lacks 'right'; the inputs are 'left', 'right'",
        ),
        (
            two_towers(),
            {"left": (None, 2), "right": (None, 6), "extra": (None, 1)},
            "graph: the dict of shapes has no input 'extra'; the inputs are 'left', 'right'",
        ),
        (
            two_towers(),
            ((None, 2), (None, 6), (None, 1)),
            "graph: expects 2 inputs ('left', 'right') as a tuple or a dict, got "
            "((None, 2), (None, 6), (None, 1))",
        ),
        (
            jn.graph(
                {
                    "a": (jn.nn.Dense(3), "input"),
                    "join": (jn.nn.FanInConcat(axis=-1), ("a", "input")),
                    "bad": (jn.nn.FanInSum, ("join", "a")),
                }
            ),
            (2, 4),
            "graph/bad: inputs must have equal shapes; input 0 is (2, 7), input 1 is (2, 3)",
        ),
        (
            jn.graph({"join": (jn.nn.FanInConcat(axis=1), ("a", "b"))}, inputs=("a", "b")),
            ((2, 3, 4), (2, 3, 5)),
            "graph/join: inputs must agree on every axis but axis 1; input 0 is (2, 3, 4), "
            "input 1 is (2, 3, 5)",
        ),
        (
            jn.nn.FanInConcat(axis=2),
            ((2, 3), (2, 3)),
            "fan_in_concat: axis 2 is out of range for inputs of rank 2 (input 0 is (2, 3))",
        ),
        (
            jn.nn.FanInSum,
            (2, 3),
            "fan_in_sum: expects a tuple of array shapes (one per input), got (2, 3)",
        ),
        (
            jn.nn.Select(2),
            ((1, 2), (1, 3)),
            "select: index 2 is out of range for a tuple of 2 shapes",
        ),
        (
            jn.nn.Select("c"),
            {"a": (1, 2), "b": (1, 3)},
            "select: has no input 'c'; the dict holds ['a', 'b']",
        ),
        (
            jn.serial(jn.nn.FanOut(3), jn.each(jn.nn.Dense(2), jn.nn.Dense(2))),
            (1, 4),
            "serial/each_0: expects a tuple of 2 inputs (one per layer), got "
            "((1, 4), (1, 4), (1, 4))",
        ),
    ],
)
def test_inputs_that_do_not_fit_name_the_node(layer, shape, message, key):
    with pytest.raises(jn.ShapeError, match=exactly(message)):
        layer.init(key, shape)


def test_wrong_inputs_at_apply_time_name_the_graph(key):
    net = two_towers()
    _, params, state = net.init(key, ((None, 2), (None, 6)))
    left, _ = _inputs()
    with pytest.raises(
        jn.ShapeError,
        match=exactly(
            "graph: expects 2 inputs ('left', 'right') as a tuple or a dict, got one array of "
            "shape (5, 2)"
        ),
    ):
        net.apply(params, state, left)
    with pytest.raises(
        jn.ShapeError,
        match=exactly("graph/right_tower: expected input (..., 6), got (5, 2)"),
    ):
        net.apply(params, state, (left, left))
    with pytest.raises(
        TypeError,
        match=exactly("fan_in_sum: expects a tuple (or list) of arrays, got one array (5, 2)"),
    ):
        jn.nn.FanInSum.apply({}, {}, left)


def test_params_of_another_graph_name_the_node(key):
    net = skip_concat()
    _, params, state = net.init(key, (3, 4))
    params = {**params, "out": {"w": jnp.zeros((7, 3)), "b": jnp.zeros(3)}}
    with pytest.raises(
        jn.ShapeError,
        match=exactly(
            "graph/out: expected param w of shape (9, 3) for input (3, 9), got (7, 3); were "
            "they made by this net's init?"
        ),
    ):
        net.apply(params, state, jnp.ones((3, 4)))
