"""The layer contract and the combinators that build networks from layers.

Conventions, written once:

* A layer is a pair of pure functions, ``Layer(init, apply)``, like optax's
  ``GradientTransformation``. Nothing to subclass.
* Layers see the batch (stax's convention, the lecture's ``1×8 · 8×9 = 1×9``): ``input_shape``
  includes the batch axis first, and ``Dense(9).init(key, (1, 8))`` returns output shape ``(1, 9)``.
  An unknown batch size is written ``None`` (``-1`` is accepted and read as ``None``).
* Parameters (trainable) and state (not trainable: running statistics, counters) are nested dicts
  with readable string keys. Combinators name their children ``<kind>_<i>``, counting each kind
  separately (``dense_0``, ``sigmoid_0``, ``dense_1``), or use the name given with :func:`named`.
  Children without parameters (or state) are left out of the params (or state) dict.
* ``apply(params, state, x, *, key=None, train=False) -> (y, new_state)``: keyword-only flags and no
  ``**kwargs`` sink, so a misspelt flag is a ``TypeError``, never silently ignored.
* Each child's PRNG key is derived from its parent's by ``jax.random.fold_in`` with the child's
  name, so two dropouts never share randomness and nothing is split by hand.
* A wrong input shape raises :class:`ShapeError` with the layer's path and both shapes, e.g.
  ``serial/dense_0: expected input (..., 8), got (1, 7)``, at ``init`` or at trace time.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp
import numpy as np

from jaxnet.describe import Spec, described
from jaxnet.shapes import Shape, ShapeTree, format_shape, is_shape, shape_of

Array = jax.Array
Params = dict[str, Any]
"""Trainable parameters: a nested dict of arrays with readable string keys."""
State = dict[str, Any]
"""Non-trainable layer state (running statistics, counters): a nested dict of arrays."""


class InitFn(Protocol):
    """``init(key, input_shape) -> (output_shape, params, state)``."""

    def __call__(
        self, key: Array, input_shape: Sequence[int | None]
    ) -> tuple[Shape, Params, State]:
        """Create parameters and state for inputs of ``input_shape`` (batch axis first)."""
        ...


class ApplyFn(Protocol):
    """``apply(params, state, x, *, key=None, train=False) -> (y, new_state)``."""

    def __call__(
        self,
        params: Params,
        state: State,
        x: Array,
        *,
        key: Array | None = None,
        train: bool = False,
    ) -> tuple[Array, State]:
        """Compute the layer's output for ``x`` and its new state."""
        ...


class Layer(NamedTuple):
    """A layer: two pure functions and a name.

    Attributes:
      init: ``(key, input_shape) -> (output_shape, params, state)``; infers shapes without data.
      apply: ``(params, state, x, *, key=None, train=False) -> (y, new_state)``; pure, so it works
        under ``jit``, ``grad``, ``vmap`` and ``scan``.
      name: the kind of layer (``"dense"``); combinators call the i-th child of a kind ``dense_i``.
      fixed_name: if True, combinators use ``name`` as it is, without a counter (see :func:`named`).
      sublayers: for combinators, ``input_shape -> [(child_name, child, child_input_shape), ...]``;
        ``None`` for a leaf. Used by :func:`jaxnet.summary` to walk a network.
      capture: for combinators, ``apply`` that also returns every sublayer's output by relative
        path (``{"dense_0": y0, "serial_0/dense_0": ...}``, in the order computed); ``None`` for a
        leaf. Used by :func:`intermediates`.
      spec: how the layer was built (its registered constructor and arguments), set by every
        built-in constructor and by :func:`jaxnet.register_layer`; ``None`` for a layer built
        by hand. :func:`jaxnet.to_config` writes it as JSON.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> scale = Layer(lambda key, s: (tuple(s), {"a": jnp.ones(())}, {}),
      ...               lambda p, s, x, *, key=None, train=False: (p["a"] * x, s), "scale")
      >>> scale.init(jax.random.key(0), (2, 3))[0]
      (2, 3)
    """

    init: InitFn
    apply: ApplyFn
    name: str = "layer"
    fixed_name: bool = False
    sublayers: Callable[[Shape], list[tuple[str, Layer, Shape]]] | None = None
    capture: CaptureFn | None = None
    spec: Spec | None = None


