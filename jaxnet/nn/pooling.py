"""Pooling over channels-last inputs: ``MaxPool``, ``AvgPool``, ``SumPool`` and ``GlobalAvgPool``.

The layout rules are those of :mod:`jaxnet.nn.conv`: ``(B, W, C)``, ``(B, H, W, C)`` or
``(B, D, H, W, C)``, the number of spatial axes given by the length of ``window``. Each channel
is pooled on its own; pooling layers have no parameters.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxnet.core import Array, Layer, Params, Shape, ShapeError, State, as_shape, format_shape
from jaxnet.describe import described, described_instance
from jaxnet.nn.conv import (
    Padding,
    Pads,
    _check_rank,
    _padding,
    _per_axis,
    _window_output,
    _window_shape,
)

# The initial values are NumPy constants, not jnp arrays: under ``jit`` only a concrete 0 (or
# -inf) lets ``reduce_window`` use its sum (max) primitive, which JAX can differentiate twice.


def _lowest(dtype: np.dtype) -> np.ndarray:
    """The identity of ``max``: ``-inf`` for floats, the smallest integer otherwise."""
    if jnp.issubdtype(dtype, jnp.floating):
        return np.array(-np.inf, dtype)
    return np.array(np.iinfo(dtype).min, dtype)


def _pool(
    layer: str,
    window: Sequence[int],
    strides: int | Sequence[int] | None,
    padding: Padding,
    reduce: Callable[[Array, tuple[int, ...], tuple[int, ...], Pads], Array],
) -> Layer:
    """A pooling layer: validates the hyperparameters, infers shapes, checks inputs.

    ``reduce(x, window, strides, pads)`` pools ``x`` of shape ``(B, *spatial, C)``.
    """
    size = _window_shape(window, layer=layer, argument="window")
    ndim = len(size)
    stride = size if strides is None else _per_axis(strides, ndim, layer=layer, argument="strides")
    pad = _padding(padding, ndim, layer=layer)
    if not isinstance(pad, str) and any(max(p) >= w for p, w in zip(pad, size, strict=True)):
        raise ValueError(
            f"{layer}: padding must be smaller than the window on each side (a window of "
            f"padding alone has nothing to pool), got padding {pad} for window {size}"
        )
    too_small = f"window {size}"

    def output(shape: Sequence[int | None]) -> tuple[tuple[int | None, ...], Pads]:
        return _window_output(shape, size, stride, pad, layer=layer, too_small=too_small)

    def init(key: Array, input_shape: Sequence[int | None]) -> tuple[Shape, Params, State]:
        shape = as_shape(input_shape, layer=layer)
        _check_rank(shape, ndim, layer=layer, argument="window", size=size)
        out_spatial, _ = output(shape)
        return (shape[0], *out_spatial, shape[-1]), {}, {}

    def apply(
        params: Params, state: State, x: Array, *, key: Array | None = None, train: bool = False
    ) -> tuple[Array, State]:
        _check_rank(x.shape, ndim, layer=layer, argument="window", size=size)
        _, pads = output(tuple(x.shape))
        return reduce(x, size, stride, pads), state

    return Layer(init, apply, layer)


def _full(
    window: tuple[int, ...], strides: tuple[int, ...], pads: Pads
) -> tuple[tuple[int, ...], tuple[int, ...], list[tuple[int, int]]]:
    """Window, strides and padding over all axes: the batch and channel axes are not pooled."""
    return (1, *window, 1), (1, *strides, 1), [(0, 0), *pads, (0, 0)]


def _max(x: Array, window: tuple[int, ...], strides: tuple[int, ...], pads: Pads) -> Array:
    dims, steps, padding = _full(window, strides, pads)
    # Padding takes the value -inf, so it never wins: the max is over the real entries.
    return jax.lax.reduce_window(x, _lowest(x.dtype), jax.lax.max, dims, steps, padding)


def _sum(x: Array, window: tuple[int, ...], strides: tuple[int, ...], pads: Pads) -> Array:
    dims, steps, padding = _full(window, strides, pads)
    # Padding takes the value 0, so it adds nothing: the sum is over the real entries.
    return jax.lax.reduce_window(x, np.array(0, x.dtype), jax.lax.add, dims, steps, padding)


def _mean(x: Array, window: tuple[int, ...], strides: tuple[int, ...], pads: Pads) -> Array:
    total = _sum(x, window, strides, pads)  # (B, *out, C)
    if not any(lo or hi for lo, hi in pads):
        return total / math.prod(window)
    ones = jnp.ones((1, *x.shape[1:-1], 1), x.dtype)
    count = _sum(ones, window, strides, pads)  # (1, *out, 1)
    return total / count  # the real entries of each window, padding not counted


@described("nn.MaxPool")
def MaxPool(
    window: Sequence[int], *, strides: int | Sequence[int] | None = None, padding: Padding = "VALID"
) -> Layer:
    """The largest entry of each window, per channel: ``(B, H, W, C) -> (B, H', W', C)``.

    ``y[b, o, c] = max_k x[b, o·s + k, c]`` over the window positions ``k`` that fall inside the
    input (padding never wins: it is ``-inf``). Runs on ``jax.lax.reduce_window``. Output sizes
    follow ``Conv``'s rules: ``ceil(n/s)`` with ``"SAME"``, ``floor((n + low + high − w)/s) + 1``
    otherwise.

    Args:
      window: the window size, a tuple of 1 to 3 positive ints whose length sets the number of
        spatial axes: ``(2, 2)`` for ``(B, H, W, C)``, ``(2,)`` for ``(B, W, C)``.
      strides: step between windows, an int or one per axis; ``None`` (the default) is the
        window itself, so windows tile the input without overlap.
      padding: ``"VALID"`` (the default: no padding, a ragged border is dropped), ``"SAME"``, an
        int, or one int or ``(low, high)`` pair per axis, each smaller than the window.

    Returns:
      A layer of kind ``"max_pool"`` without parameters.

    Raises:
      TypeError, ValueError: at construction, for a malformed hyperparameter.
      ShapeError: at ``init`` or trace time, for an input of the wrong rank or smaller than the
        window after padding.

    Example:
      >>> import jax, jax.numpy as jnp, jaxnet as jn
      >>> pool = jn.nn.MaxPool((2, 2))
      >>> pool.init(jax.random.key(0), (2, 8, 8, 3))[0]
      (2, 4, 4, 3)
      >>> pool.apply({}, {}, jnp.arange(16.0).reshape(1, 4, 4, 1))[0][0, :, :, 0]
      Array([[ 5.,  7.],
             [13., 15.]], dtype=float32)
    """
    return _pool("max_pool", window, strides, padding, _max)


@described("nn.AvgPool")
def AvgPool(
    window: Sequence[int], *, strides: int | Sequence[int] | None = None, padding: Padding = "VALID"
) -> Layer:
    """The mean of each window, per channel: ``(B, H, W, C) -> (B, H', W', C)``.

    ``y[b, o, c] = mean_k x[b, o·s + k, c]`` over the window positions ``k`` that fall inside the
    input: padding is not counted, so with ``"SAME"`` a border window of 2 real entries out of 4
    is their mean, not half of it (PyTorch's ``count_include_pad=False``; Flax's ``avg_pool``
    counts padding by default). Runs on ``jax.lax.reduce_window``; output sizes as ``MaxPool``.

    Args:
      window: the window size, a tuple of 1 to 3 positive ints, one per spatial axis.
      strides: step between windows, an int or one per axis; ``None`` (the default) is the
        window itself.
      padding: ``"VALID"`` (the default), ``"SAME"``, an int, or one int or ``(low, high)`` pair
        per axis, each smaller than the window.

    Returns:
      A layer of kind ``"avg_pool"`` without parameters.

    Raises:
      TypeError, ValueError: at construction, for a malformed hyperparameter.
      ShapeError: at ``init`` or trace time, for an input of the wrong rank or smaller than the
        window after padding.

    Example:
      >>> import jax, jax.numpy as jnp, jaxnet as jn
      >>> pool = jn.nn.AvgPool((2,), padding="SAME")
      >>> pool.apply({}, {}, jnp.array([[[1.0], [3.0], [8.0]]]))[0][0, :, 0]
      Array([2., 8.], dtype=float32)
    """
    return _pool("avg_pool", window, strides, padding, _mean)


@described("nn.SumPool")
def SumPool(
    window: Sequence[int], *, strides: int | Sequence[int] | None = None, padding: Padding = "VALID"
) -> Layer:
    """The sum of each window, per channel: ``(B, H, W, C) -> (B, H', W', C)``.

    ``y[b, o, c] = Σ_k x[b, o·s + k, c]`` over the window positions ``k`` that fall inside the
    input (padding adds nothing: it is zero). With ``"VALID"`` padding this is ``AvgPool``
    times the window size ``prod(window)``; with ``"SAME"`` a border window sums only its real
    entries, where ``AvgPool`` divides by their count. It is Flax's ``nn.pooling.pool`` with
    ``lax.add``, or a depthwise ``Conv`` whose kernel is all ones; integer inputs stay integers.
    Runs on ``jax.lax.reduce_window``; output sizes as ``MaxPool``.

    Args:
      window: the window size, a tuple of 1 to 3 positive ints, one per spatial axis.
      strides: step between windows, an int or one per axis; ``None`` (the default) is the
        window itself.
      padding: ``"VALID"`` (the default), ``"SAME"``, an int, or one int or ``(low, high)`` pair
        per axis, each smaller than the window.

    Returns:
      A layer of kind ``"sum_pool"`` without parameters.

    Raises:
      TypeError, ValueError: at construction, for a malformed hyperparameter.
      ShapeError: at ``init`` or trace time, for an input of the wrong rank or smaller than the
        window after padding.

    Example:
      >>> import jax, jax.numpy as jnp, jaxnet as jn
      >>> pool = jn.nn.SumPool((2,), padding="SAME")
      >>> pool.apply({}, {}, jnp.array([[[1.0], [3.0], [8.0]]]))[0][0, :, 0]
      Array([4., 8.], dtype=float32)
    """
    return _pool("sum_pool", window, strides, padding, _sum)


_GLOBAL_LAYOUT = "(batch, *spatial, channels) with at least one spatial axis"


def _global_avg_pool_init(
    key: Array, input_shape: Sequence[int | None]
) -> tuple[Shape, Params, State]:
    shape = as_shape(input_shape, layer="global_avg_pool")
    if len(shape) < 3:
        raise ShapeError(
            f"expected input {_GLOBAL_LAYOUT}, got {format_shape(shape)}",
            root="global_avg_pool",
        )
    return (shape[0], shape[-1]), {}, {}


def _global_avg_pool_apply(
    params: Params, state: State, x: Array, *, key: Array | None = None, train: bool = False
) -> tuple[Array, State]:
    if x.ndim < 3:
        raise ShapeError(
            f"expected input {_GLOBAL_LAYOUT}, got {tuple(x.shape)}",
            root="global_avg_pool",
        )
    return jnp.mean(x, axis=tuple(range(1, x.ndim - 1))), state  # (B, C)


GlobalAvgPool = described_instance(
    "nn.GlobalAvgPool", Layer(_global_avg_pool_init, _global_avg_pool_apply, "global_avg_pool")
)
"""The mean over every spatial axis, per channel: ``(B, H, W, C) -> (B, C)`` (also 1-D and 3-D).

A ready layer (it has no hyperparameters), like ``Flatten``: write ``jn.nn.GlobalAvgPool``, not
``jn.nn.GlobalAvgPool()``. The usual head of a convolutional classifier before a ``Dense``.
"""
