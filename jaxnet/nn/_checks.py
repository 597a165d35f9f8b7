"""Argument and shape checks shared by the layer constructors.

Hyperparameters are checked when a layer is built, before any tracing; input shapes are checked
at trace time with chex, and a failure becomes a :class:`jaxnet.ShapeError` that names the layer
and both shapes instead of a raw XLA error.
"""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Sequence
from typing import Any

import chex
import jax.numpy as jnp
from jax.nn.initializers import Initializer

from jaxnet.core import Array, ShapeError, check_input, format_shape


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
      TypeError: if ``x`` is not an array (a Python list, say); see :func:`jaxnet.core.check_input`.
      ShapeError: ``<layer>: expected input (..., 8), got (1, 7)``.
    """
    check_input(x, layer=layer)
    try:
        chex.assert_shape(x, tuple(expected))
    except AssertionError:
        dims = ["..." if d is Ellipsis else str(d) for d in expected]
        shown = f"({dims[0]},)" if len(dims) == 1 else f"({', '.join(dims)})"
        raise ShapeError(f"expected {what} {shown}, got {tuple(x.shape)}", root=layer) from None


def real_number(value: Any, *, layer: str, argument: str) -> float:
    """``value`` as a float if it is a real number (bools excluded), else a ``TypeError``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{layer}: {argument} must be a number, got {type(value).__name__} {value!r}"
        )
    return float(value)


def fraction(value: Any, *, layer: str, argument: str) -> float:
    """``value`` as a float in ``[0, 1)``, else a ``TypeError`` or ``ValueError`` naming it."""
    number = real_number(value, layer=layer, argument=argument)
    if not 0.0 <= number < 1.0:  # also rejects NaN
        raise ValueError(f"{layer}: {argument} must be in [0, 1), got {value!r}")
    return number


def positive_number(value: Any, *, layer: str, argument: str) -> float:
    """``value`` as a finite float above zero, else a ``TypeError`` or ``ValueError``."""
    number = real_number(value, layer=layer, argument=argument)
    if not (number > 0.0 and math.isfinite(number)):
        raise ValueError(f"{layer}: {argument} must be a positive number, got {value!r}")
    return number


def flag(value: Any, *, layer: str, argument: str) -> bool:
    """``value`` if it is a bool, else a ``TypeError`` (``use_bias=1`` is a likely typo)."""
    if not isinstance(value, bool):
        raise TypeError(f"{layer}: {argument} must be a bool, got {type(value).__name__} {value!r}")
    return value


def initializer(value: Any, *, layer: str, argument: str) -> Initializer:
    """``value`` if it is callable (a ``jax.nn.initializers`` initializer), else a TypeError."""
    if not callable(value):
        raise TypeError(
            f"{layer}: {argument} must be an initializer, a function (key, shape, dtype) -> "
            f"array such as jax.nn.initializers.ones, got {type(value).__name__} {value!r}"
        )
    return value


def callable_arg(value: Any, *, layer: str, argument: str) -> Any:
    """``value`` if it is callable, else a TypeError naming the argument."""
    if not callable(value):
        raise TypeError(f"{layer}: {argument} must be callable, got {type(value).__name__}")
    return value


def check_mask(mask: Any, expected: tuple[int, ...], *, layer: str) -> Array:
    """The mask as an array, if it is bool and of shape ``expected``; else a clear error."""
    mask = jnp.asarray(mask)
    if mask.dtype != jnp.bool_:
        raise TypeError(f"{layer}: mask must be a bool array (True = real step), got {mask.dtype}")
    if tuple(mask.shape) != expected:
        raise ShapeError(
            f"expected mask {format_shape(expected)} (the input's batch and time axes), "
            f"got {format_shape(mask.shape)}",
            root=layer,
        )
    return mask


def split_input(inputs: Any, *, layer: str) -> tuple[Array, Any]:
    """``x`` or ``(x, mask)`` -> ``(x, mask or None)``."""
    if isinstance(inputs, tuple | list):
        if len(inputs) != 2:
            raise TypeError(
                f"{layer}: input must be an array x or a pair (x, mask), "
                f"got a {type(inputs).__name__} of {len(inputs)}"
            )
        return jnp.asarray(inputs[0]), inputs[1]
    return jnp.asarray(inputs), None
