"""Mixed precision: compute in bfloat16 or float16, keep parameters and the loss in float32.

Parameters and optimizer state stay float32 (small updates to large weights would vanish in 16
bits); each step casts a 16-bit copy of the parameters and inputs for the forward and backward
pass, and casts the predictions back to float32 before the loss. bfloat16 has float32's range,
so it needs nothing more. float16 does not: small gradients underflow to zero. It needs *loss
scaling*: the loss is multiplied by a scale S before differentiation and the gradients divided by
S after; :func:`dynamic_loss_scale` halves S whenever the gradients overflow (skipping that
update) and doubles it after a run of good steps.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxnet.core import Array

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}
"""The compute dtypes a precision policy may name."""


def check_precision(name: str | None) -> str:
    """``name`` if it is one of :data:`DTYPES` (None means float32).

    Raises:
      ValueError: for any other name.
    """
    name = name or "float32"
    if name not in DTYPES:
        raise ValueError(f"precision must be one of {tuple(DTYPES)}, got {name!r}")
    return name


def cast_floating(tree: Any, dtype: Any) -> Any:
    """``tree`` with every floating-point array cast to ``dtype`` (integers left alone)."""

    def cast(leaf: Any) -> Any:
        is_float = hasattr(leaf, "dtype") and jnp.issubdtype(leaf.dtype, jnp.floating)
        return leaf.astype(dtype) if is_float else leaf

    return jax.tree.map(cast, tree)


class LossScaleState(NamedTuple):
    """The state of :func:`dynamic_loss_scale`: the scale, the good steps since it last
    changed, and the wrapped optimizer's state."""

    scale: Array
    good_steps: Array
    inner: optax.OptState


def dynamic_loss_scale(
    optimizer: optax.GradientTransformation,
    *,
    initial_scale: float = 2.0**15,
    growth_interval: int = 2000,
    factor: float = 2.0,
) -> optax.GradientTransformation:
    """Wrap ``optimizer`` to take gradients of a loss scaled by S and manage S.

    ``update`` divides the gradients by S. If any is non-finite the update is skipped (zero
    updates, the inner state unchanged) and S is divided by ``factor`` (never below 1); after
    ``growth_interval`` finite steps in a row S is multiplied by ``factor``.

    Example:
      >>> import jax.numpy as jnp, optax
      >>> opt = dynamic_loss_scale(optax.sgd(1.0), initial_scale=4.0)
      >>> state = opt.init({"w": jnp.zeros(2)})
      >>> updates, state = opt.update({"w": jnp.array([4.0, jnp.inf])}, state)
      >>> updates["w"].tolist(), float(state.scale)
      ([0.0, 0.0], 2.0)
    """

    def init(params: Any) -> LossScaleState:
        scale = jnp.asarray(initial_scale, jnp.float32)
        return LossScaleState(scale, jnp.zeros((), jnp.int32), optimizer.init(params))

    def update(grads: Any, state: LossScaleState, params: Any = None) -> Any:
        grads = jax.tree.map(lambda g: g / state.scale.astype(g.dtype), grads)
        finite = jnp.all(jnp.stack([jnp.isfinite(g).all() for g in jax.tree.leaves(grads)]))
        updates, inner = optimizer.update(grads, state.inner, params)
        updates = jax.tree.map(lambda u: jnp.where(finite, u, jnp.zeros_like(u)), updates)
        inner = jax.tree.map(lambda new, old: jnp.where(finite, new, old), inner, state.inner)
        grow = finite & (state.good_steps + 1 >= growth_interval)
        scale = jnp.where(finite, state.scale, jnp.maximum(state.scale / factor, 1.0))
        scale = jnp.where(grow, scale * factor, scale)
        good_steps = jnp.where(finite & ~grow, state.good_steps + 1, 0)
        return updates, LossScaleState(scale, good_steps, inner)

    return optax.GradientTransformation(init, update)


def loss_scale_of(opt_state: Any, precision: str) -> Array:
    """The current loss scale: S from a :class:`LossScaleState`, else 1.

    Raises:
      ValueError: for float16 without loss scaling.
    """
    if isinstance(opt_state, LossScaleState):
        return opt_state.scale
    if precision == "float16":
        raise ValueError(
            "precision='float16' needs loss scaling: wrap the optimizer with "
            "jn.train.dynamic_loss_scale(optimizer) (fit does this for you)"
        )
    return jnp.ones((), jnp.float32)
