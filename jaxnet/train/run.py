"""The run folder: ``config.json``, ``metrics.jsonl``, ``curves.png`` and ``checkpoints/``.

A run folder describes itself: ``config.json`` names the recipe and every hyperparameter, so
:func:`load` rebuilds the net and restores its parameters with no code from the user.
"""

from __future__ import annotations

import datetime
import json
import os
import pathlib
from typing import Any, NamedTuple

from jaxnet.core import Layer
from jaxnet.train.checkpoint import Checkpointer
from jaxnet.train.state import TrainState

CONFIG, METRICS, CURVES, CHECKPOINTS = "config.json", "metrics.jsonl", "curves.png", "checkpoints"


def default_run_dir(name: str, root: str | os.PathLike[str] = "runs") -> pathlib.Path:
    """``runs/<name>-<YYYYmmdd-HHMMSS>``, the folder a run writes when none is given."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return pathlib.Path(root) / f"{name}-{stamp}"


class RunFolder:
    """Reads and writes the files of one run folder."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = pathlib.Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    def checkpointer(self, *, max_to_keep: int = 3, best_mode: str = "max") -> Checkpointer:
        """The run's checkpoints: the latest ``max_to_keep`` and the best by the monitored
        metric."""
        return Checkpointer(self.path / CHECKPOINTS, max_to_keep=max_to_keep, best_mode=best_mode)

    def write_config(self, config: dict[str, Any]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        text = json.dumps(config, indent=2, sort_keys=True)
        (self.path / CONFIG).write_text(text + "\n", encoding="utf-8")

    def read_config(self) -> dict[str, Any]:
        """The run's config.

        Raises:
          FileNotFoundError: if the folder or its config.json is missing.
        """
        file = self.path / CONFIG
        if not file.is_file():
            what = "has no config.json" if self.path.is_dir() else "does not exist"
            raise FileNotFoundError(f"run folder {str(self.path)!r} {what}")
        config: dict[str, Any] = json.loads(file.read_text(encoding="utf-8"))
        return config

    def read_metrics(self) -> list[dict[str, Any]]:
        file = self.path / METRICS
        if not file.is_file():
            return []
        lines = file.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def write_metrics(self, rows: list[dict[str, Any]]) -> None:
        """Replace metrics.jsonl with ``rows`` (used when a resumed run drops later epochs)."""
        self.write_jsonl(METRICS, rows)

    def write_jsonl(self, name: str, rows: list[dict[str, Any]]) -> None:
        """Write ``rows`` to the file ``name``, one JSON object per line."""
        self.path.mkdir(parents=True, exist_ok=True)
        text = "".join(json.dumps(row) + "\n" for row in rows)
        (self.path / name).write_text(text, encoding="utf-8")

    def append_metrics(self, row: dict[str, Any]) -> None:
        with open(self.path / METRICS, "a", encoding="utf-8") as file:
            file.write(json.dumps(row) + "\n")


class LoadedRun(NamedTuple):
    """A run rebuilt from its folder."""

    net: Layer
    train_state: TrainState
    config: dict[str, Any]
    history: list[dict[str, Any]]


def load(
    run_dir: str | os.PathLike[str], *, step: int | None = None, which: str = "latest"
) -> LoadedRun:
    """Rebuild a recipe run's net from ``config.json`` and restore a checkpoint into it.

    Args:
      run_dir: the run folder.
      step: the checkpoint (epoch) to restore; default by ``which``.
      which: ``"latest"`` or ``"best"`` (by the monitored metric).

    Raises:
      FileNotFoundError: if the folder, its config or its checkpoints are missing.
      ValueError: if the config names no recipe (a run of a hand-built net: rebuild the net
        yourself and use ``RunFolder(run_dir).checkpointer().restore(...)``).
    """
    from jaxnet import recipes  # recipes build on train; imported here to avoid a cycle

    folder = RunFolder(run_dir)
    config = folder.read_config()
    if "recipe" not in config:
        raise ValueError(
            f"{str(folder.path)!r} was written by fit() with a hand-built net; "
            "config.json cannot rebuild it. Build the net again and restore with "
            "RunFolder(run_dir).checkpointer().restore(target)"
        )
    job = recipes.build(config)
    target = job.initial_state()
    checkpoints = folder.checkpointer()
    if step is None:
        step = checkpoints.best_step() if which == "best" else checkpoints.latest_step()
    if step is None:
        raise FileNotFoundError(f"run folder {str(folder.path)!r} has no checkpoint")
    train_state = checkpoints.restore(target, step)
    return LoadedRun(job.net, train_state, config, folder.read_metrics())
