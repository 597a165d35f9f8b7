"""Freezing parameters by path, compiled into an optax mask."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import Any

import jax
import optax

from jaxnet.core import Params, param_paths

Trainable = str | Callable[[str], bool] | None
"""Which parameters train: a glob over paths (``"dense_1/*"``), a predicate on the path, or
``None`` for all."""


def trainable_mask(params: Params, trainable: Trainable) -> Any:
    """A tree of bools with the structure of ``params``: True where the parameter trains.

    Raises:
      ValueError: if a pattern matches no parameter (the message lists the paths there are).
      TypeError: if ``trainable`` is neither a string, a callable nor None.
    """
    if trainable is None:
        return jax.tree.map(lambda _: True, params)
    if isinstance(trainable, str):
        pattern = trainable
        paths = param_paths(params)
        if not any(fnmatch.fnmatchcase(p, pattern) for p in paths):
            raise ValueError(
                f"trainable={pattern!r} matches no parameter; the paths are: {', '.join(paths)}"
            )
        return _mask_by(params, lambda path: fnmatch.fnmatchcase(path, pattern))
    if callable(trainable):
        return _mask_by(params, trainable)
    raise TypeError(
        f"trainable must be a glob string, a predicate on paths or None, "
        f"got {type(trainable).__name__}"
    )


def _mask_by(params: Params, keep: Callable[[str], bool]) -> Any:
    paths = iter(param_paths(params))
    return jax.tree.map(lambda _: bool(keep(next(paths))), params)


def freeze(optimizer: optax.GradientTransformation, trainable: Trainable) -> Any:
    """Wrap ``optimizer`` so only the parameters selected by ``trainable`` change.

    Frozen parameters get zero updates (``optax.set_to_zero``) and carry no optimizer state.

    Example:
      >>> import jax, optax, jaxnet as jn
      >>> net = jn.serial(jn.nn.Dense(3), jn.nn.Dense(2))
      >>> _, params, _ = net.init(jax.random.key(0), (1, 4))
      >>> opt = jn.train.freeze(optax.sgd(0.1), "dense_1/*")
      >>> grads = jax.tree.map(jax.numpy.ones_like, params)
      >>> updates, _ = opt.update(grads, opt.init(params), params)
      >>> float(abs(updates["dense_0"]["w"]).sum()), round(float(updates["dense_1"]["b"][0]), 6)
      (0.0, -0.1)
    """
    if trainable is None:
        return optimizer

    def labels(params: Params) -> Any:
        mask = trainable_mask(params, trainable)
        return jax.tree.map(lambda train: "train" if train else "frozen", mask)

    return optax.multi_transform({"train": optimizer, "frozen": optax.set_to_zero()}, labels)
