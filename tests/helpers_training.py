"""Setup shared by the training tests (streaming, step rows, EMA, stream position, plateau and
the learning-rate finder): the data, the net, ``fit``'s common arguments, batch and stream
builders, parameter comparisons and run-folder readers.

Only setup lives here: what a test asserts, and every value its expected numbers depend on,
stays in the test (passed in as an argument where the files differ). The hand-written
references themselves are in ``tests.references_training``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np
import optax

import jaxnet as jn
from tests import references_training as by_hand

Batch = tuple[Any, Any]
"""One ``(x, y)`` batch, as a stream's source yields it."""


def load_digits() -> jn.data.Dataset:
    """The digits data with 10% held out for validation: 1,257 training rows, 19 batches of
    64 an epoch. What these tests train on; each file's module-scoped ``digits`` fixture calls
    this, so that the split is written once."""
    return jn.data.load("digits", val_fraction=0.1)


def small_net() -> jn.Layer:
    """The tests' small classifier of digits: Dense(16), ReLU, Dense(10). Small enough to train
    in seconds, and without layer state or randomness, as ``references_training`` needs."""
    return jn.serial(jn.nn.Dense(16), jn.nn.Relu, jn.nn.Dense(10))


def fit_kwargs(**extra: Any) -> dict[str, Any]:
    """``fit``'s common keyword arguments: a fresh adam at 1e-2, softmax cross-entropy with
    accuracy, 2 epochs, no progress bar; ``extra`` adds to them or replaces them (such as
    ``epochs=4`` or ``metrics=None``)."""
    kw = dict(
        optimizer=optax.adam(1e-2),
        loss=jn.losses.softmax_cross_entropy,
        metrics={"accuracy": jn.metrics.accuracy},
        epochs=2,
        progress=False,
    )
    return kw | extra


def chunks(x: Any, y: Any, size: int, count: int | None = None) -> list[Batch]:
    """``(x, y)`` cut in order into batches of ``size`` rows: the first ``count`` of them, or
    all of them, a smaller last one included. Views of the arrays, not copies."""
    starts = range(0, len(x), size)
    if count is not None:
        starts = starts[:count]
    return [(x[i : i + size], y[i : i + size]) for i in starts]


def stream_with_held_out(
    data: jn.data.Dataset,
    train: Any,
    *,
    val_size: int | None = None,
    test_size: int | None = None,
    **kwargs: Any,
) -> jn.data.Stream:
    """A stream of the batches ``train`` gives, with ``data``'s validation and test splits as
    its held-out sources: each split one whole batch, or cut into batches of ``val_size`` /
    ``test_size`` rows. ``kwargs`` go on to ``jn.data.stream``."""

    def held_out(x: Any, y: Any, size: int | None) -> list[Batch]:
        return [(x, y)] if size is None else chunks(x, y, size)

    return jn.data.stream(
        train,
        val=held_out(data.x_val, data.y_val, val_size),
        test=held_out(data.x_test, data.y_test, test_size),
        **kwargs,
    )


def host_leaves(tree: Any) -> list[np.ndarray]:
    """The leaves of a pytree (parameters, an optimizer's average) as NumPy arrays."""
    return [np.asarray(leaf) for leaf in jax.tree.leaves(tree)]


def assert_same_leaves(a: Any, b: Any) -> None:
    """Two pytrees of the same structure hold bit-for-bit the same arrays: for runs that must
    train the very same parameters (a resume, a stream, rows that change no step)."""
    for p, q in zip(host_leaves(a), host_leaves(b), strict=True):
        np.testing.assert_array_equal(p, q)


def without_seconds(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """History rows without their wall-clock ``seconds``, the one value two runs of the same
    steps do not share."""
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


def hand_loop_start(
    net: jn.Layer,
    loss: Callable[..., Any],
    optimizer: optax.GradientTransformation,
    metrics: dict[str, Callable[..., Any]] | None = None,
    input_shape: Sequence[int | None] = (None, 64),
) -> tuple[Any, jax.Array, Callable[..., Any], Any]:
    """What a hand-written training loop starts from: ``(params, run_key, step, opt_state)``,
    fit's initial parameters and run key (seed 0), the jitted step of
    ``references_training.make_step`` and ``optimizer``'s initial state."""
    params, run_key = by_hand.initial(net, input_shape)
    step = by_hand.make_step(net, loss, optimizer, metrics=metrics)
    return params, run_key, step, optimizer.init(params)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The rows of a run folder's JSON-lines file (``steps.jsonl``, ``metrics.jsonl``)."""
    return [json.loads(line) for line in path.read_text().splitlines()]


def checkpoint_extra(run_dir: Path, step: int) -> dict[str, Any]:
    """The extra state (a stream's position) that checkpoint ``step`` of ``run_dir`` keeps in
    ``extra-0.json``, read as the file holds it."""
    return json.loads((run_dir / "checkpoints" / str(step) / "extra-0.json").read_text())