class CaptureFn(Protocol):
    """``capture(params, state, x, *, key=None, train=False) -> (y, new_state, outputs)``."""

    def __call__(
        self,
        params: Params,
        state: State,
        x: Array,
        *,
        key: Array | None = None,
        train: bool = False,
    ) -> tuple[Array, State, dict[str, Array]]:
        """Like ``apply``, plus each sublayer's output keyed by its path below this layer."""
        ...


Run = Callable[
    [Params, State, Array, "Array | None", bool, "dict[str, Array] | None"], tuple[Array, State]
]
"""A combinator's body: ``apply`` that records sublayer outputs into a dict when one is given."""


def _apply_and_capture(run: Run) -> tuple[ApplyFn, CaptureFn]:
    """The ``apply`` and ``capture`` functions of a combinator, both from one body."""

    def apply(
        params: Params, state: State, x: Array, *, key: Array | None = None, train: bool = False
    ) -> tuple[Array, State]:
        return run(params, state, x, key, train, None)

    def capture(
        params: Params, state: State, x: Array, *, key: Array | None = None, train: bool = False
    ) -> tuple[Array, State, dict[str, Array]]:
        outputs: dict[str, Array] = {}
        y, new_state = run(params, state, x, key, train, outputs)
        return y, new_state, outputs

    return apply, capture


class ShapeError(ValueError):
    """A wrong input shape, reported with the path of the layer that received it.

    ``str(error)`` reads ``serial/dense_0: expected input (..., 8), got (1, 7)``. Combinators
    prepend their child's name to ``path`` as the error travels up, and set ``root`` to their own.
    """

    def __init__(self, message: str, *, root: str, path: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.root = root
        self.path = path

    def __str__(self) -> str:
        return f"{'/'.join((self.root, *self.path))}: {self.message}"


def as_shape(input_shape: Sequence[int | None], *, layer: str) -> Shape:
    """Validate an ``input_shape`` and read ``-1`` as ``None`` (unknown size).

    Raises:
      TypeError: if ``input_shape`` is not a sequence of ints and Nones.
      ShapeError: if a size is zero, negative (other than -1), or the shape has no axes.
    """
    if not isinstance(input_shape, Sequence) or isinstance(input_shape, str):
        raise TypeError(f"{layer}: input_shape must be a tuple of ints, got {input_shape!r}")
    dims: list[int | None] = []
    for dim in input_shape:
        if dim is None or dim == -1:
            dims.append(None)
        elif isinstance(dim, int | jnp.integer) and not isinstance(dim, bool) and dim > 0:
            dims.append(int(dim))
        else:
            raise ShapeError(
                f"sizes must be positive ints, -1 or None, got {input_shape!r}", root=layer
            )
    if not dims:
        raise ShapeError("input_shape needs at least a batch axis, got ()", root=layer)
    return tuple(dims)


def as_shapes(input_shape: Any, *, layer: str) -> ShapeTree:
    """Validate a shape or a tree of shapes (:data:`ShapeTree`): each shape as :func:`as_shape`
    reads it, lists as tuples, dicts with string keys as they are.

    Raises:
      TypeError: for anything else, or a dict key that is not a string.
      ShapeError: for a bad size, a shape with no axes, or an empty tuple or dict of shapes.
    """
    if isinstance(input_shape, Mapping):
        if not input_shape:
            raise ShapeError("input_shape is an empty dict of shapes", root=layer)
        bad = [key for key in input_shape if not isinstance(key, str)]
        if bad:
            raise TypeError(
                f"{layer}: the keys of a dict of shapes must be strings, got {bad[0]!r}"
            )
        return {key: as_shapes(value, layer=layer) for key, value in input_shape.items()}
    if (
        isinstance(input_shape, tuple | list)
        and input_shape
        and not is_shape(input_shape)
        and all(isinstance(part, tuple | list | Mapping) for part in input_shape)
    ):
        return tuple(as_shapes(part, layer=layer) for part in input_shape)
    return as_shape(input_shape, layer=layer)


def _child_key(key: Array | None, name: str) -> Array | None:
    """The PRNG key of the child called ``name``: the parent's key folded with the name."""
    if key is None:
        return None
    return jax.random.fold_in(key, zlib.crc32(name.encode()) & 0x7FFFFFFF)


def _check_layers(layers: Sequence[Any], combinator: str) -> tuple[Layer, ...]:
    """Reject anything that is not a Layer, naming its position and type."""
    if not layers:
        raise ValueError(f"{combinator}: needs at least one layer, got none")
    for i, layer in enumerate(layers):
        if not isinstance(layer, Layer):
            hint = " (did you pass a constructor without calling it?)" if callable(layer) else ""
            raise TypeError(
                f"{combinator}: argument {i} must be a jaxnet Layer, "
                f"got {type(layer).__name__}: {layer!r}{hint}"
            )
    return tuple(layers)


def _child_names(layers: Sequence[Layer], combinator: str) -> tuple[str, ...]:
    """Name children ``<kind>_<i>`` per kind, or by their fixed name; reject duplicates."""
    counts: dict[str, int] = {}
    names = []
    for layer in layers:
        if layer.fixed_name:
            names.append(layer.name)
        else:
            names.append(f"{layer.name}_{counts.get(layer.name, 0)}")
            counts[layer.name] = counts.get(layer.name, 0) + 1
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"{combinator}: two children share the name {duplicates[0]!r}; rename one")
    return tuple(names)


