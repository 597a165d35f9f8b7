"""Argument and shape checks shared by the layer constructors.

Hyperparameters are checked when a layer is built, before any tracing; input shapes are checked
at trace time with chex, and a failure becomes a :class:`jaxnet.ShapeError` that names the layer
and both shapes instead of a raw XLA error.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import chex

from jaxnet.core import Array, ShapeError


def positive_int(value: Any, *, layer: str, argument: str) -> int:
    """``value`` as an int if it is a positive integer (bools excluded), else a clear error.

    Raises:
      TypeError: if ``value`` is not an integer (``Dense(2.5)``).
      ValueError: if it is zero or negative (``Dense(0)``, ``Dense(-3)``).
    """
    if isinstance(value, bool):
        raise TypeError(f"{layer}: {argument} must be a positive int, got bool {value!r}")
    try:
        number = operator.index(value)
    except TypeError:
        raise TypeError(
            f"{layer}: {argument} must be a positive int, got {type(value).__name__} {value!r}"
        ) from None
    if number <= 0:
        raise ValueError(f"{layer}: {argument} must be a positive int, got {number}")
    return number


def expect_shape(x: Array, expected: Sequence[Any], *, layer: str, what: str = "input") -> None:
    """Check ``x.shape`` against ``expected`` (``...`` and ``None`` are wildcards, as in chex).

    Raises:
      ShapeError: ``<layer>: expected input (..., 8), got (1, 7)``.
    """
    try:
        chex.assert_shape(x, tuple(expected))
    except AssertionError:
        dims = ["..." if d is Ellipsis else str(d) for d in expected]
        shown = f"({dims[0]},)" if len(dims) == 1 else f"({', '.join(dims)})"
        raise ShapeError(f"expected {what} {shown}, got {tuple(x.shape)}", root=layer) from None
