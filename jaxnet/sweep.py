"""Many models in one compiled program: ``vmap`` over seeds and learning rates.

Width and depth change the parameter shapes, so each (width, depth) is its own program; seeds
and learning rates do not, so all of their combinations train together as one batch of models.
The learning rate lives in each member's optimizer state (``optax.inject_hyperparams``), which
is what lets ``vmap`` give every member its own η.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from jaxnet.core import Array, Layer
from jaxnet.data import Dataset
from jaxnet.optim.state import TrainState
from jaxnet.train.epoch import make_epoch
from jaxnet.train.step import LossFn, MetricFns, make_eval_step, make_train_step

__all__ = [
    "Member",
    "OptimizerFn",
    "SweepResult",
    "fit_many",
    "initial_states",
    "results_table",
]


OptimizerFn = Callable[..., optax.GradientTransformation]
"""An optax optimizer constructor taking ``learning_rate=`` (``optax.adam``, ``optax.sgd``)."""


class Member(NamedTuple):
    """One model of a sweep: its learning rate and seed."""

    learning_rate: float
    seed: int


class SweepResult(NamedTuple):
    """What :func:`fit_many` returns.

    Attributes:
      train_states: the members' final states, stacked along a leading member axis.
      members: the (learning_rate, seed) of each member, in that axis' order.
      history: per member, one dict per epoch (as ``fit``'s history).
      diverged_at: per member, the step whose loss or parameters went non-finite, or None. A
        diverged member keeps its last good state and stops changing; the others go on.
      seconds: wall time of the training loop (compilation included).
    """

    train_states: TrainState
    members: list[Member]
    history: list[list[dict[str, Any]]]
    diverged_at: list[int | None]
    seconds: float

    def member_state(self, index: int) -> TrainState:
        """The final state of member ``index``, unstacked."""
        return jax.tree.map(lambda leaf: leaf[index], self.train_states)

    def final(self, metric: str) -> list[float]:
        """Each member's last value of a history key such as ``"test_accuracy"``."""
        return [rows[-1][metric] for rows in self.history]


def check_members(learning_rates: Sequence[float], seeds: Sequence[int]) -> list[Member]:
    """Every (η, seed) pair as a :class:`Member`, after checking both lists (before training).

    Raises:
      ValueError: for an empty list, an η that is not a finite positive number, or a bad seed.
    """
    if not learning_rates or not seeds:
        raise ValueError("fit_many: needs at least one learning rate and one seed")
    for lr in learning_rates:
        if isinstance(lr, bool) or not isinstance(lr, int | float) or not 0 < lr < np.inf:
            raise ValueError(f"fit_many: learning rates must be finite numbers > 0, got {lr!r}")
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise ValueError(f"fit_many: seeds must be ints >= 0, got {seed!r}")
    return [Member(float(lr), int(seed)) for lr, seed in itertools.product(learning_rates, seeds)]


def initial_states(
    net: Layer, optimizer: OptimizerFn, data: Dataset, members: Sequence[Member]
) -> TrainState:
    """The members' initial states, stacked: member ``i`` equals
    ``TrainState.create(net, optax.inject_hyperparams(optimizer)(learning_rate=lr_i), ...,
    key=jax.random.key(seed_i))``."""
    make = optax.inject_hyperparams(optimizer)
    input_shape = (None, *data.feature_shape)

    def create(seed: Array, lr: Array) -> TrainState:
        key = jax.random.key(seed)
        return TrainState.create(net, make(learning_rate=lr), input_shape, key=key)

    seeds = jnp.asarray([m.seed for m in members], jnp.uint32)
    lrs = jnp.asarray([m.learning_rate for m in members], jnp.float32)
    return jax.vmap(create)(seeds, lrs)


def fit_many(
    net: Layer,
    data: Dataset,
    *,
    optimizer: OptimizerFn,
    learning_rates: Sequence[float],
    seeds: Sequence[int],
    loss: LossFn,
    metrics: MetricFns | None = None,
    epochs: int = 10,
    batch_size: int = 128,
    progress: bool = False,
) -> SweepResult:
    """Train one model per (learning rate, seed) pair, all in one compiled program.

    Each member is the model ``fit`` would train with
    ``optimizer=optax.inject_hyperparams(optimizer)(learning_rate=lr)`` and ``seed=seed``: same
    init, same shuffles, same steps (equal to float tolerance; batched matrix products may
    round differently from single ones).

    Args:
      net: the network (one architecture for every member).
      data: a :class:`jaxnet.data.Dataset`.
      optimizer: an optax constructor that takes ``learning_rate=`` (``optax.adam``).
      learning_rates: the η values.
      seeds: the seeds; members are every (η, seed) pair, η-major.
      loss, metrics, epochs, batch_size: as in :func:`jaxnet.train.fit`.
      progress: show a progress bar.

    Raises:
      ValueError: for an empty grid, a learning rate <= 0, a negative seed, or a batch size
        larger than the training split.

    Each history row has ``train_*``, ``val_*`` (when ``data`` has a validation split) and
    ``test_*`` metrics, like ``fit``'s.
    """
    members = check_members(learning_rates, seeds)
    if not 0 < batch_size <= data.num_train:
        raise ValueError(
            f"fit_many: batch_size must be in [1, {data.num_train}], got {batch_size!r}"
        )
    metric_fns = dict(metrics or {})
    any_optimizer = optax.inject_hyperparams(optimizer)(learning_rate=1.0)  # η is read from state
    train_step = make_train_step(net, loss, any_optimizer, metrics=metric_fns)
    run_epoch = jax.jit(
        jax.vmap(make_epoch(train_step, batch_size), in_axes=(0, None, None, None)),
        donate_argnums=0,
    )
    evaluate = jax.jit(jax.vmap(make_eval_step(net, loss, metrics=metric_fns), in_axes=(0, None)))
    x, y = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
    held_out = {"test": (jnp.asarray(data.x_test), jnp.asarray(data.y_test))}
    if data.num_val:
        held_out = {"val": (jnp.asarray(data.x_val), jnp.asarray(data.y_val))} | held_out

    start = time.perf_counter()
    states = initial_states(net, optimizer, data, members)
    history: list[list[dict[str, Any]]] = [[] for _ in members]
    diverged: list[int | None] = [None] * len(members)
    for epoch in tqdm(range(epochs), disable=not progress, desc="sweep", unit="epoch"):
        steps_before = np.asarray(states.step)
        states, step_metrics, finite = run_epoch(states, x, y, jnp.int32(epoch))
        step_metrics, finite = jax.device_get((step_metrics, finite))
        evaluated = jax.device_get({k: evaluate(states, v) for k, v in held_out.items()})
        for i in range(len(members)):
            if diverged[i] is None and not finite[i].all():
                diverged[i] = int(steps_before[i]) + int(np.argmin(finite[i])) + 1
            row: dict[str, Any] = {"epoch": epoch + 1, "step": int(states.step[i])}
            row |= {f"train_{k}": float(np.mean(v[i])) for k, v in step_metrics.items()}
            for split, split_metrics in evaluated.items():
                row |= {f"{split}_{k}": float(v[i]) for k, v in split_metrics.items()}
            history[i].append(row)
    jax.block_until_ready(states)
    return SweepResult(states, members, history, diverged, time.perf_counter() - start)


def results_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """A plain-text table of sweep results, one row per member; a missing value (a member
    that never diverged has ``diverged_at`` None) reads ``-``.

    Example:
      >>> row = {"lr": 0.1, "acc": 0.9, "diverged_at": None}
      >>> print(results_table([row], ["lr", "acc", "diverged_at"]))
      lr   acc  diverged_at
      0.1  0.9  -
    """

    def cell(value: Any) -> str:
        if value is None:
            return "-"
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    cells = [[cell(row[c]) for c in columns] for row in rows]
    widths = [max(len(c), *(len(line[i]) for line in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += [
        "  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() for line in cells
    ]
    return "\n".join(lines)
