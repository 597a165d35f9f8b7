"""Convolutions over channels-last inputs: ``Conv`` and ``ConvTranspose``.

Conventions, shared with :mod:`jaxnet.nn.pooling`:

* Inputs are batch-first and channels-last: ``(B, W, C)`` for sequences, ``(B, H, W, C)`` for
  images, ``(B, D, H, W, C)`` for volumes. The number of spatial axes is the length of
  ``kernel_size`` (or of a pooling ``window``), which must therefore be a tuple: ``(3, 3)`` is
  2-D, ``(5,)`` is 1-D. A bare int such as ``5`` is refused rather than guessed (PyTorch reads it
  as 5×5, a 1-D reading would be just as plausible); ``strides``, ``dilation`` and ``padding``
  may be a single int applied to every spatial axis.
* Kernels are ``kernel_size + (in_channels // feature_group_count, features)`` (``WIO``,
  ``HWIO``, ``DHWIO``), as in Flax and TensorFlow; the dimension numbers are given to XLA
  explicitly (``NHWC``/``HWIO``/``NHWC`` for 2-D).
* ``padding`` is ``"SAME"``, ``"VALID"`` (either case), an int ``p`` (``p`` zeros on both sides of
  every spatial axis), or one entry per spatial axis, each an int ``p`` or a ``(low, high)`` pair
  of non-negative ints. ``"SAME"`` pads as TensorFlow and ``jax.lax`` do: the output has
  ``ceil(n / stride)`` entries and the odd padding entry, if any, goes at the end.
* Spatial sizes may be unknown (``None``); the output's are then unknown too. The number of
  input channels must be known at ``init``.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from jaxnet.core import Array, Layer, Params, Shape, ShapeError, State, as_shape, format_shape
from jaxnet.describe import described
from jaxnet.nn._checks import initializer, positive_int

Initializer = jax.nn.initializers.Initializer
LECUN_NORMAL = jax.nn.initializers.lecun_normal()
"""The default kernel initializer: truncated normal with variance ``1/fan_in``."""

PADDING_WORDS = ("SAME", "VALID")
"""The padding words ``Conv``, ``ConvTranspose`` and the pooling layers accept (in either case)."""

Padding = str | int | Sequence[int | tuple[int, int]]
"""``"SAME"``, ``"VALID"``, an int, or one int or ``(low, high)`` pair per spatial axis."""
Pads = tuple[tuple[int, int], ...]

_SPATIAL_NAMES = {1: ("width",), 2: ("height", "width"), 3: ("depth", "height", "width")}
_DIMENSION_NUMBERS = {
    1: ("NWC", "WIO", "NWC"),
    2: ("NHWC", "HWIO", "NHWC"),
    3: ("NDHWC", "DHWIO", "NDHWC"),
}


# ----------------------------------------------------------------------------- hyperparameters


def _is_int(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    try:
        operator.index(value)
    except TypeError:
        return False
    return True


def _window_shape(value: Any, *, layer: str, argument: str) -> tuple[int, ...]:
    """A kernel size or pooling window: a tuple of 1 to 3 positive ints, one per spatial axis.

    Raises:
      TypeError: for an int (ambiguous: 1-D or square?) or non-int entries.
      ValueError: for a wrong number of entries or entries that are not positive.
    """
    if _is_int(value) or not isinstance(value, Sequence) or isinstance(value, str):
        raise TypeError(
            f"{layer}: {argument} must be a tuple of positive ints, one per spatial axis "
            f"(e.g. (3, 3) for images, (5,) for sequences), got {type(value).__name__} {value!r}"
        )
    dims = tuple(value)
    if not all(_is_int(d) for d in dims):
        raise TypeError(f"{layer}: {argument} must be positive ints, got {dims!r}")
    if not 1 <= len(dims) <= 3:
        raise ValueError(
            f"{layer}: {argument} must have 1, 2 or 3 entries, one per spatial axis, got {dims!r}"
        )
    if any(operator.index(d) <= 0 for d in dims):
        raise ValueError(f"{layer}: {argument} must be positive ints, got {dims!r}")
    return tuple(operator.index(d) for d in dims)


def _per_axis(value: Any, ndim: int, *, layer: str, argument: str) -> tuple[int, ...]:
    """``strides`` or ``dilation``: one positive int for every axis, or a tuple of ``ndim``.

    Raises:
      TypeError: for entries that are not ints.
      ValueError: for a wrong number of entries or entries that are not positive.
    """
    dims = (value,) * ndim if _is_int(value) else value
    message = (
        f"{layer}: {argument} must be a positive int or a tuple of {ndim} positive ints, "
        f"got {value!r}"
    )
    if not isinstance(dims, Sequence) or isinstance(dims, str):
        raise TypeError(message)
    if not all(_is_int(d) for d in dims):
        raise TypeError(message)
    if len(dims) != ndim or any(operator.index(d) <= 0 for d in dims):
        raise ValueError(message)
    return tuple(operator.index(d) for d in dims)


def _padding(value: Any, ndim: int, *, layer: str) -> str | Pads:
    """A padding word (upper-cased) or one ``(low, high)`` pair of non-negative ints per axis.

    Raises:
      ValueError: for an unknown word, a wrong number of entries, or negative or non-int entries.
    """
    if isinstance(value, str):
        if value.upper() not in PADDING_WORDS:
            raise ValueError(
                f"{layer}: padding must be one of {PADDING_WORDS}, an int, or one int or "
                f"(low, high) pair per spatial axis, got {value!r}"
            )
        return value.upper()
    entries = (value,) * ndim if _is_int(value) else value
    message = (
        f"{layer}: padding must be a non-negative int or {ndim} entries (one per spatial axis), "
        f"each a non-negative int or a (low, high) pair of them, got {value!r}"
    )
    if not isinstance(entries, Sequence) or len(entries) != ndim:
        raise ValueError(message)
    pads = []
    for entry in entries:
        pair = (entry, entry) if _is_int(entry) else entry
        if (
            not isinstance(pair, Sequence)
            or len(pair) != 2
            or not all(_is_int(p) and operator.index(p) >= 0 for p in pair)
        ):
            raise ValueError(message)
        pads.append((operator.index(pair[0]), operator.index(pair[1])))
    return tuple(pads)


# ----------------------------------------------------------------------------- shapes


def _layout(ndim: int, channels: int | str = "channels") -> str:
    """``(batch, height, width, channels)`` for ``ndim == 2``."""
    return f"(batch, {', '.join(_SPATIAL_NAMES[ndim])}, {channels})"


def _check_rank(
    shape: Sequence[int | None], ndim: int, *, layer: str, argument: str, size: tuple[int, ...]
) -> None:
    """Raise a ShapeError unless ``shape`` has a batch axis, ``ndim`` spatial axes and channels."""
    if len(shape) != ndim + 2:
        raise ShapeError(
            f"expected input {_layout(ndim)} for {argument} {size}, got {format_shape(shape)}",
            root=layer,
        )


def _axis_pads(
    size: int, span: int, stride: int, padding: str | Pads, axis: int
) -> tuple[int, int]:
    """The ``(low, high)`` zeros added to a spatial axis of ``size`` entries."""
    if isinstance(padding, str):
        (pair,) = jax.lax.padtype_to_pads((size,), (span,), (stride,), padding)
        return int(pair[0]), int(pair[1])
    return padding[axis]


def _window_output(
    shape: Sequence[int | None],
    spans: tuple[int, ...],
    strides: tuple[int, ...],
    padding: str | Pads,
    *,
    layer: str,
    too_small: str,
) -> tuple[tuple[int | None, ...], Pads]:
    """Output spatial sizes of a sliding window (conv or pooling), and the pads used.

    ``spans`` are the window extents after dilation. An unknown (``None``) spatial size gives an
    unknown output size; the pads returned are then only those of the known axes (``apply``,
    which sees every size, uses them).

    Raises:
      ShapeError: if the window is larger than the padded input on some axis; ``too_small``
        names the window (``"kernel_size (3, 3) with dilation (2, 2) spans (5, 5)"``).
    """
    spatial = tuple(shape[1:-1])
    pads = tuple(
        None if n is None else _axis_pads(n, k, s, padding, i)
        for i, (n, k, s) in enumerate(zip(spatial, spans, strides, strict=True))
    )
    padded = tuple(
        None if n is None or p is None else n + p[0] + p[1]
        for n, p in zip(spatial, pads, strict=True)
    )
    if any(p is not None and p < k for p, k in zip(padded, spans, strict=True)):
        raise ShapeError(
            f"{too_small}, which does not fit in the padded input {padded}; "
            f"got input {format_shape(shape)} with padding {pads}",
            root=layer,
        )
    out = tuple(
        None if p is None else (p - k) // s + 1
        for p, k, s in zip(padded, spans, strides, strict=True)
    )
    return out, tuple(p for p in pads if p is not None)


def _spans(kernel_size: tuple[int, ...], dilation: tuple[int, ...]) -> tuple[int, ...]:
    """The extent of a dilated kernel: ``dilation·(k − 1) + 1`` per axis."""
    return tuple(d * (k - 1) + 1 for k, d in zip(kernel_size, dilation, strict=True))


def _known_channels(shape: Shape, *, layer: str) -> int:
    channels = shape[-1]
    if channels is None:
        raise ShapeError(
            f"needs a known number of input channels, got {format_shape(shape)}", root=layer
        )
    return channels


def _check_input(x: Array, ndim: int, channels: int, *, layer: str) -> None:
    """Trace-time check of the input's rank and channel count."""
    if x.ndim != ndim + 2 or x.shape[-1] != channels:
        raise ShapeError(
            f"expected input {_layout(ndim, channels)}, got {tuple(x.shape)}", root=layer
        )


