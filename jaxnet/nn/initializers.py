"""``initializer``: a ``jax.nn.initializers`` initializer that a config can name.

``jax.nn.initializers.he_normal()`` returns a closure, which no JSON file can describe, so a
net using it cannot be written by :func:`jaxnet.to_config`. ``jn.nn.initializer("he_normal")``
is the same initializer (it calls the same factory) and remembers its name and arguments.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from jaxnet.describe import Spec, described


def _factories() -> tuple[str, ...]:
    """The public factories of ``jax.nn.initializers`` (``zeros`` and ``ones`` are
    initializers themselves, and a config names them as they are)."""
    module = jax.nn.initializers
    return tuple(
        name
        for name in sorted(dir(module))
        if not name.startswith("_")
        and name not in ("zeros", "ones", "Initializer")
        and inspect.isfunction(getattr(module, name))
    )


@dataclasses.dataclass(frozen=True, eq=False)
class NamedInitializer:
    """An initializer ``(key, shape, dtype) -> array`` made by a ``jax.nn.initializers``
    factory, with the factory's name and arguments (see :func:`initializer`)."""

    name: str
    arguments: Mapping[str, Any]
    spec: Spec | None = None

    @functools.cached_property
    def _made(self) -> Any:
        return getattr(jax.nn.initializers, self.name)(**self.arguments)

    def __call__(self, key: jax.Array, shape: Any, dtype: Any = jnp.float32) -> jax.Array:
        """Draw an array of ``shape`` and ``dtype`` from ``key``."""
        return self._made(key, shape, dtype)


@described("nn.initializer")
def initializer(name: str, **arguments: Any) -> NamedInitializer:
    """The ``jax.nn.initializers`` initializer ``name(**arguments)``, nameable in a config.

    Args:
      name: a factory of ``jax.nn.initializers``: ``"he_normal"``, ``"glorot_uniform"``,
        ``"normal"``, ``"orthogonal"``, ``"variance_scaling"``, ...
      **arguments: its arguments, JSON values (``stddev=0.02``, ``in_axis=-2``).

    Raises:
      ValueError: for an unknown name (the message lists the known ones) or arguments the
        factory refuses.

    Example:
      >>> import jax, jaxnet as jn
      >>> he = jn.nn.initializer("he_normal")
      >>> he(jax.random.key(0), (64, 32)).shape
      (64, 32)
      >>> net = jn.nn.Dense(32, w_init=he)
      >>> jn.to_config(net)["net"]["arguments"]["w_init"]
      {'type': 'nn.initializer', 'arguments': {'name': 'he_normal'}}
    """
    known = _factories()
    if name not in known:
        raise ValueError(
            f"initializer: unknown name {name!r}; jax.nn.initializers has {', '.join(known)}"
        )
    for key, value in arguments.items():
        values = value if isinstance(value, tuple | list) else (value,)
        if not all(v is None or isinstance(v, bool | int | float | str) for v in values):
            raise ValueError(
                f"initializer: {key}={value!r} is not a number, string, None or a tuple of them"
            )
    made = NamedInitializer(name, dict(arguments))
    try:
        _ = made._made  # the factory's own checks of its arguments, now rather than at init
    except (TypeError, ValueError) as error:
        raise ValueError(f"initializer: {name}{tuple(arguments.items())}: {error}") from None
    return made
