"""Normalization layers: ``BatchNorm`` (with running statistics in ``state``), ``LayerNorm``,
``GroupNorm`` and ``RMSNorm``.

The first three compute ``y = (x − μ) / √(σ² + ε) · scale + bias``; they differ in which entries
share ``μ`` and ``σ²``. BatchNorm averages over every axis but the feature axis (the batch and,
for images, height and width), so an example's output depends on the rest of its batch while
training; LayerNorm averages over the features of each example alone; GroupNorm over the
positions and one group of channels of each example. Variances are *biased* (divided by the
number of entries, not that minus one), as in Flax, Haiku and PyTorch's normalization itself.
RMSNorm skips the mean: ``y = x / √(mean(x²) + ε) · scale``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from jaxnet.core import Array, Layer, Params, Shape, ShapeError, State, as_shape, format_shape
from jaxnet.describe import described
from jaxnet.nn._checks import (
    expect_shape,
    flag,
    fraction,
    initializer,
    positive_int,
    positive_number,
)

Initializer = jax.nn.initializers.Initializer
ONES = jax.nn.initializers.ones
ZEROS = jax.nn.initializers.zeros


# ------------------------------------------------------------- shared math


def _affine_params(
    key: Array, features: int, use_scale: bool, use_bias: bool, inits: tuple[Initializer, ...]
) -> Params:
    """``{"scale": (C,), "bias": (C,)}``, each only if asked for."""
    scale_key, bias_key = jax.random.split(key)
    params: Params = {}
    if use_scale:
        params["scale"] = inits[0](scale_key, (features,), jnp.float32)
    if use_bias:
        params["bias"] = inits[1](bias_key, (features,), jnp.float32)
    return params


def _normalize(x: Array, mean: Array, var: Array, epsilon: float) -> Array:
    """``(x − mean) / √(var + ε)``, with ``mean`` and ``var`` already broadcastable to ``x``."""
    return (x - mean) * jax.lax.rsqrt(var + epsilon)


def _affine(y: Array, params: Params, shape: tuple[int, ...]) -> Array:
    """``y · scale + bias`` for whichever of the two exist, reshaped to ``shape`` (strict rank
    promotion: ``(C,)`` must be written ``(1, ..., C)`` or ``(1, C, 1, 1)`` explicitly)."""
    if "scale" in params:
        y = y * params["scale"].reshape(shape)
    if "bias" in params:
        y = y + params["bias"].reshape(shape)
    return y


def _stats_dtype(x: Array) -> Any:
    """Statistics are computed in at least float32, also for bfloat16 inputs."""
    return jnp.promote_types(x.dtype, jnp.float32)


# ------------------------------------------------------------- BatchNorm


def _feature_size(shape: Shape, axis: int) -> int:
    """The size of the feature ``axis`` of ``shape``, or a ShapeError."""
    if len(shape) < 2:
        raise ShapeError(
            f"needs inputs with a batch axis and a feature axis, got {format_shape(shape)}",
            root="batch_norm",
        )
    if not -len(shape) <= axis < len(shape):
        raise ShapeError(
            f"axis {axis} is out of range for input {format_shape(shape)}", root="batch_norm"
        )
    features = shape[axis]
    if axis % len(shape) == 0:
        raise ShapeError(
            f"axis {axis} is the batch axis of input {format_shape(shape)}; "
            "the feature axis must be another one",
            root="batch_norm",
        )
    if features is None:
        raise ShapeError(
            f"the feature axis (axis {axis}) needs a known size, got {format_shape(shape)}",
            root="batch_norm",
        )
    return features


def _pattern(axis: int, features: int) -> tuple[Any, ...]:
    """The input shape BatchNorm accepts, for the shape check: ``(None, ..., C)`` for
    ``axis=-1``, ``(None, C, ...)`` for ``axis=1``."""
    if axis < 0:
        return (None, ..., features, *[None] * (-axis - 1))
    return (*[None] * axis, features, ...)


_RUNNING_VAR = ("biased", "unbiased")


def _running_var_rule(running_var: Any) -> bool:
    """True for ``"unbiased"`` (PyTorch's rule), False for ``"biased"``; else a clear error."""
    if not isinstance(running_var, str):
        raise TypeError(
            f"batch_norm: running_var must be 'biased' or 'unbiased', "
            f"got {type(running_var).__name__} {running_var!r}"
        )
    if running_var not in _RUNNING_VAR:
        raise ValueError(
            f"batch_norm: running_var must be 'biased' or 'unbiased', got {running_var!r}"
        )
    return running_var == "unbiased"


def _bessel(shape: tuple[int, ...], reduced: tuple[int, ...]) -> float:
    """``n/(n − 1)``, with ``n`` the values per feature in a batch of ``shape`` (static)."""
    n = math.prod(shape[i] for i in reduced)
    if n < 2:
        raise ShapeError(
            f"running_var='unbiased' needs more than one value per feature in a training "
            f"batch, got input {format_shape(shape)}",
            root="batch_norm",
        )
    return n / (n - 1)


@described("nn.BatchNorm")
def BatchNorm(
    *,
    momentum: float = 0.99,
    epsilon: float = 1e-5,
    use_scale: bool = True,
    use_bias: bool = True,
    axis: int = -1,
    scale_init: Initializer = ONES,
    bias_init: Initializer = ZEROS,
    running_var: str = "biased",
) -> Layer:
    """Batch normalization: normalize each feature over the batch (and every other axis).

    For features on ``axis`` (size ``C``) and every other axis reduced (batch, and height and
    width for images):

    * ``train=True``: ``μ, σ²`` are the batch mean and *biased* batch variance
      (``σ² = mean((x − μ)²)``, as Flax does; computed in two passes, which stays accurate
      when ``|μ| ≫ σ``), ``y = (x − μ)/√(σ² + ε) · scale + bias``, and
      ``new_state`` holds the updated running statistics
      ``running = momentum · running + (1 − momentum) · batch`` (for both mean and var; no
      gradient flows into them). The running variance averages the biased ``σ²`` by default;
      ``running_var="unbiased"`` averages ``σ² · n/(n − 1)`` instead, with ``n`` the number of
      values per feature in the batch, as PyTorch does (its normalization still uses ``σ²``).
    * ``train=False``: the running statistics take the place of ``μ, σ²``; the state is
      returned unchanged.

    Params are ``{"scale": (C,), "bias": (C,)}`` (ones and zeros: the layer starts as pure
    normalization); state is ``{"mean": (C,), "var": (C,)}``, starting at 0 and 1 so an
    untrained net in evaluation mode passes inputs through almost unchanged. ``momentum=0.99``
    (Flax's and Keras' default; PyTorch's ``momentum=0.1`` means ``1 − 0.1 = 0.9`` here) averages
    the statistics over roughly the last ``1/(1 − momentum) = 100`` steps. ``epsilon=1e-5``
    follows PyTorch and Flax. Statistics are computed in at least float32.

    Under ``jit`` with a batch sharded over devices, the mean over the batch axis is the global
    one (XLA inserts the reduction); under ``vmap`` each member is a batch of its own.

    Args:
      momentum: decay of the running statistics, in ``[0, 1)``.
      epsilon: added to the variance before the square root, a positive number.
      use_scale: multiply by a learned ``scale``; without it there is no ``"scale"`` param.
      use_bias: add a learned ``bias``; without it there is no ``"bias"`` param.
      axis: the feature axis (``-1``: channels last; ``1`` for channels first). Never the batch
        axis.
      scale_init: initializer of ``scale`` (``zeros`` makes a residual block start as the
        identity).
      bias_init: initializer of ``bias``.
      running_var: ``"biased"`` (Flax's and Keras' rule) or ``"unbiased"`` (PyTorch's): which
        batch variance the running variance averages. Set ``"unbiased"`` with
        ``momentum = 1 − torch_momentum`` to reproduce PyTorch's running statistics exactly.

    Returns:
      A layer mapping ``(B, ..., C)`` to the same shape.

    Raises:
      TypeError, ValueError: at construction, for a hyperparameter of the wrong type or value
        (``momentum`` outside ``[0, 1)``, ``epsilon <= 0``, ``axis=0``, ``running_var`` not
        ``"biased"`` or ``"unbiased"``).
      ShapeError: at ``init``, if the input has no axis besides the batch, ``axis`` is out of
        range or the batch axis, or the feature size is unknown; at trace time, if the feature
        size differs from the one at ``init``, or if ``running_var="unbiased"`` trains on a
        batch with one value per feature (``n/(n − 1)`` is undefined; PyTorch refuses it too).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from jaxnet.nn.norm import BatchNorm
      >>> layer = BatchNorm(momentum=0.9)
      >>> shape, params, state = layer.init(jax.random.key(0), (None, 3))
      >>> shape, jax.tree.map(jnp.shape, state)
      ((None, 3), {'mean': (3,), 'var': (3,)})
      >>> x = jnp.array([[0.0, 1.0, 2.0], [2.0, 3.0, 4.0]])
      >>> y, state = layer.apply(params, state, x, train=True)
      >>> state["mean"]  # 0.9 · 0 + 0.1 · [1, 2, 3]
      Array([0.1, 0.2, 0.3], dtype=float32)
    """
    momentum = fraction(momentum, layer="batch_norm", argument="momentum")
    epsilon = positive_number(epsilon, layer="batch_norm", argument="epsilon")
    use_scale = flag(use_scale, layer="batch_norm", argument="use_scale")
    use_bias = flag(use_bias, layer="batch_norm", argument="use_bias")
    inits = tuple(
        initializer(init, layer="batch_norm", argument=name)
        for name, init in (("scale_init", scale_init), ("bias_init", bias_init))
    )
    if isinstance(axis, bool) or not isinstance(axis, int):
        raise TypeError(f"batch_norm: axis must be an int, got {type(axis).__name__} {axis!r}")
    if axis == 0:
        raise ValueError("batch_norm: axis is the feature axis and cannot be 0, the batch axis")
    unbiased = _running_var_rule(running_var)

    def update(running: Array, batch: Array) -> Array:
        """``momentum · running + (1 − momentum) · batch``, in the running statistic's dtype."""
        new = momentum * running + (1.0 - momentum) * jax.lax.stop_gradient(batch)
        return new.astype(running.dtype)

    def init(key: Array, input_shape: Sequence[int | None]) -> tuple[Shape, Params, State]:
        shape = as_shape(input_shape, layer="batch_norm")
        features = _feature_size(shape, axis)
        params = _affine_params(key, features, use_scale, use_bias, inits)
        state = {"mean": jnp.zeros((features,)), "var": jnp.ones((features,))}
        return shape, params, state

    def apply(
        params: Params, state: State, x: Array, *, key: Array | None = None, train: bool = False
    ) -> tuple[Array, State]:
        features = state["mean"].shape[0]
        expect_shape(x, _pattern(axis, features), layer="batch_norm")
        feature = axis % x.ndim
        reduced = tuple(i for i in range(x.ndim) if i != feature)  # all but the feature axis
        shape = tuple(features if i == feature else 1 for i in range(x.ndim))  # broadcasts to x
        if not train:
            y = _normalize(x, state["mean"].reshape(shape), state["var"].reshape(shape), epsilon)
            return _affine(y, params, shape), state
        stats_x = x.astype(_stats_dtype(x))
        mean = jnp.mean(stats_x, axis=reduced)  # (C,)
        var = jnp.var(stats_x, axis=reduced)  # (C,), biased: divided by the entries averaged
        running = var * _bessel(x.shape, reduced) if unbiased else var
        new_state = {"mean": update(state["mean"], mean), "var": update(state["var"], running)}
        y = _normalize(x, mean.reshape(shape), var.reshape(shape), epsilon)
        return _affine(y, params, shape), new_state

    return Layer(init, apply, "batch_norm")


# ------------------------------------------------------------- LayerNorm


@described("nn.LayerNorm")
def LayerNorm(
    *,
    epsilon: float = 1e-5,
    use_scale: bool = True,
    use_bias: bool = True,
    scale_init: Initializer = ONES,
    bias_init: Initializer = ZEROS,
) -> Layer:
    """Layer normalization: normalize each example over its last axis.

    ``μ`` and ``σ²`` are the mean and biased variance of ``x[..., :]`` (the last axis, size
    ``C``), separately for every position of the other axes, and
    ``y = (x − μ)/√(σ² + ε) · scale + bias``. Nothing depends on the rest of the batch, so
    training and evaluation compute the same thing and there is no state.

    Params are ``{"scale": (C,), "bias": (C,)}``, starting at ones and zeros (pure
    normalization). ``epsilon=1e-5`` follows PyTorch (Flax uses ``1e-6``). Statistics are
    computed in at least float32.

    Args:
      epsilon: added to the variance before the square root, a positive number.
      use_scale: multiply by a learned ``scale``; without it there is no ``"scale"`` param.
      use_bias: add a learned ``bias``; without it there is no ``"bias"`` param.
      scale_init: initializer of ``scale``.
      bias_init: initializer of ``bias``.

    Returns:
      A layer mapping ``(B, ..., C)`` to the same shape.

    Raises:
      TypeError, ValueError: at construction, for a hyperparameter of the wrong type or value.
      ShapeError: at ``init``, if the input has no axis besides the batch or ``C`` is unknown;
        at trace time, if ``C`` differs from the one at ``init``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from jaxnet.nn.norm import LayerNorm
      >>> layer = LayerNorm()
      >>> shape, params, state = layer.init(jax.random.key(0), (2, 5, 4))
      >>> shape, params["scale"].shape, state
      ((2, 5, 4), (4,), {})
    """
    epsilon = positive_number(epsilon, layer="layer_norm", argument="epsilon")
    use_scale = flag(use_scale, layer="layer_norm", argument="use_scale")
    use_bias = flag(use_bias, layer="layer_norm", argument="use_bias")
    inits = tuple(
        initializer(init, layer="layer_norm", argument=name)
        for name, init in (("scale_init", scale_init), ("bias_init", bias_init))
    )

    def init(key: Array, input_shape: Sequence[int | None]) -> tuple[Shape, Params, State]:
        shape = as_shape(input_shape, layer="layer_norm")
        features = shape[-1]
        if len(shape) < 2 or features is None:
            raise ShapeError(
                f"needs inputs (batch, ..., features) with a known number of features, "
                f"got {format_shape(shape)}",
                root="layer_norm",
            )
        return shape, _affine_params(key, features, use_scale, use_bias, inits), {}

    def apply(
        params: Params, state: State, x: Array, *, key: Array | None = None, train: bool = False
    ) -> tuple[Array, State]:
        widths = [p.shape[0] for p in params.values()]  # without params any width is fine
        expect_shape(x, (None, ..., widths[0] if widths else None), layer="layer_norm")
        stats_x = x.astype(_stats_dtype(x))
        mean = jnp.mean(stats_x, axis=-1, keepdims=True)  # (B, ..., 1)
        var = jnp.var(stats_x, axis=-1, keepdims=True)  # (B, ..., 1), biased
        y = _normalize(x, mean, var, epsilon)
        return _affine(y, params, (1,) * (x.ndim - 1) + (x.shape[-1],)), state

    return Layer(init, apply, "layer_norm")


# ------------------------------------------------------------- GroupNorm


def _group_norm_channels(shape: Shape, num_groups: int) -> int:
    """The channel count ``C`` of ``shape`` (its last axis), or a ShapeError if it is unknown
    or not a multiple of ``num_groups``."""
    channels = shape[-1]
    if len(shape) < 2 or channels is None:
        raise ShapeError(
            f"needs inputs (batch, ..., channels) with a known number of channels, "
            f"got {format_shape(shape)}",
            root="group_norm",
        )
    if channels % num_groups:
        raise ShapeError(
            f"channels must be divisible by num_groups={num_groups}, got input "
            f"{format_shape(shape)}",
            root="group_norm",
        )
    return channels


@described("nn.GroupNorm")
def GroupNorm(
    num_groups: int,
    *,
    epsilon: float = 1e-5,
    use_scale: bool = True,
    use_bias: bool = True,
    scale_init: Initializer = ONES,
    bias_init: Initializer = ZEROS,
) -> Layer:
    """Group normalization (Wu & He, 2018): normalize each example over groups of channels.

    The ``C`` channels (the last axis) are cut into ``num_groups`` groups of ``C / num_groups``
    consecutive channels. For each example and group, ``μ`` and ``σ²`` are the mean and biased
    variance over the group's channels at every position (height, width, time...), and
    ``y = (x − μ)/√(σ² + ε) · scale + bias`` with a ``scale`` and ``bias`` per channel. This is
    ``torch.nn.GroupNorm``'s formula, channels last. Nothing depends on the rest of the batch,
    so small batches are fine, ``train`` changes nothing and there is no state.
    ``num_groups=1`` normalizes all of an example at once (LayerNorm over every non-batch
    axis); ``num_groups=C`` normalizes each channel alone (instance normalization).

    Params are ``{"scale": (C,), "bias": (C,)}``, starting at ones and zeros (pure
    normalization). ``epsilon=1e-5`` follows PyTorch (Flax uses ``1e-6``). There is no default
    ``num_groups``: Flax's 32 needs at least 32 channels, and the right number depends on the
    width. Statistics are computed in at least float32.

    Args:
      num_groups: the number of groups, a positive int that divides the channels.
      epsilon: added to the variance before the square root, a positive number.
      use_scale: multiply by a learned ``scale``; without it there is no ``"scale"`` param.
      use_bias: add a learned ``bias``; without it there is no ``"bias"`` param.
      scale_init: initializer of ``scale``.
      bias_init: initializer of ``bias``.

    Returns:
      A layer mapping ``(B, ..., C)`` to the same shape.

    Raises:
      TypeError, ValueError: at construction, for a hyperparameter of the wrong type or value.
      ShapeError: at ``init`` or trace time, if the input has no axis besides the batch, ``C``
        is unknown or not divisible by ``num_groups``, or ``C`` differs from the one at
        ``init``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from jaxnet.nn.norm import GroupNorm
      >>> layer = GroupNorm(2)
      >>> shape, params, state = layer.init(jax.random.key(0), (2, 8, 8, 4))
      >>> shape, params["scale"].shape, state
      ((2, 8, 8, 4), (4,), {})
    """
    num_groups = positive_int(num_groups, layer="group_norm", argument="num_groups")
    epsilon = positive_number(epsilon, layer="group_norm", argument="epsilon")
    use_scale = flag(use_scale, layer="group_norm", argument="use_scale")
    use_bias = flag(use_bias, layer="group_norm", argument="use_bias")
    inits = tuple(
        initializer(init, layer="group_norm", argument=name)
        for name, init in (("scale_init", scale_init), ("bias_init", bias_init))
    )

    def init(key: Array, input_shape: Sequence[int | None]) -> tuple[Shape, Params, State]:
        shape = as_shape(input_shape, layer="group_norm")
        channels = _group_norm_channels(shape, num_groups)
        return shape, _affine_params(key, channels, use_scale, use_bias, inits), {}

    def apply(
        params: Params, state: State, x: Array, *, key: Array | None = None, train: bool = False
    ) -> tuple[Array, State]:
        widths = [p.shape[0] for p in params.values()]  # without params any width is fine
        expect_shape(x, (None, ..., widths[0] if widths else None), layer="group_norm")
        channels = _group_norm_channels(tuple(x.shape), num_groups)
        grouped = x.reshape(*x.shape[:-1], num_groups, channels // num_groups)  # (B, ..., G, C/G)
        reduced = (*range(1, x.ndim - 1), x.ndim)  # every axis but the batch and the group
        stats_x = grouped.astype(_stats_dtype(x))
        mean = jnp.mean(stats_x, axis=reduced, keepdims=True)  # (B, 1, ..., G, 1)
        var = jnp.var(stats_x, axis=reduced, keepdims=True)  # (B, 1, ..., G, 1), biased
        y = _normalize(grouped, mean, var, epsilon).reshape(x.shape)  # (B, ..., C)
        return _affine(y, params, (1,) * (x.ndim - 1) + (channels,)), state

    return Layer(init, apply, "group_norm")


# ------------------------------------------------------------- RMSNorm


@described("nn.RMSNorm")
def RMSNorm(
    *, epsilon: float = 1e-6, use_scale: bool = True, scale_init: Initializer = ONES
) -> Layer:
    """Root-mean-square normalization (Zhang & Sennrich, 2019): rescale each example's last axis.

    ``y = x / √(mean(x²) + ε) · scale``, the mean over the last axis (size ``C``) at every
    position of the other axes: LayerNorm without subtracting the mean and without a bias, which
    saves a reduction and works as well in transformers (T5, LLaMA, Gemma). This is
    ``torch.nn.RMSNorm(C)``'s formula. No state; ``train`` changes nothing.

    Params are ``{"scale": (C,)}``, starting at ones. ``epsilon=1e-6`` follows Flax and T5
    (PyTorch's default is the input dtype's machine epsilon, about ``1.2e-7`` in float32).
    Statistics are computed in at least float32.

    Args:
      epsilon: added to the mean square before the square root, a positive number.
      use_scale: multiply by a learned ``scale``; without it there are no params.
      scale_init: initializer of ``scale``.

    Returns:
      A layer mapping ``(B, ..., C)`` to the same shape.

    Raises:
      TypeError, ValueError: at construction, for a hyperparameter of the wrong type or value.
      ShapeError: at ``init``, if the input has no axis besides the batch or ``C`` is unknown;
        at trace time, if ``C`` differs from the one at ``init``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from jaxnet.nn.norm import RMSNorm
      >>> layer = RMSNorm()
      >>> shape, params, state = layer.init(jax.random.key(0), (None, 2))
      >>> y, _ = layer.apply(params, state, jnp.array([[3.0, -4.0]]))  # rms √((9 + 16)/2)
      >>> [round(float(v), 4) for v in y[0]]  # x / 3.5355
      [0.8485, -1.1314]
    """
    epsilon = positive_number(epsilon, layer="rms_norm", argument="epsilon")
    use_scale = flag(use_scale, layer="rms_norm", argument="use_scale")
    inits = (initializer(scale_init, layer="rms_norm", argument="scale_init"), ZEROS)

    def init(key: Array, input_shape: Sequence[int | None]) -> tuple[Shape, Params, State]:
        shape = as_shape(input_shape, layer="rms_norm")
        features = shape[-1]
        if len(shape) < 2 or features is None:
            raise ShapeError(
                f"needs inputs (batch, ..., features) with a known number of features, "
                f"got {format_shape(shape)}",
                root="rms_norm",
            )
        return shape, _affine_params(key, features, use_scale, False, inits), {}

    def apply(
        params: Params, state: State, x: Array, *, key: Array | None = None, train: bool = False
    ) -> tuple[Array, State]:
        width = params["scale"].shape[0] if "scale" in params else None
        expect_shape(x, (None, ..., width), layer="rms_norm")
        stats_x = x.astype(_stats_dtype(x))
        mean_square = jnp.mean(jnp.square(stats_x), axis=-1, keepdims=True)  # (B, ..., 1)
        y = x * jax.lax.rsqrt(mean_square + epsilon)
        return _affine(y, params, (1,) * (x.ndim - 1) + (x.shape[-1],)), state

    return Layer(init, apply, "rms_norm")
