"""The best epoch is kept (issue 25, item 4).

With the default cadence a checkpoint is taken only when the previous one has finished
writing, so a fast run once kept epochs 1 and 20 and ``which="best"`` chose between those two.
Now every epoch whose monitored value improves is kept: saved at once, or held as a host copy
until the writer is free. A slow disk is simulated by a ``Checkpointer.save`` that sleeps.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

import jaxnet as jn

EPOCHS = 12


@pytest.fixture(scope="module")
def slow_disk_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[int]]:
    """The digits MLP for 12 epochs, default cadence, each checkpoint taking 0.4 s to write;
    and the epochs in the order they were written."""
    run = tmp_path_factory.mktemp("best") / "run"
    written: list[int] = []
    save = jn.runs.Checkpointer.save

    def slow_save(self: jn.runs.Checkpointer, step: int, *args: Any, **kwargs: Any) -> Any:
        time.sleep(0.4)
        written.append(step)
        return save(self, step, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(jn.runs.Checkpointer, "save", slow_save)
        jn.train.fit(
            jn.serial(jn.nn.Dense(16), jn.nn.Relu, jn.nn.Dense(10)),
            jn.data.load("digits", val_fraction=0.1),
            optimizer=jn.train.optimizer("sgd", learning_rate=0.05),
            loss=jn.losses.softmax_cross_entropy,
            metrics={"accuracy": jn.metrics.accuracy},
            epochs=EPOCHS,
            batch_size=128,
            run_dir=run,
            progress=False,
        )
    return run, written


def _rows(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_best_is_the_best_epoch_of_the_history(slow_disk_run: tuple[Path, list[int]]) -> None:
    run, written = slow_disk_run
    rows = _rows(run)
    best = max(rows, key=lambda row: (row["val_accuracy"], -row["epoch"]))["epoch"]
    assert jn.train.load(run, which="best").step == best
    assert best in written
    assert len(written) < EPOCHS  # the slow disk made the cadence skip epochs


def test_every_improvement_was_written_in_epoch_order(
    slow_disk_run: tuple[Path, list[int]],
) -> None:
    """Each epoch that beat all before it was written, unless a better one came before the
    writer was free; the writes never went back in time."""
    run, written = slow_disk_run
    assert written == sorted(written) and len(set(written)) == len(written)
    record, improvements = -1.0, []
    for row in _rows(run):
        if row["val_accuracy"] > record:
            record = row["val_accuracy"]
            improvements.append(row["epoch"])
    for epoch, following in zip(improvements, [*improvements[1:], EPOCHS + 1], strict=True):
        # improvement `epoch` is written, or superseded by the next improvement before any
        # later epoch's write started
        later = [w for w in written if w > epoch]
        assert epoch in written or (later and later[0] >= following)


def test_retention_is_still_the_last_n_plus_the_best(
    slow_disk_run: tuple[Path, list[int]],
) -> None:
    run, written = slow_disk_run
    kept = jn.runs.RunFolder(run).checkpointer().steps()
    best = jn.train.load(run, which="best").step
    assert kept == sorted(set(written[-3:]) | {best})
    assert kept[-1] == EPOCHS