def _common_dtype(x: Array, w: Array) -> tuple[Array, Array]:
    """``x`` and ``w`` in their promoted dtype, as ``x @ w`` would compute (uint8 images with a
    float32 kernel compute in float32); ``jax.lax`` convolutions need equal dtypes."""
    dtype = jnp.result_type(x, w)
    return x.astype(dtype), w.astype(dtype)


def _add_bias(y: Array, b: Array) -> Array:
    return y + b.reshape((1,) * (y.ndim - 1) + (b.shape[0],))  # (B, ..., features)


# ----------------------------------------------------------------------------- Conv


@described("nn.Conv")
def Conv(
    features: int,
    kernel_size: Sequence[int],
    *,
    strides: int | Sequence[int] = 1,
    padding: Padding = "SAME",
    dilation: int | Sequence[int] = 1,
    feature_group_count: int = 1,
    use_bias: bool = True,
    w_init: Initializer = LECUN_NORMAL,
    b_init: Initializer = jax.nn.initializers.zeros,
) -> Layer:
    """A convolution over 1, 2 or 3 spatial axes, channels last: ``(B, H, W, C) -> (B, H', W', F)``.

    For each output position ``o`` and feature ``f`` in group ``g = f // (F / G)`` (``G`` is
    ``feature_group_count``, ``C_g = C / G`` the channels of a group)::

        y[b, o, f] = b[f] + Σ_k Σ_{c < C_g} x_pad[b, o·s + k·d, g·C_g + c] · w[k, c, f]

    with ``s`` the strides, ``d`` the dilation and ``x_pad`` the zero-padded input: a
    cross-correlation, as in every deep-learning library. Runs on
    ``jax.lax.conv_general_dilated`` with explicit dimension numbers (``NWC/WIO/NWC``,
    ``NHWC/HWIO/NHWC``, ``NDHWC/DHWIO/NDHWC``). Each output axis has ``ceil(n/s)`` entries with
    ``"SAME"`` and ``floor((n + low + high − span)/s) + 1`` otherwise, where
    ``span = d·(k − 1) + 1``.

    Params are ``{"w": kernel_size + (in_channels // feature_group_count, features),
    "b": (features,)}``. Defaults: ``w`` is LeCun normal over
    ``fan_in = prod(kernel_size)·in_channels/feature_group_count``, the inputs one output sees,
    as Flax does: like ``Dense``, it keeps the variance of the output close to that of the input
    (pass ``jn.nn.initializer("he_normal")`` for deep ReLU nets). ``b`` starts at zero.

    Args:
      features: output channels ``F``, a positive int.
      kernel_size: a tuple of 1 to 3 positive ints; its length sets the number of spatial axes
        (``(3, 3)``: inputs ``(B, H, W, C)``; ``(5,)``: inputs ``(B, W, C)``). A bare int is
        refused: write ``(5,)`` or ``(5, 5)``.
      strides: step between windows, an int for every axis or one per axis.
      padding: ``"SAME"``, ``"VALID"``, an int, or one int or ``(low, high)`` pair per axis.
      dilation: spacing between kernel taps (atrous convolution), an int or one per axis.
      feature_group_count: ``G``; splits channels and features into ``G`` independent groups
        (``G == in_channels`` with ``features`` a multiple of it is a depthwise convolution).
      use_bias: add ``b``; without it, params are ``{"w"}`` only.
      w_init: a ``jax.nn.initializers`` initializer for ``w``.
      b_init: an initializer for ``b``.

    Returns:
      A layer of kind ``"conv"`` mapping ``(B, *spatial, C)`` to ``(B, *out_spatial, F)``.

    Raises:
      TypeError, ValueError: at construction, for a malformed hyperparameter, or ``features``
        not divisible by ``feature_group_count``.
      ShapeError: at ``init`` or trace time, for an input of the wrong rank or channel count,
        unknown channels, channels not divisible by ``feature_group_count``, or an input smaller
        than the dilated kernel after padding.

    Example:
      >>> import jax, jaxnet as jn
      >>> shape, params, state = jn.nn.Conv(4, (3, 3)).init(jax.random.key(0), (2, 8, 8, 3))
      >>> shape, params["w"].shape, params["b"].shape
      ((2, 8, 8, 4), (3, 3, 3, 4), (4,))
      >>> jn.nn.Conv(4, (3,), strides=2, padding="VALID").init(jax.random.key(0), (2, 9, 3))[0]
      (2, 4, 4)
    """
    layer = "conv"
    features = positive_int(features, layer=layer, argument="features")
    w_init = initializer(w_init, layer=layer, argument="w_init")
    b_init = initializer(b_init, layer=layer, argument="b_init")
    kernel = _window_shape(kernel_size, layer=layer, argument="kernel_size")
    ndim = len(kernel)
    stride = _per_axis(strides, ndim, layer=layer, argument="strides")
    dilate = _per_axis(dilation, ndim, layer=layer, argument="dilation")
    pad = _padding(padding, ndim, layer=layer)
    groups = positive_int(feature_group_count, layer=layer, argument="feature_group_count")
    if features % groups:
        raise ValueError(
            f"{layer}: features ({features}) must be divisible by feature_group_count ({groups})"
        )
    spans = _spans(kernel, dilate)
    too_small = f"kernel_size {kernel} with dilation {dilate} spans {spans}"

    def output(shape: Sequence[int | None]) -> tuple[tuple[int | None, ...], Pads]:
        return _window_output(shape, spans, stride, pad, layer=layer, too_small=too_small)

    def init(key: Array, input_shape: Sequence[int | None]) -> tuple[Shape, Params, State]:
        shape = as_shape(input_shape, layer=layer)
        _check_rank(shape, ndim, layer=layer, argument="kernel_size", size=kernel)
        channels = _known_channels(shape, layer=layer)
        if channels % groups:
            raise ShapeError(
                f"input channels ({channels}) must be divisible by feature_group_count "
                f"({groups}), got input {format_shape(shape)}",
                root=layer,
            )
        out_spatial, _ = output(shape)
        w_key, b_key = jax.random.split(key)
        params = {"w": w_init(w_key, (*kernel, channels // groups, features), jnp.float32)}
        if use_bias:
            params["b"] = b_init(b_key, (features,), jnp.float32)
        return (shape[0], *out_spatial, features), params, {}

    def apply(
        params: Params, state: State, x: Array, *, key: Array | None = None, train: bool = False
    ) -> tuple[Array, State]:
        _check_input(x, ndim, params["w"].shape[-2] * groups, layer=layer)
        _, pads = output(tuple(x.shape))
        x, w = _common_dtype(x, params["w"])
        y = jax.lax.conv_general_dilated(
            x,
            w,
            window_strides=stride,
            padding=pads,
            rhs_dilation=dilate,
            dimension_numbers=_DIMENSION_NUMBERS[ndim],
            feature_group_count=groups,
        )  # (B, *out_spatial, features)
        if use_bias:
            y = _add_bias(y, params["b"])
        return y, state

    return Layer(init, apply, layer)


# ----------------------------------------------------------------------------- ConvTranspose


def _transpose_output(
    shape: Shape, spans: tuple[int, ...], strides: tuple[int, ...], padding: str | Pads
) -> tuple[int | None, ...]:
    """Output spatial sizes of a transposed convolution (``None`` where the input's is unknown).

    The full output has ``(n − 1)·s + span`` entries; ``"SAME"`` keeps ``n·s``, ``"VALID"``
    keeps ``max(full, n·s)``, explicit pads ``full − low − high``.
    """
    sizes: list[int | None] = []
    for axis, (n, k, s) in enumerate(zip(shape[1:-1], spans, strides, strict=True)):
        if n is None:
            sizes.append(None)
        elif padding == "SAME":
            sizes.append(n * s)
        elif isinstance(padding, str):  # "VALID"
            sizes.append(max((n - 1) * s + k, n * s))
        else:
            low, high = padding[axis]
            sizes.append((n - 1) * s + k - low - high)
    return tuple(sizes)


@described("nn.ConvTranspose")
def ConvTranspose(
    features: int,
    kernel_size: Sequence[int],
    *,
    strides: int | Sequence[int] = 1,
    padding: Padding = "SAME",
    dilation: int | Sequence[int] = 1,
    use_bias: bool = True,
    w_init: Initializer = LECUN_NORMAL,
    b_init: Initializer = jax.nn.initializers.zeros,
) -> Layer:
    """A transposed convolution ("deconvolution"), which upsamples by ``strides``.

    Defined by scatter-add: every input entry adds its value times the kernel to a window of the
    output, windows ``s`` apart::

        full[b, i·s + k·d, f] += x[b, i, c] · w[k, c, f]      for every i, k, c

    then ``y = full`` cropped by the padding, plus ``b[f]``. The full output has
    ``(n − 1)·s + span`` entries per axis (``span = d·(k − 1) + 1``). ``padding`` chooses how
    many are kept, with the output sizes of Flax's ``ConvTranspose``:

    * ``"SAME"``: ``n·s`` entries (the input size times the stride), dropping
      ``(span − s) // 2`` in front and the rest at the end (TensorFlow's
      ``conv2d_transpose``, which is the gradient of a SAME ``Conv`` with the same stride);
    * ``"VALID"``: the full output, zero-extended at the end to ``n·s`` if shorter;
    * explicit ``(low, high)`` pairs: the padding of the forward ``Conv`` this layer transposes,
      i.e. drop ``low`` entries in front and ``high`` at the end (PyTorch's ``padding``):
      ``(n − 1)·s + span − low − high`` entries.

    With these rules ``ConvTranspose`` is the transpose (the gradient with respect to the input)
    of a ``Conv`` with the same strides, padding and dilation and the kernel's channel axes
    swapped. Runs on ``jax.lax.conv_transpose`` with the kernel's spatial axes reversed, because
    ``jax.lax.conv_transpose`` (like Flax's ``ConvTranspose`` with its default
    ``transpose_kernel=False``) correlates with the kernel instead of scattering it: to load a
    Flax kernel, reverse its spatial axes; a PyTorch ``ConvTranspose2d`` weight
    ``(in, out, kh, kw)`` becomes ``w.transpose(2, 3, 0, 1)``.

    Params are ``{"w": kernel_size + (in_channels, features), "b": (features,)}``; ``w`` is LeCun
    normal over ``fan_in = prod(kernel_size)·in_channels`` by default, as in Flax. There are no
    feature groups (``jax.lax.conv_transpose`` has none).

    Args:
      features: output channels, a positive int.
      kernel_size: a tuple of 1 to 3 positive ints, one per spatial axis (see ``Conv``).
      strides: upsampling factor, an int for every axis or one per axis.
      padding: ``"SAME"``, ``"VALID"``, an int, or one int or ``(low, high)`` pair per axis,
        as above.
      dilation: spacing between kernel taps, an int or one per axis.
      use_bias: add ``b``; without it, params are ``{"w"}`` only.
      w_init: a ``jax.nn.initializers`` initializer for ``w``.
      b_init: an initializer for ``b``.

    Returns:
      A layer of kind ``"conv_transpose"`` mapping ``(B, *spatial, C)`` to
      ``(B, *out_spatial, features)``.

    Raises:
      TypeError, ValueError: at construction, for a malformed hyperparameter.
      ShapeError: at ``init`` or trace time, for an input of the wrong rank or channel count,
        unknown channels, or explicit padding that crops the whole output.

    Example:
      >>> import jax, jaxnet as jn
      >>> up = jn.nn.ConvTranspose(3, (3, 3), strides=2)
      >>> shape, params, state = up.init(jax.random.key(0), (2, 4, 4, 8))
      >>> shape, params["w"].shape
      ((2, 8, 8, 3), (3, 3, 8, 3))
    """
    layer = "conv_transpose"
    features = positive_int(features, layer=layer, argument="features")
    w_init = initializer(w_init, layer=layer, argument="w_init")
    b_init = initializer(b_init, layer=layer, argument="b_init")
    kernel = _window_shape(kernel_size, layer=layer, argument="kernel_size")
    ndim = len(kernel)
    stride = _per_axis(strides, ndim, layer=layer, argument="strides")
    dilate = _per_axis(dilation, ndim, layer=layer, argument="dilation")
    pad = _padding(padding, ndim, layer=layer)
    spans = _spans(kernel, dilate)
    spatial_axes = tuple(range(ndim))

    def output(shape: Shape) -> tuple[int | None, ...]:
        sizes = _transpose_output(shape, spans, stride, pad)
        if any(n is not None and n < 1 for n in sizes):
            full = _transpose_output(shape, spans, stride, "VALID")
            raise ShapeError(
                f"padding {pad} leaves nothing of the full output {full}; "
                f"got input {format_shape(shape)}",
                root=layer,
            )
        return sizes

    def init(key: Array, input_shape: Sequence[int | None]) -> tuple[Shape, Params, State]:
        shape = as_shape(input_shape, layer=layer)
        _check_rank(shape, ndim, layer=layer, argument="kernel_size", size=kernel)
        channels = _known_channels(shape, layer=layer)
        out_spatial = output(shape)
        w_key, b_key = jax.random.split(key)
        params = {"w": w_init(w_key, (*kernel, channels, features), jnp.float32)}
        if use_bias:
            params["b"] = b_init(b_key, (features,), jnp.float32)
        return (shape[0], *out_spatial, features), params, {}

    def apply(
        params: Params, state: State, x: Array, *, key: Array | None = None, train: bool = False
    ) -> tuple[Array, State]:
        _check_input(x, ndim, params["w"].shape[-2], layer=layer)
        output(tuple(x.shape))
        # lax.conv_transpose reads explicit pairs as the padding of the dilated input; the
        # padding of the forward conv, (low, high), becomes (span − 1 − low, span − 1 − high).
        pads: str | Pads = (
            pad
            if isinstance(pad, str)
            else tuple((k - 1 - lo, k - 1 - hi) for k, (lo, hi) in zip(spans, pad, strict=True))
        )
        x, w = _common_dtype(x, params["w"])
        y = jax.lax.conv_transpose(
            x,
            jnp.flip(w, axis=spatial_axes),  # scatter w, not correlate with it
            strides=stride,
            padding=pads,
            rhs_dilation=dilate,
            dimension_numbers=_DIMENSION_NUMBERS[ndim],
        )  # (B, *out_spatial, features)
        if use_bias:
            y = _add_bias(y, params["b"])
        return y, state

    return Layer(init, apply, layer)