def _reraise_with_path(error: ShapeError, root: str, child: str) -> ShapeError:
    """The same shape error, one level further up the tree."""
    return ShapeError(error.message, root=root, path=(child, *error.path))


def check_input(x: Any, *, layer: str) -> None:
    """Refuse an ``x`` that is not an array, a tuple or a dict (a tuple such as ``(x, mask)``
    or the inputs of a graph pass on, and so does a list of arrays, which fan-in layers take).

    jaxnet follows ``jax.numpy``, whose functions refuse Python lists (``jnp.tanh([1.0])`` is a
    TypeError): converting one silently would copy it to the device on every call, and a list
    of two rows would read as an ``(x, mask)`` pair.

    Raises:
      TypeError: ``serial: x must be an array (jax or NumPy), got list; ...``.
    """
    if isinstance(x, list) and x and all(_is_array_tree(part) for part in x):
        return  # a list of arrays (stax's fan-in layers take lists) is a tuple
    if not isinstance(x, jax.Array | np.ndarray | np.generic | tuple | Mapping):
        raise TypeError(
            f"{layer}: x must be an array (jax or NumPy), got {type(x).__name__}; "
            "convert it with jnp.asarray(x)"
        )


def _is_array_tree(x: Any) -> bool:
    """An array, or a tuple or dict of arrays (the inputs of a layer of several inputs)."""
    if isinstance(x, tuple | list):
        return all(_is_array_tree(part) for part in x)
    if isinstance(x, Mapping):
        return all(_is_array_tree(part) for part in x.values())
    return isinstance(x, jax.Array | np.ndarray | np.generic)


def _entries(tree: Any) -> dict[str, tuple[int, ...]]:
    """Every leaf of a params or state tree as ``{"query/w": shape}``."""
    return {
        "/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path): tuple(np.shape(leaf))
        for path, leaf in jax.tree_util.tree_leaves_with_path(tree)
    }


def _listed(names: Collection[str], one: str, many: str) -> str:
    """``one 'w'`` or ``many 'b', 'w'``: a sorted list of entries, quoted."""
    return f"{one if len(names) == 1 else many} {', '.join(map(repr, sorted(names)))}"


_FOREIGN = "; were they made by this net's init?"


def _mismatch(kind: str, given: Any, expected: Any, input_shape: Shape) -> str | None:
    """How ``given`` params (or state) differ from what init makes, or None if they agree."""
    have, want = _entries(given), _entries(expected)
    missing = set(want) - set(have)
    if missing:
        return f"{kind} lack {_listed(missing, 'the entry', 'the entries')}"
    unexpected = set(have) - set(want)
    if unexpected:
        return f"{kind} hold {_listed(unexpected, 'an unexpected entry', 'unexpected entries')}"
    for path, shape in want.items():
        if have[path] != shape:
            noun = "param" if kind == "params" else kind
            return (
                f"expected {noun} {path} of shape {format_shape(shape)} for input "
                f"{format_shape(input_shape)}, got {format_shape(have[path])}"
            )
    return None


@functools.lru_cache(maxsize=1024)  # a memo of a pure function: eager applies repeat it
def _abstract_init(layer: Layer, input_shape: Shape) -> tuple[Params, State]:
    return jax.eval_shape(lambda: layer.init(jax.random.key(0), input_shape)[1:])


