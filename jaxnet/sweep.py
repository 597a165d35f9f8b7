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
from jaxnet.train.epoch import make_epoch
from jaxnet.train.state import TrainState
from jaxnet.train.step import LossFn, MetricFns, make_eval_step, make_train_step

__all__ = [
    "Member",
    "OptimizerFn",
    "SweepResult",
    "fit_many",
    "grid",
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


def _check_members(learning_rates: Sequence[float], seeds: Sequence[int]) -> list[Member]:
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
    """
    members = _check_members(learning_rates, seeds)
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
    test = (jnp.asarray(data.x_test), jnp.asarray(data.y_test))

    start = time.perf_counter()
    states = initial_states(net, optimizer, data, members)
    history: list[list[dict[str, Any]]] = [[] for _ in members]
    diverged: list[int | None] = [None] * len(members)
    for epoch in tqdm(range(epochs), disable=not progress, desc="sweep", unit="epoch"):
        steps_before = np.asarray(states.step)
        states, step_metrics, finite = run_epoch(states, x, y, jnp.int32(epoch))
        step_metrics, finite = jax.device_get((step_metrics, finite))
        test_metrics = jax.device_get(evaluate(states, test))
        for i in range(len(members)):
            if diverged[i] is None and not finite[i].all():
                diverged[i] = int(steps_before[i]) + int(np.argmin(finite[i])) + 1
            row: dict[str, Any] = {"epoch": epoch + 1, "step": int(states.step[i])}
            row |= {f"train_{k}": float(np.mean(v[i])) for k, v in step_metrics.items()}
            row |= {f"test_{k}": float(v[i]) for k, v in test_metrics.items()}
            history[i].append(row)
    jax.block_until_ready(states)
    return SweepResult(states, members, history, diverged, time.perf_counter() - start)


def results_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """A plain-text table of sweep results, one row per member.

    Example:
      >>> print(results_table([{"lr": 0.1, "acc": 0.9}], ["lr", "acc"]))
      lr   acc
      0.1  0.9
    """
    cells = [
        [f"{row[c]:.4g}" if isinstance(row[c], float) else str(row[c]) for c in columns]
        for row in rows
    ]
    widths = [max(len(c), *(len(line[i]) for line in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += [
        "  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() for line in cells
    ]
    return "\n".join(lines)


def grid(
    recipe: str,
    *,
    learning_rates: Sequence[float],
    seeds: int = 1,
    widths: Sequence[int] | None = None,
    depths: Sequence[int] | None = None,
    run_dir: Any = None,
    progress: bool = False,
    **overrides: Any,
) -> list[dict[str, Any]]:
    """Sweep a recipe: every width × depth as its own program, every η × seed vmapped in it.

    Args:
      recipe: a recipe name (``jaxnet recipes``).
      learning_rates: the η values.
      seeds: how many seeds (0, 1, ..., seeds - 1).
      widths, depths: the architectures; default the recipe's.
      run_dir: if given, writes ``config.json``, ``results.jsonl`` (one line per member) and
        ``sweep.png`` there.
      progress: show progress bars.
      **overrides: other recipe settings (``epochs``, ``batch_size``, ``optimizer``, ...).

    Returns:
      One dict per member: width, depth, lr, seed, the final history row, and the step it
      diverged at (or None).

    Raises:
      ValueError: for an unknown recipe or a bad setting (checked before any training).
    """
    from jaxnet import recipes
    from jaxnet.train.run import RunFolder

    if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
        raise ValueError(f"seeds must be a positive int (how many), got {seeds!r}")
    base = recipes.make_config(recipe, **overrides)
    shapes = list(itertools.product(widths or [base["width"]], depths or [base["depth"]]))
    configs = [
        recipes.make_config(recipe, **{**overrides, "width": w, "depth": d}) for w, d in shapes
    ]
    _check_members(learning_rates, list(range(seeds)))
    folder = None if run_dir is None else RunFolder(run_dir)
    if folder is not None:
        folder.write_config(
            {
                **base,
                "sweep": {
                    "lr": list(learning_rates),
                    "seeds": seeds,
                    "width": [w for w, _ in shapes],
                    "depth": [d for _, d in shapes],
                },
            }
        )
    rows: list[dict[str, Any]] = []
    for config in configs:
        job = recipes.build(config)
        result = fit_many(
            job.net,
            job.data,
            optimizer=recipes.OPTIMIZERS[config["optimizer"]],
            learning_rates=learning_rates,
            seeds=range(seeds),
            loss=job.loss,
            metrics=job.metrics,
            epochs=config["epochs"],
            batch_size=config["batch_size"],
            progress=progress,
        )
        for member, history, diverged in zip(
            result.members, result.history, result.diverged_at, strict=True
        ):
            rows.append(
                {
                    "width": config["width"],
                    "depth": config["depth"],
                    "lr": member.learning_rate,
                    "seed": member.seed,
                    **history[-1],
                    "diverged_at": diverged,
                    "program_seconds": result.seconds,
                }
            )
    if folder is not None:
        folder.write_jsonl("results.jsonl", rows)
        from jaxnet.plot import plot_sweep

        plot_sweep(rows, folder.path / "sweep.png", title=recipe)
    return rows
