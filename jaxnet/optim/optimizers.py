"""Named optimizers: optax transformations that remember how they were made.

An optax transformation is a pair of closures, which no file can describe. A run folder can
only rebuild the optimizer (and so restore the whole train state, to train on) when it was
made by name: ``jn.train.optimizer("adam", learning_rate=1e-3)`` is ``optax.adam(1e-3)`` plus
its description, which ``fit`` writes to ``model.json``. Any other optax transformation trains
the same; its run folder then restores parameters and layer state only.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import optax


def momentum(learning_rate: Any) -> optax.GradientTransformation:
    """SGD with momentum 0.9 (Polyak's heavy ball), the usual companion of plain SGD."""
    return optax.sgd(learning_rate, momentum=0.9)


OPTIMIZERS: Mapping[str, Callable[..., optax.GradientTransformation]] = MappingProxyType(
    {
        "adam": optax.adam,
        "adamw": optax.adamw,
        "sgd": optax.sgd,
        "momentum": momentum,
        "rmsprop": optax.rmsprop,
    }
)
"""The optimizers a name may stand for; each is called as ``OPTIMIZERS[name](learning_rate=η,
...)``."""


class NamedOptimizer(optax.GradientTransformationExtraArgs):
    """An optax transformation that carries its name and hyperparameters (:attr:`described`),
    made by :func:`optimizer`."""

    described: dict[str, Any]


def optimizer(name: str, **hyperparameters: Any) -> NamedOptimizer:
    """The optax optimizer ``name`` with ``hyperparameters``, described for the run folder.

    Args:
      name: one of :data:`OPTIMIZERS` (``"adam"``, ``"adamw"``, ``"sgd"``, ``"momentum"``,
        ``"rmsprop"``).
      **hyperparameters: its keyword arguments, JSON values (``learning_rate=1e-3``); a
        schedule is a function, which a file cannot hold: pass the optax transformation itself.

    Raises:
      ValueError: for an unknown name (with the known ones) or a hyperparameter that is not a
        number, string, bool or None.
      TypeError: for an argument the optax function does not take.

    Example:
      >>> import jaxnet as jn
      >>> jn.train.optimizer("adam", learning_rate=1e-3).described
      {'name': 'adam', 'hyperparameters': {'learning_rate': 0.001}}
    """
    if name not in OPTIMIZERS:
        close = difflib.get_close_matches(str(name), list(OPTIMIZERS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown optimizer {name!r}{hint} (known: {', '.join(OPTIMIZERS)})")
    for key, value in hyperparameters.items():
        if not (value is None or isinstance(value, bool | int | float | str)):
            raise ValueError(
                f"optimizer {name!r}: {key}={value!r} is not a JSON value (a schedule is a "
                "function, which config files cannot hold; pass the optax transformation)"
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"optimizer {name!r}: {key} must be finite, got {value!r}")
    made = NamedOptimizer(*OPTIMIZERS[name](**hyperparameters))
    made.described = {"name": name, "hyperparameters": dict(hyperparameters)}
    return made


def describe_optimizer(transformation: Any) -> dict[str, Any]:
    """``{"name": ..., "hyperparameters": ...}`` for a named optimizer; otherwise a ``None``
    name and a note saying why the optimizer cannot be rebuilt."""
    if isinstance(transformation, NamedOptimizer):
        return dict(transformation.described)
    return {
        "name": None,
        "note": "an optax transformation not made by jn.train.optimizer(name, ...), which a "
        "file cannot describe; load() restores the parameters and layer state only",
    }


def rebuild_optimizer(described: Mapping[str, Any]) -> NamedOptimizer | None:
    """The optimizer a :func:`describe_optimizer` entry names, or None if it names none."""
    name = described.get("name")
    if name is None:
        return None
    hyperparameters = described.get("hyperparameters", {})
    if not isinstance(name, str) or not isinstance(hyperparameters, Mapping):
        raise ValueError(f"expected a name and an object of hyperparameters, got {described!r}")
    return optimizer(name, **hyperparameters)
