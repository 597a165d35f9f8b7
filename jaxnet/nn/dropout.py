"""Dropout: during training, zero a random fraction ``drop_rate`` of the entries.

The rate is named for what it does: ``drop_rate`` is the fraction of entries set to **zero**
(stax's ``Dropout(rate)`` meant the *keep* probability, a classic source of silently inverted
regularisation). Survivors are scaled by ``1/(1 - drop_rate)`` ("inverted dropout") so the
expected value of every entry is unchanged and evaluation needs no rescaling.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

from jaxnet.core import Array, Layer, Params, Shape, State, as_shape
from jaxnet.describe import described
from jaxnet.nn._checks import fraction

MISSING_KEY = (
    "dropout: train=True needs a PRNG key to draw the dropout mask, got key=None. "
    "Pass one to apply: net.apply(params, state, x, key=jax.random.key(0), train=True) "
    "(jn.train.fit and jn.train.make_train_step pass a fresh key every step for you); "
    "for evaluation use train=False, which needs no key."
)


@described("nn.Dropout")
def Dropout(drop_rate: float) -> Layer:
    """Inverted dropout: zero each entry with probability ``drop_rate`` while training.

    With ``train=True``, each entry is kept independently with probability ``1 - drop_rate``
    (mask ``m ~ Bernoulli(1 - drop_rate)``, drawn from ``key``) and ``y = m · x / (1 - drop_rate)``,
    so ``E[y] = x``. With ``train=False`` the layer is the identity and needs no key. The
    gradient is ``m / (1 - drop_rate)``: exactly zero where an entry was dropped.

    Inside a combinator each child receives its own key (the parent's key folded with the
    child's name), so two dropouts in one net draw different masks from one ``key``; under
    ``jax.vmap`` over a batch of keys each member draws its own mask.

    Args:
      drop_rate: the fraction of entries set to zero, in ``[0, 1)``; ``0`` is the identity.

    Returns:
      A layer without parameters or state that keeps its input's shape ``(B, ...)``.

    Raises:
      TypeError: at construction, if ``drop_rate`` is not a number (bools are rejected).
      ValueError: at construction, if ``drop_rate`` is outside ``[0, 1)``; at ``apply``, if
        ``train=True`` and no ``key`` is given.

    Example:
      >>> import jax, jax.numpy as jnp, jaxnet as jn
      >>> from jaxnet.nn.dropout import Dropout
      >>> layer = Dropout(0.5)
      >>> x = jnp.ones((2, 4))
      >>> y, _ = layer.apply({}, {}, x, key=jax.random.key(0), train=True)
      >>> y.shape, set(y.ravel().tolist()) <= {0.0, 2.0}  # dropped, or kept and doubled
      ((2, 4), True)
      >>> bool(jnp.array_equal(layer.apply({}, {}, x)[0], x))  # train=False: the identity
      True
    """
    rate = fraction(drop_rate, layer="dropout", argument="drop_rate")

    def init(key: Array, input_shape: Sequence[int | None]) -> tuple[Shape, Params, State]:
        return as_shape(input_shape, layer="dropout"), {}, {}

    def apply(
        params: Params, state: State, x: Array, *, key: Array | None = None, train: bool = False
    ) -> tuple[Array, State]:
        if not train:
            return x, state
        if key is None:
            raise ValueError(MISSING_KEY)
        if rate == 0.0:
            return x, state
        keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)  # (B, ...) booleans
        return jnp.where(keep, x / (1.0 - rate), jnp.zeros_like(x)), state

    return Layer(init, apply, "dropout")