def _made_by_init(layer: Layer, input_shape: ShapeTree) -> tuple[Params, State] | None:
    """The params and state (as shapes) ``layer.init`` makes for ``input_shape``, computed
    abstractly (``jax.eval_shape``: nothing is allocated); None if init refuses the shape, so
    that ``apply`` reports the input in its own words."""
    try:
        return _abstract_init(layer, input_shape)
    except TypeError:  # unhashable (a dict of shapes): the same, not memoized
        try:
            return _abstract_init.__wrapped__(layer, input_shape)
        except Exception:
            return None
    except Exception:  # any refusal: not this check's to report
        return None


def _leaf_mismatch(layer: Layer, params: Params, state: State, x: Any) -> str | None:
    """How a leaf layer's params or state differ from what its init makes for ``x``'s shape:
    a missing or unexpected entry, or a shape (``expected param w of shape (4, 3) for input
    (2, 4), got (4, 5)``); None if they agree or ``layer`` is a combinator (which checks its
    own children, so every leaf of every family is checked once, where it is applied).

    Runs at trace time (``jax.eval_shape`` of init), so it costs nothing inside ``jit``.
    """
    if layer.sublayers is not None or not _is_array_tree(x):
        return None
    input_shape = shape_of(x)
    expected = _made_by_init(layer, input_shape)
    if expected is None and isinstance(x, tuple) and x and hasattr(x[0], "shape"):
        input_shape = tuple(x[0].shape)  # (x, mask): init takes x's shape
        expected = _made_by_init(layer, input_shape)
    if expected is None:
        return None
    for kind, given, made in (("params", params, expected[0]), ("state", state, expected[1])):
        problem = _mismatch(kind, given, made, input_shape)
        if problem is not None:
            return problem + _FOREIGN
    return None


def _check_unexpected_children(
    names: Sequence[str], root: str, params: Params, state: State
) -> None:
    """A combinator's params and state hold entries only for its own children.

    Raises:
      ShapeError: ``serial: params hold an unexpected entry 'dense_2'; were they made by this
        net's init?``.
    """
    for kind, tree in (("params", params), ("state", state)):
        unexpected = set(tree) - set(names) if isinstance(tree, dict) else set()
        if unexpected:
            entries = _listed(unexpected, "an unexpected entry", "unexpected entries")
            raise ShapeError(f"{kind} hold {entries}{_FOREIGN}", root=root)


def _init_child(
    layer: Layer, name: str, root: str, key: Array, shape: Shape
) -> tuple[Shape, Params, State]:
    try:
        return layer.init(_child_key(key, name), shape)  # type: ignore[arg-type]
    except ShapeError as error:
        raise _reraise_with_path(error, root, name) from None


def _apply_child(
    layer: Layer,
    name: str,
    root: str,
    params: Params,
    state: State,
    x: Array,
    key: Array | None,
    train: bool,
    outputs: dict[str, Array] | None,
    *,
    input_from_sibling: bool = False,
) -> tuple[Array, State]:
    """Apply the child called ``name``; record its output (and its sublayers') into ``outputs``.

    Params or state that this child's init would not make (another net's: a missing or
    unexpected entry, another shape) become a :class:`ShapeError` naming the child and the
    entry, whether applying them failed (a raw reshape or ``dot_general`` error, a KeyError) or
    quietly succeeded. The layer's own input check speaks first (a wrong input stays
    ``expected input (..., 8), got (1, 7)``), unless ``input_from_sibling``: an input made by
    the checked layers before it in a ``serial`` is right, so its params are to blame.
    """
    args = (params.get(name, {}), state.get(name, {}), x)
    child_key = _child_key(key, name)
    try:
        with jax.named_scope(name):  # the path shows up in profiles and HLO metadata
            if outputs is None or layer.capture is None:
                y, new_state = layer.apply(*args, key=child_key, train=train)
            else:
                y, new_state, inner = layer.capture(*args, key=child_key, train=train)
                outputs.update({f"{name}/{path}": value for path, value in inner.items()})
    except ShapeError as error:
        problem = _leaf_mismatch(layer, *args) if input_from_sibling else None
        if problem is not None:
            raise ShapeError(problem, root=root, path=(name,)) from None
        raise _reraise_with_path(error, root, name) from None
    except Exception as error:  # re-raised below unless the params explain it
        problem = _leaf_mismatch(layer, *args)
        if problem is None and isinstance(error, KeyError):
            problem = f"params or state lack the entry {error.args[0]!r}{_FOREIGN}"
        if problem is None:
            raise
        raise ShapeError(problem, root=root, path=(name,)) from None
    problem = _leaf_mismatch(layer, *args)
    if problem is not None:
        raise ShapeError(problem, root=root, path=(name,))
    if outputs is not None:
        outputs[name] = y
    return y, new_state


