"""The optimizer ``fit`` steps with: the user's optax transformation, wrapped by the
settings of the run (freezing, reduce-on-plateau, EMA, float16 loss scaling) in one fixed order,
so that :func:`jaxnet.runs.load` can make it again and restore its state from a checkpoint."""

from __future__ import annotations

from typing import Any

import optax

from jaxnet.optim.ema import with_ema
from jaxnet.optim.freeze import Trainable, freeze
from jaxnet.optim.plateau import with_lr_scale
from jaxnet.optim.precision import check_precision, dynamic_loss_scale
from jaxnet.optim.update import Update

__all__ = ["with_precision", "wrapped_optimizer"]


def wrapped_optimizer(
    optimizer: optax.GradientTransformation,
    trainable: Trainable,
    precision: str | None,
    update: Update | None,
) -> Any:
    """The optimizer ``fit`` steps with: frozen where not ``trainable``, its updates scaled
    by ``update.reduce_on_plateau``'s factor, keeping the moving average of ``update.ema``
    (of the new parameters, so a frozen one stays put), in dynamic loss scaling for float16
    (a skipped step changes none of them)."""
    optimizer = freeze(optimizer, trainable)
    if update is not None and update.reduce_on_plateau is not None:
        optimizer = with_lr_scale(optimizer)
    if update is not None and update.ema is not None:
        optimizer = with_ema(optimizer, update.ema)
    return with_precision(optimizer, precision)


def with_precision(optimizer: optax.GradientTransformation, precision: str | None) -> Any:
    """The optimizer ``fit`` uses: wrapped in dynamic loss scaling for float16."""
    if check_precision(precision) == "float16":
        return dynamic_loss_scale(optimizer)
    return optimizer
