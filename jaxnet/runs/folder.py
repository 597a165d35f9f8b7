"""The run folder: ``config.json``, ``model.json``, ``metrics.jsonl``, ``curves.png`` and
``checkpoints/`` (and ``steps.jsonl``: the rows inside epochs, when a stream reports them).

A run folder describes itself: ``config.json`` holds the settings of the run, ``model.json``
the net's config, its preprocessing and its optimizer, so :func:`jaxnet.runs.load` rebuilds
the net and restores its parameters with no code from the user.
"""

from __future__ import annotations

import datetime
import json
import os
import pathlib
from typing import Any

from jaxnet import atomic
from jaxnet.metrics import monitor_mode
from jaxnet.runs.checkpoint import Checkpointer

CONFIG, METRICS, CURVES, CHECKPOINTS = "config.json", "metrics.jsonl", "curves.png", "checkpoints"
MODEL = "model.json"
STEPS = "steps.jsonl"
"""The step rows of a streaming fit with ``Streaming(log_every=..., eval_every=...)``: one
JSON object per line, ``{"epoch", "step", "train_*"?, "val_*"?, "test_*"?}``."""


def default_run_dir(name: str, root: str | os.PathLike[str] = "runs") -> pathlib.Path:
    """``runs/<name>-<YYYYmmdd-HHMMSS>``, the folder a run writes when none is given."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return pathlib.Path(root) / f"{name}-{stamp}"


class RunFolderError(ValueError):
    """A file of a run folder is cut off, malformed or disagrees with the checkpoints."""


def _parse_json(file: pathlib.Path, lineno: int, text: str) -> Any:
    """One JSON value from line ``lineno`` of ``file``; a clear error naming both if not."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        line = lineno + error.lineno - 1
        raise RunFolderError(
            f"{file}: line {line} is not valid JSON ({error.msg}): cut off or edited by hand"
        ) from None


class RunFolder:
    """Reads and writes the files of one run folder. Every write is atomic (a temporary
    file, fsync, rename: see :mod:`jaxnet.atomic`), so a kill or a full disk leaves the
    previous complete file, never a cut-off one; every read names the file and line it cannot
    parse."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = pathlib.Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    def checkpointer(self, *, max_to_keep: int = 3, best_mode: str | None = None) -> Checkpointer:
        """The run's checkpoints: the latest ``max_to_keep`` and the best by the monitored
        metric; by default ranked as ``fit`` ranked them, by the ``monitor`` of config.json
        (highest accuracy, lowest loss)."""
        if best_mode is None:
            config = self.read_config() if (self.path / CONFIG).is_file() else {}
            monitor = config.get("monitor")
            best_mode = monitor_mode(monitor) if isinstance(monitor, str) else "max"
        return Checkpointer(self.path / CHECKPOINTS, max_to_keep=max_to_keep, best_mode=best_mode)

    def write_config(self, config: dict[str, Any]) -> None:
        """Replace config.json with ``config``, atomically."""
        atomic.make_folder(self.path)
        text = json.dumps(config, indent=2, sort_keys=True)
        atomic.write_text(self.path / CONFIG, text + "\n")

    def read_config(self) -> dict[str, Any]:
        """The run's config.

        Raises:
          FileNotFoundError: if the folder or its config.json is missing.
          RunFolderError: if config.json is not a JSON object (cut off, edited).
        """
        return self._read_object(CONFIG)

    def write_model(self, model: dict[str, Any]) -> None:
        """Replace model.json (the net's config, preprocessing, optimizer), atomically."""
        atomic.make_folder(self.path)
        atomic.write_text(self.path / MODEL, json.dumps(model, indent=2) + "\n")

    def read_model(self) -> dict[str, Any]:
        """The run's model.json.

        Raises:
          FileNotFoundError: if the folder or its model.json is missing.
          RunFolderError: if model.json is not a JSON object (cut off, edited).
        """
        return self._read_object(MODEL)

    def _read_object(self, name: str) -> dict[str, Any]:
        file = self.path / name
        if not file.is_file():
            what = f"has no {name}" if self.path.is_dir() else "does not exist"
            raise FileNotFoundError(f"run folder {str(self.path)!r} {what}")
        value = _parse_json(file, 1, file.read_text(encoding="utf-8"))
        if not isinstance(value, dict):
            raise RunFolderError(f"{file}: expected a JSON object, got {type(value).__name__}")
        return value

    def read_metrics(self) -> list[dict[str, Any]]:
        """The rows of metrics.jsonl, one per line (none if the file is absent).

        Raises:
          RunFolderError: naming the file and the line that is not a JSON object.
        """
        file = self.path / METRICS
        if not file.is_file():
            return []
        rows = []
        for lineno, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            row = _parse_json(file, lineno, line)
            if not isinstance(row, dict) or not isinstance(row.get("epoch"), int):
                raise RunFolderError(f"{file}: line {lineno} is not a row with an epoch")
            rows.append(row)
        return rows

    def steps_until(self, step: int) -> list[dict[str, Any]]:
        """The rows of steps.jsonl up to train step ``step`` (a resume's checkpoint): the
        later ones came from the steps a resume trains again, and so does a cut-off last line
        (a kill -9 during an append, which comes after the newest checkpoint). ``[]`` if the
        file is absent.

        Raises:
          RunFolderError: naming the file and a line before the last that is not a row with
            a step.
        """
        file = self.path / STEPS
        if not file.is_file():
            return []
        text = file.read_text(encoding="utf-8")
        lines = text.split("\n")[:-1]  # a last line without its newline was cut off: dropped
        rows = []
        for lineno, line in enumerate(lines, 1):
            row = _parse_json(file, lineno, line)
            if not isinstance(row, dict) or not isinstance(row.get("step"), int):
                raise RunFolderError(f"{file}: line {lineno} is not a row with a step")
            rows.append(row)
        return [row for row in rows if row["step"] <= step]

    def history_until(self, epoch: int, step: int) -> list[dict[str, Any]]:
        """The rows of epochs 1..``epoch`` of metrics.jsonl, checked against the checkpoint of
        that epoch (taken at train step ``step``); the later rows a resume drops.

        Raises:
          RunFolderError: a row is missing or repeated, or the rows disagree with the
            checkpoint, naming the file and the line.
        """
        file = self.path / METRICS
        kept = [row for row in self.read_metrics() if row["epoch"] <= epoch]
        for expected, row in enumerate(kept, 1):
            if row["epoch"] != expected:
                what = "repeats" if row["epoch"] < expected else "skips to"
                raise RunFolderError(
                    f"{file}: row {expected} {what} epoch {row['epoch']}; the file must hold one "
                    f"row per epoch 1..{epoch} (the newest checkpoint is at epoch {epoch})"
                )
        if len(kept) < epoch:
            has = f"has rows for epochs 1..{len(kept)}" if kept else "has no rows"
            if not file.is_file():
                has = "is missing"
            raise RunFolderError(
                f"{file}: {has}, but the newest checkpoint is at epoch {epoch}: "
                f"the rows of epochs {len(kept) + 1}..{epoch} are missing"
            )
        if epoch and kept[-1].get("step") != step:
            raise RunFolderError(
                f"{file}: the row of epoch {epoch} says step {kept[-1].get('step')}, but its "
                f"checkpoint was taken at step {step}"
            )
        return kept

    def write_jsonl(self, name: str, rows: list[dict[str, Any]]) -> None:
        """Replace the file ``name`` with ``rows``, one JSON object per line, atomically."""
        atomic.make_folder(self.path)
        atomic.write_text(self.path / name, "".join(json.dumps(row) + "\n" for row in rows))
