"""Where a reader names no checkpoint, a damaged newest one is refused by name, never skipped.

``load``, ``load_params``, ``jaxnet evaluate`` and ``jaxnet export`` choose a checkpoint when
none is named (``which="latest"`` or ``"best"``). Each damage below once made them return the
previous epoch without a word (issue 25, item 3); now each is one error naming the folder and
the step to pass instead, and that step (``step=``, ``--step``) still reads.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

import jaxnet as jn
from jaxnet import cli

EPOCHS = 3


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An xor run with a checkpoint after every epoch, all kept."""
    run = tmp_path_factory.mktemp("implicit") / "run"
    jn.train.fit(
        jn.serial(jn.nn.Dense(4), jn.nn.Tanh, jn.nn.Dense(2)),
        jn.data.load("xor"),
        optimizer=jn.train.optimizer("adam", learning_rate=0.05),
        loss=jn.losses.softmax_cross_entropy,
        metrics={"accuracy": jn.metrics.accuracy},
        epochs=EPOCHS,
        run_dir=run,
        checkpointing=jn.train.Checkpointing(every=1, keep=EPOCHS),
        progress=False,
    )
    return run


def _delete_manifest(step: Path) -> None:
    (step / "manifest.json").unlink()


def _symlink_to_older(step: Path) -> None:
    """The newest step folder replaced by a link to a copy of the one before it."""
    copy = step.parent.parent / "elsewhere"
    shutil.copytree(step.parent / str(int(step.name) - 1), copy)
    shutil.rmtree(step)
    os.symlink(copy, step)


def _older_step_inside(step: Path) -> None:
    """The newest step folder holding the checkpoint of the step before it."""
    shutil.rmtree(step)
    shutil.copytree(step.parent / str(int(step.name) - 1), step)


DAMAGE: dict[str, tuple[Callable[[Path], None], str]] = {
    "manifest deleted": (_delete_manifest, "has no manifest.json"),
    "symlinked step folder": (_symlink_to_older, "is a symbolic link or not a folder"),
    "another step inside": (_older_step_inside, "manifest.json says step 2"),
}


@pytest.fixture(params=list(DAMAGE), ids=list(DAMAGE))
def damaged(request: pytest.FixtureRequest, trained: Path, tmp_path: Path) -> tuple[Path, str]:
    """A copy of the run whose newest checkpoint is damaged, and what the error says of it."""
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    damage, says = DAMAGE[request.param]
    damage(run / "checkpoints" / str(EPOCHS))
    return run, says


def _refusal(run: Path, says: str) -> str:
    newest = run / "checkpoints" / str(EPOCHS)
    return (
        f"checkpoint {newest} {says}" if "manifest.json says" not in says else f"{newest}: {says}"
    )


@pytest.mark.parametrize(
    "read",
    [
        lambda run: jn.train.load(run),
        lambda run: jn.train.load_params(run),
        lambda run: jn.runs.RunFolder(run).checkpointer().pick_step("latest"),
    ],
    ids=["load", "load_params", "pick_step"],
)
def test_the_newest_damaged_is_refused_by_name_with_the_step_to_pass(
    damaged: tuple[Path, str], read: Callable[[Path], object]
) -> None:
    run, says = damaged
    with pytest.raises(jn.train.CheckpointError) as caught:
        read(run)
    message = str(caught.value)
    assert _refusal(run, says) in message
    assert "it is the newest checkpoint, so it is refused rather than skipped" in message
    assert f"step={EPOCHS - 1} (--step {EPOCHS - 1})" in message


def test_the_step_named_instead_reads_as_before(damaged: tuple[Path, str]) -> None:
    run, _ = damaged
    loaded = jn.train.load(run, step=EPOCHS - 1)
    assert loaded.step == EPOCHS - 1
    params, _ = jn.train.load_params(run, step=EPOCHS - 1)
    for name in ("w", "b"):
        assert (params["dense_0"][name] == loaded.params["dense_0"][name]).all()


def test_best_is_refused_while_a_damaged_folder_hides_its_metric(
    damaged: tuple[Path, str],
) -> None:
    run, _ = damaged
    with pytest.raises(jn.train.CheckpointError, match="the best checkpoint cannot be chosen"):
        jn.train.load(run, which="best")


@pytest.mark.parametrize("command", ["evaluate", "export"])
def test_the_commands_refuse_in_one_line_and_take_step(
    damaged: tuple[Path, str], command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run, says = damaged
    extra = ["--out", str(run.parent / "export")] if command == "export" else []
    assert cli.main([command, str(run), *extra]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("jaxnet: error: ")
    assert _refusal(run, says) in err and f"--step {EPOCHS - 1}" in err
    assert not (run.parent / "export").exists()
    assert cli.main([command, str(run), *extra, "--step", str(EPOCHS - 1)]) == 0
    out, _ = capsys.readouterr()
    if command == "evaluate":
        assert out.startswith(f"{run} (--step, epoch {EPOCHS - 1}): test_accuracy ")
    else:
        signature = json.loads((run.parent / "export" / "signature.json").read_text())
        assert signature["step"] == EPOCHS - 1


def test_an_intact_run_reads_its_newest_and_best_without_a_word(trained: Path) -> None:
    rows = [json.loads(line) for line in (trained / "metrics.jsonl").read_text().splitlines()]
    monitor = json.loads((trained / "config.json").read_text())["monitor"]  # no val split
    best = max(rows, key=lambda row: (row[monitor], -row["epoch"]))["epoch"]
    checkpoints = jn.runs.RunFolder(trained).checkpointer()
    assert checkpoints.pick_step("latest") == EPOCHS == jn.train.load(trained).step
    assert checkpoints.pick_step("best") == best == jn.train.load(trained, which="best").step
    with pytest.raises(ValueError, match=r"^which must be 'latest' or 'best', got 'first'$"):
        checkpoints.pick_step("first")


def test_a_loaded_run_says_its_epoch(trained: Path) -> None:
    """Issue 25, item 10: ``step`` of a loaded run is an epoch; ``epoch`` says so."""
    loaded = jn.train.load(trained, step=2)
    assert loaded.epoch == loaded.step == 2
    assert int(loaded.train_state.step) != 2  # updates, not epochs: xor takes 2 an epoch


def test_a_run_folder_says_its_checkpoints_epochs(trained: Path) -> None:
    folder = jn.runs.RunFolder(trained)
    assert folder.epochs() == folder.checkpointer().steps() == list(range(1, EPOCHS + 1))
