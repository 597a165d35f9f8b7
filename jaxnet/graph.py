"""Nets shaped like graphs: :func:`graph`, whose nodes name their inputs, and :func:`each`.

``serial`` chains layers and ``parallel`` feeds one input to every branch; a U-Net's skip
connections, an Inception block or a model of two inputs need more: a node that takes the
outputs of several earlier nodes. ``graph`` writes such a net as a dict of nodes, each a layer
and the names of what it takes; the result is an ordinary :class:`jaxnet.Layer`, so shape
inference, parameter names (the node names), ``summary``, ``intermediates``, checkpoints and
the net config work on it as on a ``serial``. A node that takes several names receives a
tuple, which the fan-in layers (:data:`jaxnet.nn.FanInSum`, :func:`jaxnet.nn.FanInConcat`)
join. A net of several inputs takes a tuple or a dict of arrays; one of several outputs
returns a tuple.

:func:`each` is stax's ``parallel``: the i-th layer applied to the i-th element of a tuple,
for the same nets written in stax's style (``FanOut``, ``each``, ``FanInSum``) inside a
``serial``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from jaxnet.core import (
    Array,
    Layer,
    Params,
    ShapeError,
    ShapeTree,
    State,
    _apply_and_capture,
    _apply_child,
    _check_layers,
    _check_unexpected_children,
    _child_names,
    _init_child,
    _put,
    as_shapes,
    check_input,
    format_shape,
    is_shape,
    output_shape,
)
from jaxnet.describe import described

Node = tuple[Layer, "str | Sequence[str]"]
"""A node of a :func:`graph`: its layer and the name (or names) of what it takes."""


def _names(value: Any, what: str) -> tuple[tuple[str, ...], bool]:
    """A name or a non-empty sequence of names, as a tuple, and whether it was one name."""
    if isinstance(value, str):
        return (value,), True
    if isinstance(value, Sequence) and value and all(isinstance(name, str) for name in value):
        return tuple(value), False
    raise TypeError(f"graph: {what} must be a name or a tuple of names, got {value!r}")


def _check_name(name: Any, what: str) -> None:
    if not isinstance(name, str) or not name or "/" in name:
        raise ValueError(f"graph: {what} must be a non-empty string without '/', got {name!r}")


def _parse_nodes(
    nodes: Any, inputs: tuple[str, ...]
) -> tuple[dict[str, Layer], dict[str, tuple[str, ...]], dict[str, bool]]:
    """Each node's layer, the names it takes, and whether it takes one name (an array) or
    several (a tuple)."""
    if not isinstance(nodes, Mapping) or not nodes:
        raise TypeError(
            "graph: nodes must be a non-empty dict {name: (layer, input_names)}, "
            f"got {type(nodes).__name__}"
        )
    layers: dict[str, Layer] = {}
    wiring: dict[str, tuple[str, ...]] = {}
    single: dict[str, bool] = {}
    for name, node in nodes.items():
        _check_name(name, "a node name")
        if name in inputs:
            raise ValueError(f"graph: node {name!r} has the name of an input; rename one")
        if not isinstance(node, tuple | list) or len(node) != 2:
            raise TypeError(
                f"graph: node {name!r} must be a pair (layer, input_names), got {node!r}"
            )
        (layers[name],) = _check_layers((node[0],), f"graph: node {name!r}")
        wiring[name], single[name] = _names(node[1], f"node {name!r}'s inputs")
    return layers, wiring, single


def _check_known(wiring: dict[str, tuple[str, ...]], inputs: tuple[str, ...]) -> None:
    for name, sources in wiring.items():
        for source in sources:
            if source not in inputs and source not in wiring:
                raise ValueError(
                    f"graph: node {name!r} takes {source!r}, which is neither an input "
                    f"({', '.join(map(repr, inputs))}) nor a node"
                )


def _cycle(pending: list[str], wiring: dict[str, tuple[str, ...]]) -> list[str]:
    """A cycle among nodes that cannot run, in the order the data would flow."""
    path = [pending[0]]
    while True:
        following = next(source for source in wiring[path[-1]] if source in pending)
        if following in path:
            loop = [*path[path.index(following) :], following]
            return loop[::-1]
        path.append(following)


def _order(wiring: dict[str, tuple[str, ...]], inputs: tuple[str, ...]) -> tuple[str, ...]:
    """The nodes in an order that runs each after what it takes: the given order where it
    allows (a stable topological sort).

    Raises:
      ValueError: if the nodes form a cycle, naming it.
    """
    ready = set(inputs)
    pending = list(wiring)
    order: list[str] = []
    while pending:
        runnable = next((n for n in pending if all(s in ready for s in wiring[n])), None)
        if runnable is None:
            loop = " -> ".join(map(repr, _cycle(pending, wiring)))
            raise ValueError(f"graph: the nodes {loop} form a cycle (each feeds the next)")
        order.append(runnable)
        ready.add(runnable)
        pending.remove(runnable)
    return tuple(order)


def _sink(wiring: dict[str, tuple[str, ...]]) -> str:
    """The one node that no node takes: the output when none is named."""
    taken = {source for sources in wiring.values() for source in sources}
    sinks = [name for name in wiring if name not in taken]
    if len(sinks) != 1:
        listed = ", ".join(map(repr, sinks)) or "none"
        raise ValueError(
            f"graph: name the outputs; the nodes that no node takes are {listed}, so the "
            f"output is not clear (outputs={tuple(sinks)!r} returns all of them)"
        )
    return sinks[0]


def _check_used(
    wiring: dict[str, tuple[str, ...]], inputs: tuple[str, ...], outputs: tuple[str, ...]
) -> None:
    """Every node leads to an output and every input is taken: a loose end is a mistake."""
    for name in outputs:
        if name not in wiring and name not in inputs:
            raise ValueError(f"graph: output {name!r} is neither a node nor an input")
    used: set[str] = set()
    todo = list(outputs)
    while todo:
        name = todo.pop()
        if name not in used:
            used.add(name)
            todo += wiring.get(name, ())
    for name in wiring:
        if name not in used:
            raise ValueError(
                f"graph: node {name!r} does not lead to any output "
                f"({', '.join(map(repr, outputs))}); remove it or name it in outputs"
            )
    for name in inputs:
        if name not in used:
            raise ValueError(f"graph: input {name!r} is not taken by any node")


def _by_name(given: Any, inputs: tuple[str, ...], single: bool, what: str) -> dict[str, Any]:
    """The net's input (shapes or arrays) by input name: a tuple in the order of ``inputs``
    or a dict with exactly those keys."""
    if single:
        return {inputs[0]: given}
    if isinstance(given, Mapping):
        missing = [name for name in inputs if name not in given]
        extra = sorted(set(given) - set(inputs))
        if missing or extra:
            problem = f"lacks {missing[0]!r}" if missing else f"has no input {extra[0]!r}"
            raise ShapeError(
                f"the dict of {what} {problem}; the inputs are {', '.join(map(repr, inputs))}",
                root="graph",
            )
        return {name: given[name] for name in inputs}
    is_tuple = isinstance(given, tuple | list) and not (what == "shapes" and is_shape(given))
    if is_tuple and len(given) == len(inputs):
        return dict(zip(inputs, given, strict=True))
    got = format_shape(given) if what == "shapes" else _describe_input(given)
    raise ShapeError(
        f"expects {len(inputs)} inputs ({', '.join(map(repr, inputs))}) as a tuple or a dict, "
        f"got {got}",
        root="graph",
    )


def _describe_input(x: Any) -> str:
    if hasattr(x, "shape"):
        return f"one array of shape {format_shape(x.shape)}"
    if isinstance(x, tuple | list):
        return f"a tuple of {len(x)}"
    return type(x).__name__


@described("graph")
def graph(
    nodes: Mapping[str, Node],
    *,
    inputs: str | Sequence[str] = "input",
    outputs: str | Sequence[str] | None = None,
) -> Layer:
    """A net whose nodes name their inputs: skip connections, branches, several inputs and
    outputs.

    Each node is ``name: (layer, takes)``. ``takes`` is one name (the layer gets that array)
    or a tuple of names (the layer gets a tuple, for a fan-in layer or a layer of several
    inputs); a name is one of ``inputs`` or another node. Nodes run in the order given where
    that order allows (each after what it takes). Params and state are keyed by node name,
    and each node's PRNG key is its own, as in ``serial``.

    Args:
      nodes: the nodes, ``{name: (layer, takes)}``.
      inputs: the name of the net's input, or a tuple of names: the net then takes a tuple of
        arrays in that order or a dict with those keys (and its ``init`` the same of shapes).
      outputs: the node (or input) whose value the net returns, or a tuple of them (the net
        returns a tuple); by default the one node that no other node takes.

    Returns:
      A layer; its output shape is the output node's (a tuple of shapes for several).

    Raises:
      TypeError: if ``nodes`` is not a dict of ``(layer, takes)`` pairs, or a name is not a
        string.
      ValueError: for a node that takes an unknown name, nodes that form a cycle, a node that
        leads to no output, an input no node takes, a node named like an input, or no
        ``outputs`` when several nodes are taken by none.
      ShapeError: at ``init`` or on apply, naming the node whose input does not fit.

    Example:
      >>> import jax, jaxnet as jn
      >>> net = jn.graph({
      ...     "hidden": (jn.nn.Dense(8), "input"),
      ...     "relu": (jn.nn.Relu, "hidden"),
      ...     "skip": (jn.nn.FanInConcat(axis=-1), ("input", "relu")),
      ...     "out": (jn.nn.Dense(3), "skip"),
      ... })
      >>> shape, params, state = net.init(jax.random.key(0), (2, 4))
      >>> shape, list(params)
      ((2, 3), ['hidden', 'out'])
    """
    input_names, one_input = _names(inputs, "inputs")
    for name in input_names:
        _check_name(name, "an input name")
    if len(set(input_names)) != len(input_names):
        raise ValueError(f"graph: the inputs {input_names} repeat a name")
    layers, wiring, takes_one = _parse_nodes(nodes, input_names)
    _check_known(wiring, input_names)
    order = _order(wiring, input_names)
    output_names, one_output = _names(_sink(wiring) if outputs is None else outputs, "outputs")
    _check_used(wiring, input_names, output_names)

    def taken(name: str, values: dict[str, Any]) -> Any:
        if takes_one[name]:
            return values[wiring[name][0]]
        return tuple(values[source] for source in wiring[name])

    def returned(values: dict[str, Any]) -> Any:
        if one_output:
            return values[output_names[0]]
        return tuple(values[name] for name in output_names)

    def init(key: Array, input_shape: Any) -> tuple[ShapeTree, Params, State]:
        shapes = _by_name(as_shapes(input_shape, layer="graph"), input_names, one_input, "shapes")
        params: Params = {}
        state: State = {}
        for name in order:
            shapes[name], p, s = _init_child(layers[name], name, "graph", key, taken(name, shapes))
            _put(params, name, p)
            _put(state, name, s)
        return returned(shapes), params, state

    def run(
        params: Params,
        state: State,
        x: Any,
        key: Array | None,
        train: bool,
        outputs: dict[str, Array] | None,
    ) -> tuple[Any, State]:
        check_input(x, layer="graph")
        _check_unexpected_children(order, "graph", params, state)
        values = _by_name(x, input_names, one_input, "arrays")
        new_state: State = {}
        for name in order:
            values[name], s = _apply_child(
                layers[name],
                name,
                "graph",
                params,
                state,
                taken(name, values),
                key,
                train,
                outputs,
                input_from_sibling=any(source in wiring for source in wiring[name]),
            )
            _put(new_state, name, s)
        return returned(values), new_state

    def sublayers(input_shape: Any) -> list[tuple[str, Layer, ShapeTree]]:
        shapes = _by_name(as_shapes(input_shape, layer="graph"), input_names, one_input, "shapes")
        rows = []
        for name in order:
            rows.append((name, layers[name], taken(name, shapes)))
            shapes[name] = output_shape(layers[name], taken(name, shapes))
        return rows

    apply, capture = _apply_and_capture(run)
    return Layer(init, apply, "graph", sublayers=sublayers, capture=capture)


@described("each")
def each(*layers: Layer) -> Layer:
    """The i-th layer applied to the i-th element of a tuple input; returns the tuple of their
    outputs (stax's ``parallel``, used between ``FanOut`` and a fan-in layer).

    Raises:
      TypeError: if an argument is not a :class:`Layer`.
      ValueError: if no layer is given or two children share a name.
      ShapeError: if the input is not a tuple of as many elements as there are layers.

    Example:
      >>> import jax, jaxnet as jn
      >>> block = jn.serial(
      ...     jn.nn.FanOut(2), jn.each(jn.nn.Dense(4), jn.nn.Identity), jn.nn.FanInSum
      ... )
      >>> block.init(jax.random.key(0), (2, 4))[0]
      (2, 4)
    """
    layers = _check_layers(layers, "each")
    names = _child_names(layers, "each")

    def split(given: Any, what: str) -> tuple[Any, ...]:
        is_tuple = isinstance(given, tuple | list) and not (what == "shapes" and is_shape(given))
        if is_tuple and len(given) == len(layers):
            return tuple(given)
        got = format_shape(given) if what == "shapes" else _describe_input(given)
        raise ShapeError(
            f"expects a tuple of {len(layers)} inputs (one per layer), got {got}", root="each"
        )

    def init(key: Array, input_shape: Any) -> tuple[ShapeTree, Params, State]:
        shapes = split(as_shapes(input_shape, layer="each"), "shapes")
        out: list[ShapeTree] = []
        params: Params = {}
        state: State = {}
        for name, layer, shape in zip(names, layers, shapes, strict=True):
            y, p, s = _init_child(layer, name, "each", key, shape)
            out.append(y)
            _put(params, name, p)
            _put(state, name, s)
        return tuple(out), params, state

    def run(
        params: Params,
        state: State,
        x: Any,
        key: Array | None,
        train: bool,
        outputs: dict[str, Array] | None,
    ) -> tuple[Any, State]:
        check_input(x, layer="each")
        _check_unexpected_children(names, "each", params, state)
        ys: list[Any] = []
        new_state: State = {}
        for name, layer, part in zip(names, layers, split(x, "arrays"), strict=True):
            y, s = _apply_child(layer, name, "each", params, state, part, key, train, outputs)
            ys.append(y)
            _put(new_state, name, s)
        return tuple(ys), new_state

    def sublayers(input_shape: Any) -> list[tuple[str, Layer, ShapeTree]]:
        shapes = split(as_shapes(input_shape, layer="each"), "shapes")
        return list(zip(names, layers, shapes, strict=True))

    apply, capture = _apply_and_capture(run)
    return Layer(init, apply, "each", sublayers=sublayers, capture=capture)
