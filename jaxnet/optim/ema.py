"""An exponential moving average of the weights, kept in the optimizer state.

:func:`with_ema` wraps an optax transformation: after each update it moves the average toward
the new parameters, ``ema ← decay · ema + (1 − decay) · params`` (starting from the initial
parameters, as ``torch.optim.swa_utils.get_ema_avg_fn``), inside the same compiled step. The
average lives in the optimizer state (:class:`EmaState`), so it is sharded like the
parameters, saved in every checkpoint and restored bit for bit with no code of its own; under
dynamic loss scaling a skipped step leaves it unchanged, as it leaves the optimizer's moments.

Example:
  >>> import jax.numpy as jnp, optax
  >>> opt = with_ema(optax.sgd(1.0), 0.5)
  >>> params = {"w": jnp.array(4.0)}
  >>> state = opt.init(params)
  >>> updates, state = opt.update({"w": jnp.array(2.0)}, state, params)  # w: 4 -> 2
  >>> float(ema_params(state)["w"])  # 0.5 * 4 + 0.5 * 2
  3.0
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import optax

from jaxnet.optim.state import find_states
from jaxnet.validate import in_unit_interval


class EmaState(NamedTuple):
    """The wrapped optimizer's state and the parameters' moving average."""

    inner: optax.OptState
    ema: Any


def check_decay(decay: Any, caller: str) -> float:
    """``decay`` as a float in (0, 1); a ValueError naming ``caller`` otherwise."""
    return in_unit_interval(decay, "ema", owner=caller, what="a decay ", example=" such as 0.999")


def with_ema(optimizer: optax.GradientTransformation, decay: float) -> Any:
    """``optimizer`` that also keeps an exponential moving average of the parameters.

    Raises:
      ValueError: ``decay`` outside (0, 1); from ``update``, when called without ``params``.
    """
    decay = check_decay(decay, "with_ema")

    def init(params: Any) -> EmaState:
        return EmaState(optimizer.init(params), jax.tree.map(lambda p: p.copy(), params))

    def update(updates: Any, state: EmaState, params: Any = None) -> Any:
        if params is None:
            raise ValueError("with_ema: update needs params, to average them")
        updates, inner = optimizer.update(updates, state.inner, params)
        new = optax.apply_updates(params, updates)
        ema = jax.tree.map(lambda e, p: decay * e + (1 - decay) * p, state.ema, new)
        return updates, EmaState(inner, ema)

    return optax.GradientTransformation(init, update)


def ema_params(opt_state: Any) -> Any:
    """The moving average held in ``opt_state`` (found inside any wrapper's state).

    Raises:
      ValueError: the optimizer keeps no average (it was not wrapped by :func:`with_ema`).
    """
    found = find_states(opt_state, EmaState)
    if not found:
        raise ValueError("ema_params: the optimizer state holds no moving average (no ema=)")
    return found[0].ema
