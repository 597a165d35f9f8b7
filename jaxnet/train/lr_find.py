"""A learning-rate finder: one compiled run with η growing exponentially, until the loss diverges.

Leslie Smith's range test (2015), as fastai's ``lr_find``: step ``i`` of ``steps`` trains with
``η_i = min_lr · (max_lr / min_lr) ** (i / (steps - 1))`` on the next shuffled batch, from the
net's initial state. The loss is smoothed with a bias-corrected exponential moving average;
once the smoothed loss exceeds ``diverge`` times its lowest value so far (for a loss that can
be negative: once it has risen by ``diverge − 1`` times that value's magnitude), or a step goes
non-finite, the run stops: the remaining steps are skipped inside the same ``lax.scan``, so
the whole test is one compiled call and one host sync. The suggestion is the rate where the
smoothed loss falls fastest against ``log η`` (the steepest descent), before the lowest point.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxnet.core import Layer
from jaxnet.data import Dataset
from jaxnet.data.trees import batched_shape
from jaxnet.optim.optimizers import OPTIMIZERS
from jaxnet.optim.state import TrainState
from jaxnet.train.epoch import epoch_batches
from jaxnet.train.step import LossFn, make_train_step
from jaxnet.validate import at_least

OptimizerFactory = Callable[[Any], optax.GradientTransformation]
"""``factory(learning_rate) -> optax transformation``, e.g. ``optax.adam``; the learning rate
it is given is a schedule."""


class LrFindResult(NamedTuple):
    """What :func:`lr_find` returns.

    Attributes:
      learning_rates: η of each step run, ``(n,)``.
      losses: each step's training loss (before its update), ``(n,)``.
      smoothed: the bias-corrected moving average of ``losses``, ``(n,)``.
      suggestion: the rate of the steepest descent of ``smoothed`` against ``log η``.
      lowest: the rate of the lowest smoothed loss.
      diverged: whether the run stopped early, the loss having diverged.
    """

    learning_rates: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    suggestion: float
    lowest: float
    diverged: bool


def lr_find(
    net: Layer,
    data: Dataset,
    *,
    loss: LossFn,
    optimizer: str | OptimizerFactory = "adam",
    min_lr: float = 1e-7,
    max_lr: float = 10.0,
    steps: int = 100,
    batch_size: int = 128,
    seed: int = 0,
    smoothing: float = 0.9,
    diverge: float = 4.0,
    plot: str | os.PathLike[str] | None = None,
) -> LrFindResult:
    """Run the range test on ``data``'s training split; see the module docstring.

    Args:
      net: the network, from its initial parameters (``seed``, as ``fit`` would start).
      data: an in-memory :class:`jaxnet.data.Dataset`.
      loss: ``loss(predictions, targets) -> scalar``.
      optimizer: a name of :data:`jaxnet.train.OPTIMIZERS` or ``factory(learning_rate)``
        (``optax.adam``, ``lambda lr: optax.sgd(lr, momentum=0.9)``).
      min_lr, max_lr: the first and last rate, ``0 < min_lr < max_lr``.
      steps: steps at most (``>= 2``); the batches go through as many shuffles as they need.
      batch_size: examples per step.
      seed: seeds the initialization and the shuffles.
      smoothing: the moving average's ``β`` in ``[0, 1)`` (0: no smoothing).
      diverge: stop once the smoothed loss exceeds this many times its lowest value (> 1;
        for a loss that can be negative, once it rose ``diverge - 1`` times that magnitude).
      plot: a PNG file to draw the curve in (loss against η, log axis, the suggestion marked).

    Returns:
      An :class:`LrFindResult`.

    Raises:
      ValueError, TypeError: for bad arguments, naming the argument.
    """
    factory = _factory(optimizer)
    _check(data, min_lr, max_lr, steps, batch_size, smoothing, diverge)
    rates = min_lr * (max_lr / min_lr) ** (np.arange(steps) / (steps - 1))
    schedule = optax.exponential_decay(
        min_lr, transition_steps=steps - 1, decay_rate=max_lr / min_lr
    )
    transformation = factory(schedule)
    state = TrainState.create(
        net, transformation, batched_shape(data.feature_shape), key=jax.random.key(seed)
    )
    train_step = make_train_step(net, loss, transformation)
    run = jax.jit(_range_test(train_step, steps, batch_size, smoothing, diverge))
    losses, smoothed, ran = jax.device_get(
        run(state, jax.tree.map(jnp.asarray, data.x_train), jnp.asarray(data.y_train))
    )
    n = int(ran)
    if n == 0:
        raise ValueError(
            f"lr_find: the loss is not finite at the first step already (learning rate "
            f"{min_lr:g}); check the net, the data and the loss before the rate"
        )
    result = _result(rates[:n], losses[:n], smoothed[:n], diverged=n < steps)
    if plot is not None:
        from jaxnet.plot import plot_lr_find  # matplotlib loads only when asked

        plot_lr_find(result, plot, title=getattr(net, "name", ""))
    return result


def _range_test(
    train_step: Any, steps: int, batch_size: int, smoothing: float, diverge: float
) -> Callable[..., Any]:
    """``run(state, x, y) -> (losses, smoothed, steps run)``: one ``lax.scan`` of ``steps``
    steps, each skipped (a ``lax.cond``) once the loss has diverged or gone non-finite."""

    def run(state: TrainState, x: Any, y: Any) -> Any:
        per_epoch = y.shape[0] // batch_size
        shuffles = -(-steps // per_epoch)
        xs, ys = jax.vmap(lambda e: epoch_batches(state.key, e, x, y, batch_size))(
            jnp.arange(shuffles)
        )
        xs, ys = jax.tree.map(
            lambda a: a.reshape(-1, *a.shape[2:])[:steps], (xs, ys)
        )  # (steps, B, ...)

        def step(carry: Any, batch: Any) -> Any:
            def train(carry: Any) -> Any:
                state, average, best, i, _ = carry
                state, metrics = train_step(state, batch)
                value = metrics["loss"]
                average = smoothing * average + (1 - smoothing) * value
                smoothed = average / (1 - smoothing ** (i + 1))
                rise = smoothed - best > (diverge - 1) * jnp.abs(best)  # any sign of loss
                stop = ~jnp.isfinite(smoothed) | (i > 0) & rise
                best = jnp.minimum(best, smoothed)
                return (state, average, best, i + 1, stop), (value, smoothed)

            def skip(carry: Any) -> Any:
                return carry, (jnp.float32(jnp.nan), jnp.float32(jnp.nan))

            return jax.lax.cond(carry[4], skip, train, carry)

        start = (state, jnp.float32(0), jnp.float32(jnp.inf), jnp.int32(0), jnp.bool_(False))
        (_, _, _, ran, stopped), (losses, smoothed) = jax.lax.scan(step, start, (xs, ys))
        return losses, smoothed, ran - stopped.astype(jnp.int32)  # the diverging step: out

    return run


def _result(
    rates: np.ndarray, losses: np.ndarray, smoothed: np.ndarray, *, diverged: bool
) -> LrFindResult:
    """The curve, and the rates of its steepest descent and its lowest point."""
    lowest = int(np.argmin(smoothed))
    if lowest >= 2:  # the steepest descent before the lowest point, against log η
        slopes = np.gradient(smoothed[: lowest + 1], np.log(rates[: lowest + 1]))
        steepest = int(np.argmin(slopes[:lowest]))  # on the way down, not the bottom itself
    else:
        steepest = lowest
    return LrFindResult(
        rates, losses, smoothed, float(rates[steepest]), float(rates[lowest]), diverged
    )


def _factory(optimizer: Any) -> OptimizerFactory:
    if isinstance(optimizer, str):
        if optimizer not in OPTIMIZERS:
            known = ", ".join(OPTIMIZERS)
            raise ValueError(f"lr_find: unknown optimizer {optimizer!r} (known: {known})")
        made = OPTIMIZERS[optimizer]
        return lambda rate: made(learning_rate=rate)
    if not callable(optimizer) or isinstance(optimizer, optax.GradientTransformation):
        raise TypeError(
            "lr_find: optimizer must be a name such as 'adam' or a function of the learning "
            f"rate such as optax.adam (the finder sets the rate), got {type(optimizer).__name__}"
        )
    return optimizer


def _check(
    data: Any,
    min_lr: Any,
    max_lr: Any,
    steps: Any,
    batch_size: Any,
    smoothing: Any,
    diverge: Any,
) -> None:
    if not isinstance(data, Dataset):
        raise TypeError(f"lr_find: data must be a jaxnet.data.Dataset, got {type(data).__name__}")
    if not (isinstance(min_lr, int | float) and isinstance(max_lr, int | float)) or not (
        0 < min_lr < max_lr and math.isfinite(max_lr)
    ):
        raise ValueError(
            f"lr_find: need 0 < min_lr < max_lr (finite), got min_lr={min_lr!r}, max_lr={max_lr!r}"
        )
    at_least(steps, 2, "steps", owner="lr_find")
    at_least(batch_size, 1, "batch_size", owner="lr_find")
    if batch_size > data.num_train:
        raise ValueError(
            f"lr_find: batch_size={batch_size} is larger than the {data.num_train} training "
            "examples"
        )
    if not isinstance(smoothing, int | float) or not 0 <= smoothing < 1:
        raise ValueError(f"lr_find: smoothing must be in [0, 1), got {smoothing!r}")
    if not isinstance(diverge, int | float) or not diverge > 1:
        raise ValueError(f"lr_find: diverge must be > 1, got {diverge!r}")
