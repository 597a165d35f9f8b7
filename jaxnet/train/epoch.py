"""One epoch on the device: shuffle there, then every step guarded against non-finite values.

:func:`make_epoch` fuses the epoch's steps into one ``lax.scan`` (one call, no host work between
steps). :func:`make_stepwise_epoch` runs the same guarded steps as one jitted call each, for
the programs XLA compiles badly inside a loop (convolution gradients on CPU,
jax-ml/jax#12868); :func:`contains_convolution` tells ``fit`` which one to choose.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.extend as jex
import jax.numpy as jnp
import numpy as np

from jaxnet.core import Array
from jaxnet.optim.state import TrainState, epoch_key
from jaxnet.train.retrace import watch_retraces
from jaxnet.train.step import Batch

TrainStep = Callable[[TrainState, Batch], tuple[TrainState, dict[str, Array]]]


def epoch_batches(run_key: Array, epoch: Array, x: Array, y: Array, batch_size: int) -> Batch:
    """The epoch's shuffled batches, stacked: ``((S, B, ...), (S, B, ...))``; for ``x`` a
    tuple or dict of arrays, every part is shuffled by the same order.

    The last ``len(x) % batch_size`` examples of each shuffle are left out, so every step has
    the same shape and the loop compiles once; a different subset is left out each epoch.
    """
    n = y.shape[0]  # x may be a tuple or dict of arrays, each with n rows
    steps = n // batch_size
    order = jax.random.permutation(epoch_key(run_key, epoch), n)[: steps * batch_size]
    xs = jax.tree.map(lambda a: a[order].reshape(steps, batch_size, *a.shape[1:]), x)  # (S, B, ...)
    ys = y[order].reshape(steps, batch_size, *y.shape[1:])  # (S, B, ...)
    return xs, ys


def _sharded_batches(
    train_state: TrainState, x: Array, y: Array, epoch: Array, batch_size: int, sharding: Any
) -> Batch:
    """:func:`epoch_batches` for the state's key, laid out by ``sharding`` (None: as XLA likes)."""
    batches = epoch_batches(train_state.key, epoch, x, y, batch_size)
    if sharding is not None:
        batches = jax.lax.with_sharding_constraint(batches, sharding)
    return batches


def guarded(train_step: TrainStep) -> Callable[[Any, Batch], Any]:
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
    train_step: TrainStep,
    batch_size: int,
    *,
    batch_sharding: Any = None,
    unroll: int | bool = 1,
) -> Callable[..., Any]:
    """Build ``run_epoch(train_state, x, y, epoch) -> (train_state, metrics, finite)``.

    ``metrics`` are stacked per step ``(S,)``; ``finite`` says which steps were applied. Jit
    it with ``donate_argnums=0`` so the state's buffers are reused in place.
    ``batch_sharding`` (a sharding of the stacked ``(S, B, ...)`` batches, see
    :func:`jaxnet.distributed.batch_sharding`) splits every step's batch across devices.
    ``unroll`` is ``lax.scan``'s: steps per loop iteration (``True``: all of them), fewer
    loop-condition checks for a longer compile.
    """
    body = guarded(train_step)

    def run_epoch(train_state: TrainState, x: Array, y: Array, epoch: Array) -> Any:
        batches = _sharded_batches(train_state, x, y, epoch, batch_size, batch_sharding)
        (train_state, _), (metrics, finite) = jax.lax.scan(
            body, (train_state, jnp.zeros((), bool)), batches, unroll=unroll
        )
        return train_state, metrics, finite

    return run_epoch


def make_stepwise_epoch(
    train_step: TrainStep,
    batch_size: int,
    *,
    batch_sharding: Any = None,
    watch: str | None = None,
) -> Callable[..., Any]:
    """:func:`make_epoch`'s epoch, run as one jitted call per step instead of one ``lax.scan``.

    Same signature, same results (the same shuffle, the same guarded steps, the same stacked
    ``metrics`` and ``finite``) and the data stays on the device: the epoch's batches are drawn
    once per epoch, each call slices its own batch out of them, and the state's buffers are
    donated from step to step. The host reads nothing until the epoch's end. Returns a Python
    function; do not ``jax.jit`` it (its pieces are jitted already).

    Use it where a loop body compiles worse than the same step on its own: on XLA:CPU the
    gradient of a convolution inside ``lax.scan`` misses the fast kernels and runs 6-10x
    slower (jax-ml/jax#12868); ``fit`` picks this path there by itself. ``watch`` names the
    step in a :class:`jaxnet.train.RetraceWarning` if it is ever traced again.
    """
    body = guarded(train_step)

    def step_at(carry: Any, batches: Batch, i: Array) -> Any:
        train_state, halted, metrics, finite = carry
        batch = jax.tree.map(lambda b: jax.lax.dynamic_index_in_dim(b, i, keepdims=False), batches)
        (train_state, halted), (m, ok) = body((train_state, halted), batch)
        metrics = jax.tree.map(lambda buf, v: buf.at[i].set(v), metrics, m)
        return train_state, halted, metrics, finite.at[i].set(ok)

    def start(train_state: TrainState, batches: Batch) -> Any:
        """The loop's carry: the state, and zeroed per-step buffers shaped like the outputs."""
        steps = jax.tree.leaves(batches)[0].shape[0]
        one = jax.tree.map(lambda b: jax.ShapeDtypeStruct(b.shape[1:], b.dtype), batches)
        shapes = jax.eval_shape(body, (train_state, jnp.zeros((), bool)), one)[1][0]
        metrics = jax.tree.map(lambda s: jnp.zeros((steps, *s.shape), s.dtype), shapes)
        return train_state, jnp.zeros((), bool), metrics, jnp.zeros((steps,), bool)

    jit_draw = jax.jit(_sharded_batches, static_argnums=(4, 5))
    jit_start = jax.jit(start, donate_argnums=0)
    jit_step = jax.jit(
        step_at if watch is None else watch_retraces(step_at, name=watch), donate_argnums=0
    )

    def run_epoch(train_state: TrainState, x: Array, y: Array, epoch: Array) -> Any:
        batches = jit_draw(train_state, x, y, epoch, batch_size, batch_sharding)
        carry = jit_start(train_state, batches)
        for i in range(jax.tree.leaves(batches)[0].shape[0]):
            carry = jit_step(carry, batches, np.int32(i))
        train_state, _, metrics, finite = carry
        return train_state, metrics, finite

    return run_epoch


def contains_convolution(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> bool:
    """Whether ``fn(*args, **kwargs)`` traces to a convolution (``conv_general_dilated``),
    anywhere in its program (inside scans, conds and nested jits too). Traces ``fn`` once,
    abstractly: nothing runs. ``args`` may be arrays or ``jax.ShapeDtypeStruct``; ``kwargs``
    are passed through as they are (static)."""
    jaxpr = jax.make_jaxpr(functools.partial(fn, **kwargs))(*args)
    return any(eqn.primitive.name == "conv_general_dilated" for eqn in _equations(jaxpr.jaxpr))


def _equations(jaxpr: Any) -> Iterator[Any]:
    """Every equation of ``jaxpr`` and of the jaxprs inside its equations' parameters."""
    for eqn in jaxpr.eqns:
        yield eqn
        for param in eqn.params.values():
            for inner in param if isinstance(param, tuple | list) else (param,):
                if isinstance(inner, jex.core.ClosedJaxpr):
                    yield from _equations(inner.jaxpr)
                elif isinstance(inner, jex.core.Jaxpr):
                    yield from _equations(inner)
