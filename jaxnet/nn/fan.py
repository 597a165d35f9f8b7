"""Layers of several arrays: ``FanOut``, ``FanInSum``, ``FanInConcat`` and ``Select``.

They are stax's fan layers: ``FanOut(n)`` turns one array into a tuple of ``n`` copies, the
fan-in layers join a tuple (or list) of arrays into one, and ``Select`` takes one element of a
tuple or dict. With :func:`jaxnet.each` (stax's ``parallel``: the i-th layer on the i-th
element) they write branching nets inside a ``serial``; :func:`jaxnet.graph` writes the same
nets by naming each node's inputs. None of them has parameters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax.numpy as jnp

from jaxnet.core import (
    Array,
    Layer,
    Params,
    ShapeError,
    ShapeTree,
    State,
    as_shapes,
    format_shape,
    is_shape,
    shape_of,
)
from jaxnet.describe import described, described_instance


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@described("nn.FanOut")
def FanOut(num: int) -> Layer:
    """``num`` copies of the input, as a tuple: the start of ``num`` branches.

    Args:
      num: how many copies, at least 1.

    Raises:
      ValueError: if ``num`` is not a positive int.

    Example:
      >>> import jax, jaxnet as jn
      >>> jn.nn.FanOut(2).init(jax.random.key(0), (1, 8))[0]
      ((1, 8), (1, 8))
    """
    if not _is_int(num) or num < 1:
        raise ValueError(f"FanOut: num must be a positive int, got {num!r}")

    def init(key: Array, input_shape: Any) -> tuple[ShapeTree, Params, State]:
        shape = as_shapes(input_shape, layer="fan_out")
        return (shape,) * num, {}, {}

    def apply(
        params: Params, state: State, x: Any, *, key: Array | None = None, train: bool = False
    ) -> tuple[Any, State]:
        return (x,) * num, state

    return Layer(init, apply, "fan_out")


def _many_shapes(input_shape: Any, *, layer: str) -> tuple[tuple[int | None, ...], ...]:
    """A tuple (or list) of at least one array shape, or a ShapeError saying what came."""
    if is_shape(input_shape) or not isinstance(input_shape, tuple | list) or not input_shape:
        raise ShapeError(
            f"expects a tuple of array shapes (one per input), got {input_shape!r}", root=layer
        )
    shapes = as_shapes(input_shape, layer=layer)
    if not all(is_shape(shape) for shape in shapes):
        raise ShapeError(
            f"expects a tuple of array shapes (one per input), got {format_shape(shapes)}",
            root=layer,
        )
    return tuple(tuple(shape) for shape in shapes)


def _many_arrays(x: Any, *, layer: str) -> tuple[Array, ...]:
    """The inputs of a fan-in layer as a tuple of arrays (a list is taken as one)."""
    if not isinstance(x, tuple | list) or not x or not all(hasattr(a, "shape") for a in x):
        got = type(x).__name__ if not hasattr(x, "shape") else f"one array {x.shape}"
        raise TypeError(f"{layer}: expects a tuple (or list) of arrays, got {got}")
    return tuple(x)


def _sum_shape(shapes: Sequence[tuple[int | None, ...]]) -> tuple[int | None, ...]:
    for i, shape in enumerate(shapes[1:], start=1):
        if shape != shapes[0]:
            raise ShapeError(
                f"inputs must have equal shapes; input 0 is {format_shape(shapes[0])}, "
                f"input {i} is {format_shape(shape)}",
                root="fan_in_sum",
            )
    return shapes[0]


def _fan_in_sum() -> Layer:
    def init(key: Array, input_shape: Any) -> tuple[ShapeTree, Params, State]:
        return _sum_shape(_many_shapes(input_shape, layer="fan_in_sum")), {}, {}

    def apply(
        params: Params, state: State, x: Any, *, key: Array | None = None, train: bool = False
    ) -> tuple[Array, State]:
        inputs = _many_arrays(x, layer="fan_in_sum")
        _sum_shape(shape_of(inputs))
        return sum(inputs[1:], start=inputs[0]), state

    return Layer(init, apply, "fan_in_sum")


FanInSum = described_instance("nn.FanInSum", _fan_in_sum())
"""The element-wise sum of a tuple of arrays of one shape (stax's ``FanInSum``).

>>> import jax, jaxnet as jn
>>> jn.nn.FanInSum.init(jax.random.key(0), ((1, 8), (1, 8)))[0]
(1, 8)
"""


def _concat_shape(shapes: Sequence[tuple[int | None, ...]], axis: int) -> tuple[int | None, ...]:
    """The shape of ``jnp.concatenate(inputs, axis)``, or a ShapeError naming the input that
    does not fit."""
    rank = len(shapes[0])
    if not -rank <= axis < rank:
        raise ShapeError(
            f"axis {axis} is out of range for inputs of rank {rank} "
            f"(input 0 is {format_shape(shapes[0])})",
            root="fan_in_concat",
        )
    ax = axis % rank
    for i, shape in enumerate(shapes[1:], start=1):
        others = shape[:ax] + shape[ax + 1 :] if len(shape) == rank else None
        if others != shapes[0][:ax] + shapes[0][ax + 1 :]:
            raise ShapeError(
                f"inputs must agree on every axis but axis {axis}; input 0 is "
                f"{format_shape(shapes[0])}, input {i} is {format_shape(shape)}",
                root="fan_in_concat",
            )
    sizes = [shape[ax] for shape in shapes]
    joined = None if None in sizes else sum(size for size in sizes if size is not None)
    return (*shapes[0][:ax], joined, *shapes[0][ax + 1 :])


@described("nn.FanInConcat")
def FanInConcat(axis: int = -1) -> Layer:
    """A tuple of arrays joined along ``axis`` (stax's ``FanInConcat``): a U-Net's skip
    connection joins the upsampled map and the encoder's map on the channel axis (-1).

    Args:
      axis: the axis to join along; negative counts from the end. The inputs must agree on
        every other axis.

    Raises:
      TypeError: if ``axis`` is not an int.
      ShapeError: at ``init`` or on apply, if ``axis`` is out of range or the shapes disagree
        elsewhere; the message names the input.

    Example:
      >>> import jax, jaxnet as jn
      >>> jn.nn.FanInConcat(axis=1).init(jax.random.key(0), ((1, 2, 4), (1, 1, 4)))[0]
      (1, 3, 4)
    """
    if not _is_int(axis):
        raise TypeError(f"FanInConcat: axis must be an int, got {axis!r}")

    def init(key: Array, input_shape: Any) -> tuple[ShapeTree, Params, State]:
        return _concat_shape(_many_shapes(input_shape, layer="fan_in_concat"), axis), {}, {}

    def apply(
        params: Params, state: State, x: Any, *, key: Array | None = None, train: bool = False
    ) -> tuple[Array, State]:
        inputs = _many_arrays(x, layer="fan_in_concat")
        _concat_shape(shape_of(inputs), axis)
        return jnp.concatenate(inputs, axis=axis), state

    return Layer(init, apply, "fan_in_concat")


def _selected(tree: Any, index: int | str, *, layer: str, what: str) -> Any:
    """Element ``index`` of a tuple or dict of ``what`` (shapes or arrays), or a clear error."""
    if isinstance(index, str):
        if not isinstance(tree, Mapping) or index not in tree:
            keys = sorted(tree) if isinstance(tree, Mapping) else None
            raise ShapeError(
                f"has no input {index!r}; "
                + (f"the dict holds {keys}" if keys is not None else f"got {what} {tree!r}"),
                root=layer,
            )
        return tree[index]
    if not isinstance(tree, tuple | list) or (what == "shapes" and is_shape(tree)):
        raise ShapeError(f"expects a tuple to select from, got {what} {tree!r}", root=layer)
    if not -len(tree) <= index < len(tree):
        raise ShapeError(
            f"index {index} is out of range for a tuple of {len(tree)} {what}", root=layer
        )
    return tree[index]


@described("nn.Select")
def Select(index: int | str) -> Layer:
    """One element of a tuple (by position) or of a dict (by key): a branch of a net with
    several outputs, or one input of several.

    Args:
      index: an int for a tuple (negative counts from the end), a string for a dict.

    Raises:
      TypeError: if ``index`` is neither an int nor a string.
      ShapeError: at ``init`` or on apply, if the input has no such element.

    Example:
      >>> import jax, jaxnet as jn
      >>> jn.nn.Select(1).init(jax.random.key(0), ((1, 8), (1, 4)))[0]
      (1, 4)
    """
    if not (_is_int(index) or isinstance(index, str)):
        raise TypeError(f"Select: index must be an int or a string, got {index!r}")

    def init(key: Array, input_shape: Any) -> tuple[ShapeTree, Params, State]:
        shapes = as_shapes(input_shape, layer="select")
        return _selected(shapes, index, layer="select", what="shapes"), {}, {}

    def apply(
        params: Params, state: State, x: Any, *, key: Array | None = None, train: bool = False
    ) -> tuple[Any, State]:
        if hasattr(x, "shape"):
            raise TypeError(f"select: expects a tuple or dict of arrays, got one array {x.shape}")
        return _selected(x, index, layer="select", what="arrays"), state

    return Layer(init, apply, "select")
