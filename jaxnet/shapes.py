"""Shapes and trees of shapes: the ground floor that layers, data and training all read.

A shape is a tuple of ints whose batch axis may be ``None``; a tree of shapes (a tuple or a
dict of them) describes a layer of several inputs or outputs. This module imports nothing of
jaxnet, so :mod:`jaxnet.data` can use it without knowing any layer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

__all__ = ["Shape", "ShapeTree", "format_shape", "is_shape", "map_shapes", "shape_of"]

Shape = tuple[int | None, ...]
"""An array shape whose batch axis (the first) may be ``None`` for unknown."""
ShapeTree = Any
"""The shape of what a layer takes or returns: one array's :data:`Shape`, or a tuple (a list
reads as a tuple) or a dict with string keys of shape trees, for layers of several inputs or
outputs: ``((None, 8), (None, 4))``, ``{"image": (None, 8, 8, 1), "age": (None, 1)}``."""


def format_shape(shape: ShapeTree) -> str:
    """Write a shape (or a tree of shapes) as Python does, with ``None`` for an unknown size:
    ``(None, 8)``, ``((None, 8), (None, 4))``."""
    return repr(map_shapes(tuple, shape))


def is_shape(value: Any) -> bool:
    """True for one array's shape (a tuple or list of ints and Nones), False for a tree of them."""
    return isinstance(value, tuple | list) and all(
        dim is None or (isinstance(dim, int | np.integer) and not isinstance(dim, bool))
        for dim in value
    )


def map_shapes(fn: Callable[[Shape], Any], shapes: ShapeTree) -> Any:
    """``fn`` applied to every shape of a :data:`ShapeTree`, keeping its tuples and dicts."""
    if isinstance(shapes, Mapping):
        return {key: map_shapes(fn, value) for key, value in shapes.items()}
    if isinstance(shapes, tuple | list) and not is_shape(shapes):
        return tuple(map_shapes(fn, part) for part in shapes)
    return fn(tuple(shapes))


def shape_of(x: Any) -> ShapeTree:
    """The :data:`ShapeTree` of an array or a tuple, list or dict of arrays."""
    if isinstance(x, Mapping):
        return {key: shape_of(value) for key, value in x.items()}
    if isinstance(x, tuple | list):
        return tuple(shape_of(part) for part in x)
    return tuple(np.shape(x))