def _put(tree: dict[str, Any], name: str, value: dict[str, Any]) -> None:
    """Store a child's params or state under its name, leaving out empty ones."""
    if value:
        tree[name] = value


@described("serial")
def serial(*layers: Layer) -> Layer:
    """Chain layers: the output of each is the input of the next (stax's ``serial``).

    Args:
      *layers: the layers, in order.

    Returns:
      A layer whose params are ``{child_name: child_params}`` for children with parameters.

    Raises:
      TypeError: if an argument is not a :class:`Layer`.
      ValueError: if no layer is given or two children share a name.

    Example:
      >>> import jax, jaxnet as jn
      >>> net = jn.serial(jn.nn.Dense(9), jn.nn.Sigmoid, jn.nn.Dense(4))
      >>> shape, params, state = net.init(jax.random.key(0), (1, 8))
      >>> shape, sorted(params)
      ((1, 4), ['dense_0', 'dense_1'])
    """
    layers = _check_layers(layers, "serial")
    names = _child_names(layers, "serial")

    def init(key: Array, input_shape: Sequence[int | None]) -> tuple[Shape, Params, State]:
        shape = as_shapes(input_shape, layer="serial")
        params: Params = {}
        state: State = {}
        for name, layer in zip(names, layers, strict=True):
            shape, p, s = _init_child(layer, name, "serial", key, shape)
            _put(params, name, p)
            _put(state, name, s)
        return shape, params, state

    def run(
        params: Params,
        state: State,
        x: Array,
        key: Array | None,
        train: bool,
        outputs: dict[str, Array] | None,
    ) -> tuple[Array, State]:
        check_input(x, layer="serial")
        _check_unexpected_children(names, "serial", params, state)
        new_state: State = {}
        for i, (name, layer) in enumerate(zip(names, layers, strict=True)):
            x, s = _apply_child(
                layer,
                name,
                "serial",
                params,
                state,
                x,
                key,
                train,
                outputs,
                input_from_sibling=i > 0,
            )
            _put(new_state, name, s)
        return x, new_state

    def sublayers(input_shape: Shape) -> list[tuple[str, Layer, Shape]]:
        rows = []
        shape = as_shapes(input_shape, layer="serial")
        for name, layer in zip(names, layers, strict=True):
            rows.append((name, layer, shape))
            shape = output_shape(layer, shape)
        return rows

    apply, capture = _apply_and_capture(run)
    return Layer(init, apply, "serial", sublayers=sublayers, capture=capture)


_COMBINE = ("concat", "sum")


def _combine_shapes(shapes: list[Shape], combine: str) -> Shape:
    """The output shape of ``parallel``, or a ShapeError naming the branch that disagrees."""
    first = shapes[0]
    for i, shape in enumerate(shapes[1:], start=1):
        same = shape[:-1] == first[:-1] if combine == "concat" else shape == first
        if len(shape) != len(first) or not same:
            need = "all but the last axis equal" if combine == "concat" else "equal shapes"
            raise ShapeError(
                f"combine={combine!r} needs {need}; branch 0 gives "
                f"{format_shape(first)}, branch {i} gives {format_shape(shape)}",
                root="parallel",
            )
    if combine == "sum":
        return first
    last = [s[-1] for s in shapes]
    width = None if None in last else sum(d for d in last if d is not None)
    return (*first[:-1], width)


