"""Property tests: shape inference agrees with what ``apply`` computes, for random networks.

Hypothesis draws networks (serial MLPs of ``Dense`` and random activations, and nested
``parallel``/``residual`` blocks) together with an input shape whose batch may be unknown. For
each one: the shape ``init`` declares is the shape an independent oracle predicts, the shape
``apply`` returns, and the shape ``jn.output_shape`` gives; and ``jn.summary_rows`` counts exactly
the parameters that ``init`` creates.

Most examples trace ``init`` and ``apply`` abstractly with ``jax.eval_shape``: shapes are exactly
those of a real call, and nothing is compiled, so a new network costs no fresh XLA compilation.
A few examples run eagerly on real arrays, with small widths and batches.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxnet as jn

SETTINGS = settings(max_examples=40, deadline=None)

ACTIVATIONS = [
    jn.nn.Sigmoid,
    jn.nn.Tanh,
    jn.nn.Relu,
    jn.nn.Softmax,
    jn.nn.LogSoftmax,
    jn.nn.LeakyRelu,
    jn.nn.Elu,
    jn.nn.Selu,
    jn.nn.Gelu,
    jn.nn.GeluExact,
    jn.nn.Softplus,
    jn.nn.Swish,
    jn.nn.Identity,
]

_NAMES = itertools.count()  # unique names for jn.named: siblings may not share one

widths = st.integers(min_value=1, max_value=5)
batches = st.one_of(st.none(), st.just(-1), st.integers(min_value=1, max_value=3))
extra_axes = st.lists(st.integers(min_value=1, max_value=3), max_size=1).map(tuple)


class Net(NamedTuple):
    layer: jn.Layer
    out_width: int  # the oracle: the last axis that the network must produce


def dense_net(draw: st.DrawFn, in_width: int) -> Net:
    out = draw(widths)
    return Net(jn.nn.Dense(out, use_bias=draw(st.booleans())), out)


def activation_net(draw: st.DrawFn, in_width: int) -> Net:
    return Net(draw(st.sampled_from(ACTIVATIONS)), in_width)


@st.composite
def mlps(draw: st.DrawFn, in_width: int) -> Net:
    """``serial`` of 1-4 Dense layers, each optionally followed by a random activation."""
    layers: list[jn.Layer] = []
    width = in_width
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        width = draw(widths)
        layers.append(jn.nn.Dense(width, use_bias=draw(st.booleans())))
        if draw(st.booleans()):
            layers.append(draw(st.sampled_from(ACTIVATIONS)))
    return Net(jn.serial(*layers), width)


@st.composite
def blocks(draw: st.DrawFn, in_width: int, depth: int = 2) -> Net:
    """A random block: a leaf, or serial/parallel/residual/named of smaller blocks."""
    leaves = ["dense", "activation"]
    kinds = leaves if depth == 0 else [*leaves, "serial", "concat", "sum", "residual", "named"]
    kind = draw(st.sampled_from(kinds))
    if kind == "dense":
        return dense_net(draw, in_width)
    if kind == "activation":
        return activation_net(draw, in_width)
    if kind == "serial":
        children, width = [], in_width
        for _ in range(draw(st.integers(min_value=1, max_value=3))):
            child = draw(blocks(width, depth - 1))
            children.append(child.layer)
            width = child.out_width
        return Net(jn.serial(*children), width)
    if kind == "concat":
        branches = [draw(blocks(in_width, depth - 1)) for _ in range(draw(st.integers(1, 3)))]
        return Net(jn.parallel(*(b.layer for b in branches)), sum(b.out_width for b in branches))
    if kind == "sum":  # every branch ends in Dense(out) so that the shapes agree
        out = draw(widths)
        branches = [
            jn.serial(draw(blocks(in_width, depth - 1)).layer, jn.nn.Dense(out))
            for _ in range(draw(st.integers(1, 3)))
        ]
        return Net(jn.parallel(*branches, combine="sum"), out)
    if kind == "residual":  # the inner block is projected back to the input width
        inner = draw(blocks(in_width, depth - 1))
        return Net(jn.residual(jn.serial(inner.layer, jn.nn.Dense(in_width))), in_width)
    inner = draw(blocks(in_width, depth - 1))
    return Net(jn.named(f"block{next(_NAMES)}", inner.layer), inner.out_width)


class Problem(NamedTuple):
    layer: jn.Layer
    input_shape: tuple[int | None, ...]  # as passed to init: the batch may be None or -1
    batch: int  # the concrete batch size of the array given to apply
    expected: tuple[int | None, ...]  # the oracle: the output shape init must declare


@st.composite
def problems(draw: st.DrawFn, nets: Callable[[int], st.SearchStrategy[Net]]) -> Problem:
    """A network and an input ``(batch, *extra, in_width)``; with extra axes, the network may
    start with ``Flatten`` (``(B, *extra, w) -> (B, prod(extra) * w)``)."""
    in_width = draw(widths)
    batch = draw(batches)
    extra = draw(extra_axes)
    shape = (batch, *extra, in_width)
    concrete = batch if batch is not None and batch > 0 else draw(st.integers(1, 3))
    known_batch = None if batch in (None, -1) else batch
    if extra and draw(st.booleans()):
        net = draw(nets(math.prod(extra) * in_width))
        layer = jn.serial(jn.nn.Flatten, net.layer)
        return Problem(layer, shape, concrete, (known_batch, net.out_width))
    net = draw(nets(in_width))
    return Problem(net.layer, shape, concrete, (known_batch, *extra, net.out_width))


def abstract_init(layer: jn.Layer, input_shape: tuple[int | None, ...]):
    """``layer.init`` traced with ``jax.eval_shape``: the declared shape, and params and state
    as ``ShapeDtypeStruct`` trees. Nothing is computed or compiled."""
    declared = []

    def init(key: jax.Array):
        shape, params, state = layer.init(key, input_shape)
        declared.append(shape)
        return params, state

    params, state = jax.eval_shape(init, jax.random.key(0))
    return declared[0], params, state


def check_shapes_and_counts(problem: Problem, *, serial_top: bool, eager: bool = False) -> None:
    """Declared shape == oracle == ``output_shape`` == the shape of ``apply``'s result, and
    ``summary_rows`` counts the real parameters.

    By default ``init`` and ``apply`` are traced abstractly (``jax.eval_shape``): the shapes are
    exactly those of a real call, and no example compiles anything. With ``eager=True`` they run
    on real arrays, op by op.
    """
    layer = problem.layer
    x_shape = (problem.batch, *problem.input_shape[1:])

    if eager:
        declared, params, state = layer.init(jax.random.key(0), problem.input_shape)
        y, new_state = layer.apply(params, state, jax.random.normal(jax.random.key(1), x_shape))
        assert bool(jnp.all(jnp.isfinite(y)))
    else:
        declared, params, state = abstract_init(layer, problem.input_shape)
        x = jax.ShapeDtypeStruct(x_shape, jnp.float32)
        y, new_state = jax.eval_shape(lambda p, s, x: layer.apply(p, s, x), params, state, x)
    assert declared == problem.expected
    assert jn.output_shape(layer, problem.input_shape) == declared
    assert y.shape == (problem.batch, *declared[1:])
    assert y.dtype == jnp.float32
    assert jax.tree.structure(new_state) == jax.tree.structure(state)

    rows = jn.summary_rows(layer, problem.input_shape)
    real = sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(params))
    assert sum(row.param_count for row in rows) == real
    assert rows[0].input_shape == (problem.expected[0], *problem.input_shape[1:])
    if serial_top:  # the rows follow the flow, so the last leaf gives the network's output
        assert rows[-1].output_shape == declared


@SETTINGS
@given(problems(mlps))
def test_mlp_declared_shape_is_real_shape(problem: Problem) -> None:
    check_shapes_and_counts(problem, serial_top=True)


@SETTINGS
@given(problems(blocks))
def test_nested_blocks_declared_shape_is_real_shape(problem: Problem) -> None:
    check_shapes_and_counts(problem, serial_top=False)


@settings(max_examples=5, deadline=None)
@given(problems(blocks))
def test_nested_blocks_on_real_arrays(problem: Problem) -> None:
    """A few examples run for real, so the abstract tests above cannot hide a runtime failure."""
    check_shapes_and_counts(problem, serial_top=False, eager=True)


@SETTINGS
@given(
    st.lists(widths, min_size=1, max_size=4),
    st.lists(st.sampled_from(ACTIVATIONS), min_size=4, max_size=4),
    widths,
    batches,
)
def test_mlp_params_are_the_lectures_matrices(hidden, activations, in_width, batch) -> None:
    """``Dense(n)`` after width ``m`` owns an ``m×n`` matrix and an ``n`` vector, named in order."""
    layers = [
        layer
        for width, activation in zip(hidden, activations, strict=False)
        for layer in (jn.nn.Dense(width), activation)
    ]
    net = jn.serial(*layers)
    _, params, state = abstract_init(net, (batch, in_width))
    assert state == {}
    widths_in = [in_width, *hidden[:-1]]
    assert jax.tree.map(jnp.shape, params) == {
        f"dense_{i}": {"w": (m, n), "b": (n,)}
        for i, (m, n) in enumerate(zip(widths_in, hidden, strict=True))
    }
    rows = [row for row in jn.summary_rows(net, (batch, in_width)) if row.param_count]
    assert [row.param_count for row in rows] == [
        m * n + n for m, n in zip(widths_in, hidden, strict=True)
    ]
    counts = itertools.accumulate(r.param_count for r in rows)
    assert list(counts)[-1] == sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(params))
