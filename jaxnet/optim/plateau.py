"""Reduce the learning rate when a monitored metric stops improving (Keras's
``ReduceLROnPlateau``), as a scale in the optimizer state.

:func:`with_lr_scale` multiplies the optimizer's updates by a scale kept in its state
(:class:`LrScaleState`, 1 at first), so the scale is checkpointed with the rest and a resume
continues with it. After each epoch ``fit`` computes the scale for the next one from the
history alone (:meth:`ReduceOnPlateau.scale_after`), so a resumed run takes the same
decisions as one that never stopped, and writes the scale of each epoch into its row
(``lr_scale``, and ``lr`` when the optimizer's base rate is known).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxnet.metrics import monitor_mode
from jaxnet.optim.state import find_states
from jaxnet.validate import at_least, checked_fields, in_unit_interval, non_negative, one_of


class LrScaleState(NamedTuple):
    """The factor the updates are multiplied by."""

    scale: Any


def with_lr_scale(optimizer: optax.GradientTransformation) -> Any:
    """``optimizer`` whose updates are multiplied by the scale in its state (1 at first)."""

    def init(params: Any) -> tuple[Any, LrScaleState]:
        return optimizer.init(params), LrScaleState(jnp.ones((), jnp.float32))

    def update(updates: Any, state: Any, params: Any = None) -> Any:
        inner, scaled = state
        updates, inner = optimizer.update(updates, inner, params)
        updates = jax.tree.map(lambda u: (u * scaled.scale).astype(u.dtype), updates)
        return updates, (inner, scaled)

    return optax.GradientTransformation(init, update)


def lr_scale(opt_state: Any) -> float:
    """The scale in ``opt_state`` (of :func:`with_lr_scale`).

    Raises:
      ValueError: the optimizer has none.
    """
    found = find_states(opt_state, LrScaleState)
    if not found:
        raise ValueError("lr_scale: the optimizer state holds no learning-rate scale")
    return float(found[0].scale)


def set_lr_scale(opt_state: Any, scale: float) -> Any:
    """``opt_state`` with its scale set to ``scale``, on the devices of the old one."""

    def replace(node: Any) -> Any:
        if not isinstance(node, LrScaleState):
            return node
        old = node.scale
        value = np.asarray(scale, old.dtype)
        if not isinstance(old, jax.Array):
            return LrScaleState(jnp.asarray(value))
        # each process builds its own shards: device_put of a multi-process sharding cannot
        return LrScaleState(jax.make_array_from_callback((), old.sharding, lambda _: value))

    return jax.tree.map(replace, opt_state, is_leaf=lambda n: isinstance(n, LrScaleState))


@dataclasses.dataclass(frozen=True)
class ReduceOnPlateau:
    """Multiply the learning rate by ``factor`` once ``monitor`` has not improved by more than
    ``min_delta`` for ``patience`` epochs in a row (Keras's count); the ``cooldown`` epochs
    after a reduction are not counted as epochs without improvement (PyTorch's rule; an
    improvement during them still resets the count).

    Args:
      monitor: a history key (``"val_loss"``); None follows ``fit``'s monitor.
      factor: the multiplier, in (0, 1).
      patience: epochs without improvement before a reduction, a positive int.
      min_delta: the least change that counts as improvement, >= 0.
      mode: ``"min"`` or ``"max"``; by default ``"max"`` for accuracies, else ``"min"``.
      cooldown: epochs after a reduction during which none is counted, >= 0.
      min_scale: the scale never goes below this (a fraction of the base rate), >= 0.

    Example:
      >>> rule = ReduceOnPlateau(monitor="val_loss", factor=0.5, patience=2)
      >>> rule.scale_after([{"val_loss": v} for v in (1.0, 0.8, 0.9, 0.85)])
      0.5
    """

    monitor: str | None = None
    factor: float = 0.1
    patience: int = 5
    min_delta: float = 0.0
    mode: str | None = None
    cooldown: int = 0
    min_scale: float = 0.0

    def __post_init__(self) -> None:
        owner = "ReduceOnPlateau"
        checked_fields(
            self,
            factor=in_unit_interval(self.factor, "factor", owner=owner),
            patience=at_least(self.patience, 1, "patience", owner=owner),
            cooldown=at_least(self.cooldown, 0, "cooldown", owner=owner),
            min_delta=non_negative(self.min_delta, "min_delta", owner=owner),
            min_scale=non_negative(self.min_scale, "min_scale", owner=owner),
        )
        one_of(self.mode, (None, "min", "max"), "mode", owner=owner)

    def scale_after(self, history: Sequence[Mapping[str, Any]]) -> float:
        """The scale for the epoch after ``history``: replayed from the first row, so it
        depends on the history alone."""
        if self.monitor is None:
            raise ValueError("ReduceOnPlateau: monitor is None (fit fills in its own monitor)")
        sign = 1.0 if (self.mode or monitor_mode(self.monitor)) == "max" else -1.0
        scale, best, wait, cooling = 1.0, -float("inf"), 0, 0
        for row in history:
            value = sign * float(row[self.monitor])
            if value > best + self.min_delta:  # an improvement counts, in cooldown too
                best, wait = value, 0
            elif not cooling:
                wait += 1
            cooling = max(cooling - 1, 0)  # every epoch after a reduction uses the cooldown up
            if wait >= self.patience:
                scale = max(scale * self.factor, self.min_scale)
                wait, cooling = 0, self.cooldown
        return scale
