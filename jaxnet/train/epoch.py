"""One compiled epoch: shuffle on the device, then all its steps fused in one ``lax.scan``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jaxnet.core import Array
from jaxnet.train.state import TrainState, epoch_key
from jaxnet.train.step import Batch

TrainStep = Callable[[TrainState, Batch], tuple[TrainState, dict[str, Array]]]


def epoch_batches(run_key: Array, epoch: Array, x: Array, y: Array, batch_size: int) -> Batch:
    """The epoch's shuffled batches, stacked: ``((S, B, ...), (S, B, ...))``.

    The last ``len(x) % batch_size`` examples of each shuffle are left out, so every step has
    the same shape and the loop compiles once; a different subset is left out each epoch.
    """
    steps = x.shape[0] // batch_size
    order = jax.random.permutation(epoch_key(run_key, epoch), x.shape[0])[: steps * batch_size]
    xs = x[order].reshape(steps, batch_size, *x.shape[1:])  # (S, B, ...)
    ys = y[order].reshape(steps, batch_size, *y.shape[1:])  # (S, B, ...)
    return xs, ys


def _guarded(train_step: TrainStep) -> Callable[[Any, Batch], Any]:
    """A scan body that applies a step only while every loss and updated parameter so far was
    finite (non-finite gradients make non-finite parameters, and so do overflowing updates).

    After the first non-finite step, the remaining steps leave the state as it was, so the
    epoch returns the last good state and the host can tell which step failed.
    """

    def body(carry: tuple[TrainState, Array], batch: Batch) -> Any:
        train_state, halted = carry
        new, metrics = train_step(train_state, batch)
        finite_params = jnp.all(
            jnp.stack([jnp.isfinite(p).all() for p in jax.tree.leaves(new.params)])
        )
        ok = jnp.isfinite(metrics["loss"]) & finite_params & ~halted
        params, state, opt_state, step = jax.tree.map(
            lambda a, b: jnp.where(ok, a, b),
            (new.params, new.state, new.opt_state, new.step),
            (train_state.params, train_state.state, train_state.opt_state, train_state.step),
        )
        kept = TrainState(params, state, opt_state, step, train_state.key)
        return (kept, ~ok), (metrics, ok)

    return body


def make_epoch(
    train_step: TrainStep, batch_size: int, *, batch_sharding: Any = None
) -> Callable[..., Any]:
    """Build ``run_epoch(train_state, x, y, epoch) -> (train_state, metrics, finite)``.

    ``metrics`` are stacked per step ``(S,)``; ``finite`` says which steps were applied. Jit
    it with ``donate_argnums=0`` so the state's buffers are reused in place.
    ``batch_sharding`` (a sharding of the stacked ``(S, B, ...)`` batches, see
    :func:`jaxnet.distributed.batch_sharding`) splits every step's batch across devices.
    """
    body = _guarded(train_step)

    def run_epoch(train_state: TrainState, x: Array, y: Array, epoch: Array) -> Any:
        batches = epoch_batches(train_state.key, epoch, x, y, batch_size)
        if batch_sharding is not None:
            batches = jax.lax.with_sharding_constraint(batches, batch_sharding)
        (train_state, _), (metrics, finite) = jax.lax.scan(
            body, (train_state, jnp.zeros((), bool)), batches
        )
        return train_state, metrics, finite

    return run_epoch