@described("parallel")
def parallel(*layers: Layer, combine: str = "concat") -> Layer:
    """Feed the same input to every branch, then concatenate or sum their outputs.

    Args:
      *layers: the branches.
      combine: ``"concat"`` joins the outputs along the last axis; ``"sum"`` adds them (all
        branches must then give the same shape).

    Raises:
      ValueError: for an unknown ``combine`` word, or no branch.
      TypeError: if a branch is not a :class:`Layer`.
      ShapeError: at ``init``, if the branches' output shapes cannot be combined.

    Example:
      >>> import jax, jaxnet as jn
      >>> net = jn.parallel(jn.nn.Dense(3), jn.nn.Dense(5))
      >>> net.init(jax.random.key(0), (2, 4))[0]
      (2, 8)
    """
    if combine not in _COMBINE:
        raise ValueError(f"parallel: combine must be one of {_COMBINE}, got {combine!r}")
    layers = _check_layers(layers, "parallel")
    names = _child_names(layers, "parallel")

    def init(key: Array, input_shape: Sequence[int | None]) -> tuple[Shape, Params, State]:
        shape = as_shapes(input_shape, layer="parallel")
        shapes: list[Shape] = []
        params: Params = {}
        state: State = {}
        for name, layer in zip(names, layers, strict=True):
            out, p, s = _init_child(layer, name, "parallel", key, shape)
            shapes.append(out)
            _put(params, name, p)
            _put(state, name, s)
        return _combine_shapes(shapes, combine), params, state

    def run(
        params: Params,
        state: State,
        x: Array,
        key: Array | None,
        train: bool,
        outputs: dict[str, Array] | None,
    ) -> tuple[Array, State]:
        check_input(x, layer="parallel")
        _check_unexpected_children(names, "parallel", params, state)
        branches: list[Array] = []
        new_state: State = {}
        for name, layer in zip(names, layers, strict=True):
            y, s = _apply_child(layer, name, "parallel", params, state, x, key, train, outputs)
            branches.append(y)
            _put(new_state, name, s)
        _combine_shapes([y.shape for y in branches], combine)
        if combine == "concat":
            return jnp.concatenate(branches, axis=-1), new_state
        return sum(branches[1:], start=branches[0]), new_state

    def sublayers(input_shape: Shape) -> list[tuple[str, Layer, Shape]]:
        shape = as_shapes(input_shape, layer="parallel")
        return [(name, layer, shape) for name, layer in zip(names, layers, strict=True)]

    apply, capture = _apply_and_capture(run)
    return Layer(init, apply, "parallel", sublayers=sublayers, capture=capture)


@described("residual")
def residual(layer: Layer) -> Layer:
    """A skip connection: ``y = x + layer(x)``; the layer must keep the shape of its input.

    Raises:
      TypeError: if ``layer`` is not a :class:`Layer`.
      ShapeError: at ``init``, if the layer changes the shape.

    Example:
      >>> import jax, jaxnet as jn
      >>> block = jn.residual(jn.serial(jn.nn.Dense(4), jn.nn.Relu))
      >>> block.init(jax.random.key(0), (2, 4))[0]
      (2, 4)
    """
    (layer,) = _check_layers((layer,), "residual")
    (name,) = _child_names((layer,), "residual")

    def init(key: Array, input_shape: Sequence[int | None]) -> tuple[Shape, Params, State]:
        shape = as_shape(input_shape, layer="residual")
        out, p, s = _init_child(layer, name, "residual", key, shape)
        if out != shape:
            raise ShapeError(
                f"the inner layer must keep the input shape {format_shape(shape)}, "
                f"but gives {format_shape(out)}",
                root="residual",
            )
        return shape, ({name: p} if p else {}), ({name: s} if s else {})

    def run(
        params: Params,
        state: State,
        x: Array,
        key: Array | None,
        train: bool,
        outputs: dict[str, Array] | None,
    ) -> tuple[Array, State]:
        check_input(x, layer="residual")
        _check_unexpected_children((name,), "residual", params, state)
        y, s = _apply_child(layer, name, "residual", params, state, x, key, train, outputs)
        return x + y, ({name: s} if s else {})

    def sublayers(input_shape: Shape) -> list[tuple[str, Layer, Shape]]:
        return [(name, layer, as_shape(input_shape, layer="residual"))]

    apply, capture = _apply_and_capture(run)
    return Layer(init, apply, "residual", sublayers=sublayers, capture=capture)


