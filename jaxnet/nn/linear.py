"""Linear and shape layers: ``Dense`` (x·W + b), ``Identity``, ``Flatten``, ``Reshape``."""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp

from jaxnet.core import (
    Array,
    Layer,
    Params,
    Shape,
    ShapeError,
    State,
    as_shape,
    elementwise,
    format_shape,
)
from jaxnet.describe import described, described_instance
from jaxnet.nn._checks import expect_shape, initializer, positive_int

Initializer = jax.nn.initializers.Initializer
LECUN_NORMAL = jax.nn.initializers.lecun_normal()
"""Dense's default weight initializer: normal with variance 1/in_features."""


@described("nn.Dense")
def Dense(
    features: int,
    *,
    use_bias: bool = True,
    w_init: Initializer = LECUN_NORMAL,
    b_init: Initializer = jax.nn.initializers.zeros,
) -> Layer:
    """A fully connected layer: ``y = x · W + b``, the lecture's ``1×8 · 8×9 = 1×9``.

    Params are ``{"w": (in_features, features), "b": (features,)}``; ``x`` may have any number
    of leading axes, ``(..., in_features) -> (..., features)``.

    Defaults: ``w`` is drawn from LeCun normal (variance ``1/in_features``, as Flax does), which
    keeps the variance of ``x · W`` close to that of ``x`` so deep sigmoid and tanh nets start in
    their sensitive range; for deep ReLU nets pass ``w_init=jn.nn.initializer("he_normal")``
    (variance ``2/in_features``). ``b`` starts at zero: random ``w`` already breaks symmetry.

    Args:
      features: output width (a hyperparameter), a positive int.
      use_bias: add ``b``; without it, params are ``{"w"}`` only.
      w_init: a ``jax.nn.initializers`` initializer for ``w``.
      b_init: an initializer for ``b``.

    Raises:
      TypeError, ValueError: at construction, if ``features`` is not a positive int or an
        initializer is not callable.
      ShapeError: at ``init`` or trace time, if the last input axis does not match ``w``.

    Example:
      >>> import jax, jaxnet as jn
      >>> shape, params, state = jn.nn.Dense(9).init(jax.random.key(0), (1, 8))
      >>> shape, params["w"].shape, params["b"].shape
      ((1, 9), (8, 9), (9,))
    """
    features = positive_int(features, layer="dense", argument="features")
    w_init = initializer(w_init, layer="dense", argument="w_init")
    b_init = initializer(b_init, layer="dense", argument="b_init")

    def init(key: Array, input_shape: Sequence[int | None]) -> tuple[Shape, Params, State]:
        shape = as_shape(input_shape, layer="dense")
        in_features = shape[-1]
        if len(shape) < 2 or in_features is None:
            raise ShapeError(
                f"needs inputs (batch, ..., in_features) with a known in_features, "
                f"got {format_shape(shape)}",
                root="dense",
            )
        w_key, b_key = jax.random.split(key)
        params = {"w": w_init(w_key, (in_features, features), jnp.float32)}
        if use_bias:
            params["b"] = b_init(b_key, (features,), jnp.float32)
        return (*shape[:-1], features), params, {}

    def apply(
        params: Params, state: State, x: Array, *, key: Array | None = None, train: bool = False
    ) -> tuple[Array, State]:
        expect_shape(x, (..., params["w"].shape[0]), layer="dense")
        y = x @ params["w"]
        if use_bias:
            y = y + params["b"].reshape((1,) * (y.ndim - 1) + (features,))  # (..., features)
        return y, state

    return Layer(init, apply, "dense")


Identity = described_instance("nn.Identity", elementwise(lambda x: x, "identity"))
"""A layer that returns its input unchanged (useful in ``parallel`` and ``residual``)."""


def _flatten_init(key: Array, input_shape: Sequence[int | None]) -> tuple[Shape, Params, State]:
    shape = as_shape(input_shape, layer="flatten")
    features = shape[1:]
    width = None if None in features else math.prod(d for d in features if d is not None)
    return (shape[0], width), {}, {}


def _flatten_apply(
    params: Params, state: State, x: Array, *, key: Array | None = None, train: bool = False
) -> tuple[Array, State]:
    if x.ndim < 1:
        raise ShapeError(f"expected input (batch, ...), got {tuple(x.shape)}", root="flatten")
    return x.reshape((x.shape[0], -1)), state  # (B, prod(rest))


Flatten = described_instance("nn.Flatten", Layer(_flatten_init, _flatten_apply, "flatten"))
"""Flatten every axis but the batch: ``(B, 8, 8, 1) -> (B, 64)``."""


def _target_shape(shape: Sequence[int]) -> tuple[int, ...]:
    """Validate ``Reshape``'s target: positive ints, with at most one ``-1``."""
    if isinstance(shape, int) or not isinstance(shape, Sequence):
        raise TypeError(f"reshape: shape must be a tuple of ints, got {shape!r}")
    dims = tuple(shape)
    bad = [d for d in dims if isinstance(d, bool) or not isinstance(d, int) or d == 0 or d < -1]
    if bad or not dims or dims.count(-1) > 1:
        raise ValueError(
            f"reshape: shape must be positive ints with at most one -1, got {format_shape(dims)}"
        )
    return dims


@described("nn.Reshape")
def Reshape(shape: Sequence[int]) -> Layer:
    """Reshape each example (the batch axis stays): ``Reshape((8, 8, 1))`` maps ``(B, 64)``
    to ``(B, 8, 8, 1)``. One size may be ``-1``, inferred from the others.

    Raises:
      TypeError, ValueError: at construction, for a malformed ``shape``.
      ShapeError: at ``init``, if the example size does not match.
    """
    target = _target_shape(shape)

    def resolve(input_shape: Shape) -> tuple[int, ...]:
        size = math.prod(d for d in input_shape[1:] if d is not None)
        known = math.prod(d for d in target if d != -1)
        inferred = size // known if -1 in target else size
        out = tuple(inferred if d == -1 else d for d in target)
        if None in input_shape[1:] or math.prod(out) != size or size % known:
            raise ShapeError(
                f"cannot reshape examples of shape {format_shape(input_shape[1:])} "
                f"to {format_shape(target)}",
                root="reshape",
            )
        return out

    def init(key: Array, input_shape: Sequence[int | None]) -> tuple[Shape, Params, State]:
        in_shape = as_shape(input_shape, layer="reshape")
        return (in_shape[0], *resolve(in_shape)), {}, {}

    def apply(
        params: Params, state: State, x: Array, *, key: Array | None = None, train: bool = False
    ) -> tuple[Array, State]:
        return x.reshape((x.shape[0], *resolve(tuple(x.shape)))), state

    return Layer(init, apply, "reshape")
