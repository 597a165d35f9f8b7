"""Attention: ``MultiHeadAttention``, multi-head self-attention on ``(batch, time, features)``.

The softmax and the causal mask come from ``jax.nn.dot_product_attention`` (the same formula
is written out for float64 inputs, which that function would take through a float32 softmax);
this module adds the projections, the checks and the padding mask. ``docs/layers/sequences.md``
has the layouts and how to import PyTorch or Flax weights.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

from jaxnet.core import Array, Layer, Params, Shape, ShapeError, State, as_shape, format_shape
from jaxnet.describe import described
from jaxnet.nn._checks import check_mask, flag, positive_int, split_input

_LAYER = "multi_head_attention"
IN_PROJECTION_INIT = jax.nn.initializers.lecun_normal(in_axis=0, out_axis=(1, 2))
"""Query, key and value kernels ``(D, heads, head_features)``: variance ``1/D``."""
OUT_PROJECTION_INIT = jax.nn.initializers.lecun_normal(in_axis=(0, 1), out_axis=2)
"""Output kernel ``(heads, head_features, out)``: variance ``1/(heads·head_features)``."""


def _attend(q: Array, k: Array, v: Array, mask: Array | None, causal: bool) -> Array:
    """softmax(q·kᵀ/√H + masks)·v on ``(B, T, N, H)``, by ``jax.nn.dot_product_attention``.

    That function always takes the softmax in float32, so float64 inputs would silently lose
    half their digits (and fail finite-difference checks); for them the same formula is written
    out here in float64.
    """
    if q.dtype != jnp.float64:
        return jax.nn.dot_product_attention(q, k, v, mask=mask, is_causal=causal)
    steps = q.shape[1]
    logits = jnp.einsum("btnh,bsnh->bnts", q, k) / jnp.sqrt(jnp.float64(q.shape[3]))
    allowed = jnp.ones((1, 1, steps, steps), bool)
    if causal:
        allowed = jnp.tril(allowed)  # key s <= query t
    if mask is not None:
        allowed = allowed & mask  # (B, 1, 1, S)
    logits = jnp.where(allowed, logits, jnp.finfo(jnp.float64).min)  # (B, N, T, S)
    return jnp.einsum("bnts,bsnh->btnh", jax.nn.softmax(logits, axis=-1), v)


def _optional_positive(value: int | None, argument: str) -> int | None:
    return None if value is None else positive_int(value, layer=_LAYER, argument=argument)


@described("nn.MultiHeadAttention")
def MultiHeadAttention(
    num_heads: int,
    *,
    head_features: int | None = None,
    out_features: int | None = None,
    causal: bool = False,
    use_bias: bool = True,
) -> Layer:
    """Multi-head scaled dot-product self-attention (Vaswani et al., 2017).

    For input ``x`` of shape ``(B, T, D)`` and each head ``n``::

        q_n = x · Wq_n + bq_n,  k_n = x · Wk_n + bk_n,  v_n = x · Wv_n + bv_n   # (B, T, head)
        a_n = softmax(q_n · k_nᵀ / √head + masks) · v_n                          # (B, T, head)
        y = Σ_n a_n · Wo_n + bo                                                  # (B, T, out)

    where ``head`` is ``head_features`` and ``out`` is ``out_features``.

    ``causal=True`` lets position ``t`` attend only to positions ``s ≤ t``, so the output at
    ``t`` does not depend on later inputs (a decoder). ``apply`` also accepts a pair ``(x, mask)``
    with a ``(B, T)`` bool padding mask (True = real position): no position attends to padded
    keys, and outputs at padded positions are zeros (as in :func:`jaxnet.nn.recurrent.RNN`).

    Params ``{"query": {"w": (D, heads, head_features), "b": (heads, head_features)}, "key": ...,
    "value": ..., "out": {"w": (heads, head_features, out_features), "b": (out_features,)}}``
    (no ``"b"`` without ``use_bias``): the layout of Flax's ``MultiHeadDotProductAttention``,
    whose kernels copy over as they are. From PyTorch's ``nn.MultiheadAttention`` (``E = D``,
    ``head_features = E // heads``): ``query.w = in_proj_weight[:E].T.reshape(E, heads, -1)``,
    ``query.b = in_proj_bias[:E].reshape(heads, -1)`` (key: rows ``E:2E``, value: ``2E:3E``),
    ``out.w = out_proj.weight.T.reshape(heads, -1, E)``, ``out.b = out_proj.bias``.

    Defaults: kernels LeCun normal over their input axes (variance ``1/D`` for the projections,
    ``1/(heads·head_features)`` for the output), so that each projection keeps the scale of its
    input, as ``Dense`` does; biases zero.

    Args:
      num_heads: the number of heads, a positive int.
      head_features: the width of each head's queries, keys and values; by default
        ``D // num_heads`` (``D`` must then be divisible by ``num_heads``).
      out_features: the output width; by default ``D``, so the layer fits in ``residual``.
      causal: mask out attention to later positions.
      use_bias: add biases to the four projections.

    Raises:
      TypeError, ValueError: at construction, for a bad hyperparameter.
      ShapeError: at ``init``, if the input is not ``(batch, time, D)`` with a known ``D``, or
        ``D`` is not divisible by ``num_heads`` and ``head_features`` is not given; at trace
        time, for an input or mask of the wrong shape.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> layer = MultiHeadAttention(2, causal=True)
      >>> out_shape, params, state = layer.init(jax.random.key(0), (2, 5, 4))
      >>> out_shape, params["query"]["w"].shape, params["out"]["w"].shape
      ((2, 5, 4), (4, 2, 2), (2, 2, 4))
    """
    num_heads = positive_int(num_heads, layer=_LAYER, argument="num_heads")
    head_features = _optional_positive(head_features, "head_features")
    out_features = _optional_positive(out_features, "out_features")
    flag(causal, layer=_LAYER, argument="causal")
    flag(use_bias, layer=_LAYER, argument="use_bias")

    def sizes(shape: Shape) -> tuple[int, int, int]:
        """``(D, head_features, out_features)`` for an input of shape ``shape``."""
        if len(shape) != 3 or shape[2] is None:
            raise ShapeError(
                f"expected input (batch, time, features) with known features, "
                f"got {format_shape(shape)}",
                root=_LAYER,
            )
        features = shape[2]
        if head_features is None and features % num_heads:
            raise ShapeError(
                f"input features must be divisible by num_heads={num_heads} "
                f"(or pass head_features), got {format_shape(shape)}",
                root=_LAYER,
            )
        return features, head_features or features // num_heads, out_features or features

    def init(key: Array, input_shape: Sequence[int | None]) -> tuple[Shape, Params, State]:
        shape = as_shape(input_shape, layer=_LAYER)
        features, head, out = sizes(shape)
        keys = dict(zip(("query", "key", "value", "out"), jax.random.split(key, 4), strict=True))
        params: Params = {}
        for name in ("query", "key", "value"):
            params[name] = {"w": IN_PROJECTION_INIT(keys[name], (features, num_heads, head))}
            if use_bias:
                params[name]["b"] = jnp.zeros((num_heads, head), jnp.float32)
        params["out"] = {"w": OUT_PROJECTION_INIT(keys["out"], (num_heads, head, out))}
        if use_bias:
            params["out"]["b"] = jnp.zeros((out,), jnp.float32)
        return (shape[0], shape[1], out), params, {}

    def project(p: Params, x: Array) -> Array:
        y = jnp.einsum("btd,dnh->btnh", x, p["w"])  # (B, T, heads, head_features)
        return y + p["b"][None, None] if use_bias else y

    def apply(
        params: Params, state: State, x: Array, *, key: Array | None = None, train: bool = False
    ) -> tuple[Array, State]:
        x, mask = split_input(x, layer=_LAYER)
        features = params["query"]["w"].shape[0]
        if x.ndim != 3 or x.shape[2] != features:
            raise ShapeError(
                f"expected input (batch, time, {features}), got {format_shape(x.shape)}",
                root=_LAYER,
            )
        q, k, v = (project(params[name], x) for name in ("query", "key", "value"))
        key_mask = None
        if mask is not None:
            mask = check_mask(mask, tuple(x.shape[:2]), layer=_LAYER)
            key_mask = mask[:, None, None, :]  # (B, 1, 1, T): broadcast over heads and queries
        a = _attend(q, k, v, key_mask, causal)  # (B, T, heads, head_features)
        y = jnp.einsum("btnh,nho->bto", a, params["out"]["w"])  # (B, T, out)
        if use_bias:
            y = y + params["out"]["b"][None, None]
        if mask is not None:
            y = jnp.where(mask[:, :, None], y, jnp.zeros_like(y))
        return y, state

    return Layer(init, apply, _LAYER)
