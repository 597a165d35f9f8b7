"""Embedding: a learned lookup table from integer ids (tokens, categories) to vectors."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

from jaxnet.core import Array, Layer, Params, Shape, ShapeError, State, as_shape, format_shape
from jaxnet.describe import described
from jaxnet.nn._checks import expect_shape, initializer, positive_int

Initializer = jax.nn.initializers.Initializer
STANDARD_NORMAL = jax.nn.initializers.normal(stddev=1.0)
"""Embedding's default initializer: every entry drawn from N(0, 1)."""


@described("nn.Embedding")
def Embedding(
    num_embeddings: int, features: int, *, embedding_init: Initializer = STANDARD_NORMAL
) -> Layer:
    """Look up a learned vector for each integer id: ``y[..., :] = embedding[x[...], :]``.

    Integer inputs of any shape ``(B, ...)`` map to ``(B, ..., features)``; params are
    ``{"embedding": (num_embeddings, features)}``. Only the looked-up rows get a gradient (an
    id used twice gets twice the gradient); the ids themselves are not differentiable.

    Default initializer: N(0, 1) for every entry, as in PyTorch's ``nn.Embedding`` and in the
    token embedders of T5X and MaxText (built on Flax's ``Embed``). The rows then look like the
    standardized inputs that the next layer's default initializer assumes (``Dense`` uses LeCun
    normal, variance ``1/in_features``, which keeps unit-variance inputs at unit variance).
    Flax's library default, variance ``1/features``, is made for reusing the table as the
    output projection (``Embed.attend``), which this layer does not offer; pass
    ``embedding_init=jn.nn.initializer("variance_scaling", scale=1.0, mode="fan_in",
    distribution="normal", out_axis=0)`` to get it.

    Out-of-range ids: values cannot be checked under ``jit``, so an id outside
    ``[0, num_embeddings)`` gives a row of NaN (``jnp.take`` with ``mode="fill"``), negative ids
    included (NumPy would count them from the end). The NaN reaches the loss, and
    ``jn.train.fit`` names this layer as the first non-finite one. ``mode="clip"`` was rejected
    on purpose: it would map a too-large id silently to the last row, and a vocabulary off by
    one would train without a sign.

    Args:
      num_embeddings: the number of ids (vocabulary size), a positive int.
      features: the length of each vector, a positive int.
      embedding_init: a ``jax.nn.initializers`` initializer for the table.

    Returns:
      A layer mapping integer ids ``(B, ...)`` to float32 vectors ``(B, ..., features)``.

    Raises:
      TypeError, ValueError: at construction, for a size that is not a positive int or an
        ``embedding_init`` that is not callable.
      TypeError: at trace time, if the input is not an integer array (floats, bools): ids must
        be integers, and silently truncating floats would hide a bug.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from jaxnet.nn.embedding import Embedding
      >>> layer = Embedding(10, 4)
      >>> shape, params, state = layer.init(jax.random.key(0), (2, 3))
      >>> shape, params["embedding"].shape
      ((2, 3, 4), (10, 4))
      >>> y, _ = layer.apply(params, state, jnp.array([[1, 2, 3], [4, 5, 10]]))
      >>> y.shape, bool(jnp.isnan(y[1, 2]).all())  # id 10 is out of range: NaN
      ((2, 3, 4), True)
    """
    num_embeddings = positive_int(num_embeddings, layer="embedding", argument="num_embeddings")
    features = positive_int(features, layer="embedding", argument="features")
    embedding_init = initializer(embedding_init, layer="embedding", argument="embedding_init")

    def init(key: Array, input_shape: Sequence[int | None]) -> tuple[Shape, Params, State]:
        shape = as_shape(input_shape, layer="embedding")
        table = embedding_init(key, (num_embeddings, features), jnp.float32)
        return (*shape, features), {"embedding": table}, {}

    def apply(
        params: Params, state: State, x: Array, *, key: Array | None = None, train: bool = False
    ) -> tuple[Array, State]:
        if not jnp.issubdtype(x.dtype, jnp.integer):
            raise TypeError(
                f"embedding: expected integer ids, got an array of dtype {x.dtype} and shape "
                f"{tuple(x.shape)}; convert with x.astype(jnp.int32) if it holds whole numbers"
            )
        table = params["embedding"]  # (num_embeddings, features)
        y = jnp.take(table, x, axis=0, mode="fill", fill_value=float("nan"))  # (B, ..., F)
        negative = (x < 0)[..., None]  # (B, ..., 1); "fill" counts these from the end
        return jnp.where(negative, jnp.nan, y), state

    return Layer(init, apply, "embedding")


POSITION_INIT = jax.nn.initializers.normal(stddev=0.02)
"""PositionEmbedding's default: small N(0, 0.02²) entries, as GPT-2 and BERT start them."""


@described("nn.PositionEmbedding")
def PositionEmbedding(*, embedding_init: Initializer = POSITION_INIT) -> Layer:
    """Add a learned vector for each position: ``y[b, t, :] = x[b, t, :] + table[t, :]``.

    Self-attention treats its input as a set: permuting the positions permutes the output the
    same way. Adding a vector that depends on the position is what lets it tell "first" from
    "last" (needed, say, to reverse a sequence). The table's shape ``(T, features)`` is read
    from the input shape ``(B, T, features)`` at ``init``.

    Args:
      embedding_init: a ``jax.nn.initializers`` initializer for the table.

    Raises:
      TypeError: at construction, if ``embedding_init`` is not callable.
      ShapeError: at ``init``, for an input that is not ``(B, T, features)`` with known T and
        features; at trace time, for a sequence of another length or width.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from jaxnet.nn.embedding import PositionEmbedding
      >>> shape, params, _ = PositionEmbedding().init(jax.random.key(0), (None, 5, 4))
      >>> shape, params["embedding"].shape
      ((None, 5, 4), (5, 4))
    """
    embedding_init = initializer(
        embedding_init, layer="position_embedding", argument="embedding_init"
    )

    def init(key: Array, input_shape: Sequence[int | None]) -> tuple[Shape, Params, State]:
        shape = as_shape(input_shape, layer="position_embedding")
        if len(shape) != 3 or None in shape[1:]:
            raise ShapeError(
                f"expected input (batch, length, features) with known length and features, "
                f"got {format_shape(shape)}",
                root="position_embedding",
            )
        length, features = shape[1], shape[2]
        assert length is not None and features is not None  # checked just above
        return shape, {"embedding": embedding_init(key, (length, features), jnp.float32)}, {}

    def apply(
        params: Params, state: State, x: Array, *, key: Array | None = None, train: bool = False
    ) -> tuple[Array, State]:
        table = params["embedding"]  # (T, F)
        expect_shape(x, (None, *table.shape), layer="position_embedding")
        return x + table[None].astype(x.dtype), state  # (B, T, F)

    return Layer(init, apply, "position_embedding")
