"""Checks of settings, each raising one clear error that names the setting and its owner.

The settings groups (``Streaming``, ``Update``, ``ReduceOnPlateau``, ``Checkpointing``,
``EarlyStopping``) and the functions that take counts (``fit``, ``lr_find``, ``Checkpointer``)
all validate with these, so a bad value reads the same everywhere:
``Streaming: prefetch must be a positive int, got 0``. A ground-floor module: it imports
nothing of jaxnet.

>>> positive_int(3, "keep", owner="Checkpointing")
3
>>> positive_int(0, "keep", owner="Checkpointing")
Traceback (most recent call last):
ValueError: Checkpointing: keep must be a positive int, got 0
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import numpy as np

__all__ = [
    "at_least",
    "checked_fields",
    "flag",
    "in_unit_interval",
    "non_negative",
    "one_of",
    "positive_int",
]


def _prefix(owner: str) -> str:
    return f"{owner}: " if owner else ""


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def positive_int(value: Any, name: str, *, owner: str = "") -> int:
    """``value`` as an int >= 1 (a count: epochs, steps, a batch size).

    Raises:
      ValueError: ``{owner}: {name} must be a positive int, got {value!r}`` for anything else,
        a bool included.
    """
    if not _is_int(value) or value < 1:
        raise ValueError(f"{_prefix(owner)}{name} must be a positive int, got {value!r}")
    return int(value)


def at_least(value: Any, least: int, name: str, *, owner: str = "") -> int:
    """``value`` as an int >= ``least`` (a patience of 0 epochs' cooldown, 2 steps at least).

    Raises:
      ValueError: ``{owner}: {name} must be an int >= {least}, got {value!r}``.
    """
    if not _is_int(value) or value < least:
        raise ValueError(f"{_prefix(owner)}{name} must be an int >= {least}, got {value!r}")
    return int(value)


def flag(value: Any, name: str, *, owner: str = "") -> bool:
    """``value`` when it is True or False (not 1, not "yes").

    Raises:
      TypeError: ``{owner}: {name} must be True or False, got {value!r}``.
    """
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{_prefix(owner)}{name} must be True or False, got {value!r}")
    return bool(value)


def in_unit_interval(
    value: Any, name: str, *, owner: str = "", what: str = "", example: str = ""
) -> float:
    """``value`` as a float strictly between 0 and 1 (a decay, a factor).

    Args:
      what: how the message names such a value: ``"a decay "`` reads ``ema must be a decay
        in (0, 1)``.
      example: what follows the interval in the message, such as ``" such as 0.999"``.

    Raises:
      ValueError: ``{owner}: {name} must be {what}in (0, 1){example}, got {value!r}``.
    """
    if not _is_number(value) or not 0 < value < 1:
        raise ValueError(f"{_prefix(owner)}{name} must be {what}in (0, 1){example}, got {value!r}")
    return float(value)


def non_negative(value: Any, name: str, *, owner: str = "") -> float:
    """``value`` as a float >= 0 (a tolerance, a floor); NaN is refused.

    Raises:
      ValueError: ``{owner}: {name} must be >= 0, got {value!r}``.
    """
    if not _is_number(value) or not value >= 0:
        raise ValueError(f"{_prefix(owner)}{name} must be >= 0, got {value!r}")
    return float(value)


def one_of(value: Any, choices: Collection[Any], name: str, *, owner: str = "") -> Any:
    """``value`` when it is one of ``choices`` (None is a choice only when listed).

    Raises:
      ValueError: ``{owner}: {name} must be 'min' or 'max', got 'up'``.
    """
    if value not in choices:
        named = [repr(choice) for choice in choices if choice is not None]
        listed = " or ".join(named) if len(named) < 3 else f"{', '.join(named[:-1])} or {named[-1]}"
        raise ValueError(f"{_prefix(owner)}{name} must be {listed}, got {value!r}")
    return value


def checked_fields(settings: Any, **values: Any) -> None:
    """Store the checked ``values`` on the frozen dataclass ``settings`` (from its
    ``__post_init__``), so a NumPy count is kept as a Python int and a config.json that
    records it stays plain JSON."""
    for name, value in values.items():
        object.__setattr__(settings, name, value)