@described("named")
def named(name: str, layer: Layer) -> Layer:
    """Give a layer a name of your own, used as its key in params and in error paths.

    ``jn.serial(jn.named("hidden", jn.nn.Dense(9)), jn.nn.Dense(4))`` has params
    ``{"hidden": ..., "dense_0": ...}``.

    Raises:
      ValueError: if ``name`` is empty or contains ``/`` (the path separator).
      TypeError: if ``name`` is not a string or ``layer`` not a :class:`Layer`.
    """
    if not isinstance(name, str):
        raise TypeError(f"named: name must be a string, got {type(name).__name__}")
    if not name or "/" in name:
        raise ValueError(f"named: name must be non-empty and contain no '/', got {name!r}")
    (layer,) = _check_layers((layer,), "named")

    def init(key: Array, input_shape: Sequence[int | None]) -> tuple[Shape, Params, State]:
        try:
            return layer.init(key, input_shape)
        except ShapeError as error:
            raise ShapeError(error.message, root=name, path=error.path) from None

    def apply(
        params: Params, state: State, x: Array, *, key: Array | None = None, train: bool = False
    ) -> tuple[Array, State]:
        check_input(x, layer=name)
        try:
            return layer.apply(params, state, x, key=key, train=train)
        except ShapeError as error:
            raise ShapeError(error.message, root=name, path=error.path) from None

    def capture(
        params: Params, state: State, x: Array, *, key: Array | None = None, train: bool = False
    ) -> tuple[Array, State, dict[str, Array]]:
        assert layer.capture is not None  # only used when the wrapped layer has one
        try:
            return layer.capture(params, state, x, key=key, train=train)
        except ShapeError as error:
            raise ShapeError(error.message, root=name, path=error.path) from None

    return Layer(
        init,
        apply,
        name,
        fixed_name=True,
        sublayers=layer.sublayers,
        capture=None if layer.capture is None else capture,
    )


def param_paths(params: Params) -> list[str]:
    """The ``/``-joined path of every parameter array: ``["dense_0/b", "dense_0/w", ...]``."""
    return [
        "/".join(str(getattr(k, "key", k)) for k in path)
        for path, _ in jax.tree_util.tree_leaves_with_path(params)
    ]


def output_shape(layer: Layer, input_shape: Sequence[int | None]) -> Shape:
    """The output shape ``layer`` infers for ``input_shape``, without creating any parameters.

    Runs ``init`` abstractly (``jax.eval_shape``), so it costs no memory or compute even for
    very large layers.
    """
    result: list[Shape] = []

    def shapes_only(key: Array) -> tuple[Params, State]:
        shape, params, state = layer.init(key, input_shape)
        result.append(shape)
        return params, state

    jax.eval_shape(shapes_only, jax.random.key(0))
    return result[0]


@described("elementwise")
def elementwise(fn: Callable[[Array], Array], name: str) -> Layer:
    """A layer without parameters that applies ``fn`` to its input and keeps its shape.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> square = elementwise(jnp.square, "square")
      >>> square.apply({}, {}, jnp.array([1.0, 2.0]))[0]
      Array([1., 4.], dtype=float32)
    """

    def init(key: Array, input_shape: Sequence[int | None]) -> tuple[Shape, Params, State]:
        return as_shape(input_shape, layer=name), {}, {}

    def apply(
        params: Params, state: State, x: Array, *, key: Array | None = None, train: bool = False
    ) -> tuple[Array, State]:
        return fn(x), state

    return Layer(init, apply, name)


def intermediates(
    net: Layer,
    params: Params,
    state: State,
    x: Array,
    *,
    key: Array | None = None,
    train: bool = False,
) -> dict[str, Array]:
    """Every layer's output for input ``x``, keyed by path.

    Called eagerly, the dict is in the order the outputs were computed (forward order); under
    ``jit`` JAX returns dicts with sorted keys.

    The forward propagation made visible: ``{"serial/dense_0": ..., "serial/sigmoid_0": ...,
    ..., "serial": y}``. Combinators appear after their sublayers, holding their own output.
    Works under ``jit``; useful for plotting activations and for finding where values go
    non-finite.

    Example:
      >>> import jax, jax.numpy as jnp, jaxnet as jn
      >>> net = jn.serial(jn.nn.Dense(3), jn.nn.Relu)
      >>> _, params, state = net.init(jax.random.key(0), (2, 4))
      >>> list(jn.intermediates(net, params, state, jnp.ones((2, 4))))
      ['serial/dense_0', 'serial/relu_0', 'serial']
    """
    if net.capture is None:
        y, _ = net.apply(params, state, x, key=key, train=train)
        return {net.name: y}
    y, _, outputs = net.capture(params, state, x, key=key, train=train)
    return {**{f"{net.name}/{path}": value for path, value in outputs.items()}, net.name: y}
