"""The run folder: ``config.json``, ``model.json``, ``metrics.jsonl``, ``curves.png`` and
``checkpoints/`` (and ``steps.jsonl``: the rows inside epochs, when a stream reports them).

A run folder describes itself: ``config.json`` holds the settings of the run, ``model.json``
the net's config, its preprocessing and its optimizer, so :func:`jaxnet.runs.load` rebuilds
the net and restores its parameters with no code from the user.

:class:`RunFolder` owns these files and their rules. A fit enters through
:meth:`RunFolder.open` alone, which takes the steps in their natural order: refuse a folder that
cannot be trained into (checkpoints without ``resume``, changed settings, another data file),
verify the checkpoints and set the damaged ones aside, restore the newest that verifies, cut the
history back to it, remove the leftovers of a killed run, write ``config.json`` and
``model.json``. The checkpoints themselves are :class:`jaxnet.runs.Checkpointer`'s.
"""

from __future__ import annotations

import datetime
import json
import os
import pathlib
import warnings
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Generic, NamedTuple, TypeVar

import jax

from jaxnet import atomic
from jaxnet.data.user_file import check_same_file
from jaxnet.distributed import sync_processes
from jaxnet.metrics import monitor_mode
from jaxnet.runs.checkpoint import Checkpointer

_State = TypeVar("_State")

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


class CheckpointWarning(UserWarning):
    """A resume passed over a damaged checkpoint (it is replaced when training reaches it)."""


_UNRECORDED = object()

KEPT_ON_RESUME: Mapping[str, Any] = MappingProxyType(
    {
        "batch_size": _UNRECORDED,
        "seed": _UNRECORDED,
        "precision": _UNRECORDED,
        "accumulate": 1,
        "ema": None,
        "evaluate_ema": False,
        "reduce_on_plateau": None,
    }
)
"""The config.json settings a resume must repeat, with the value a folder that lacks one had
(``fit`` writes ``accumulate``, ``ema`` and ``reduce_on_plateau`` only when set); a setting
recorded only by later versions is not checked in an older folder. ``epochs`` may grow."""


def _as_json(value: Any) -> Any:
    """``value`` as config.json reads it back (tuples as lists)."""
    return json.loads(json.dumps(value))


class Opened(NamedTuple, Generic[_State]):
    """Where a fit starts, as :meth:`RunFolder.open` found it.

    Attributes:
      state: the state to train from: the fresh one, or the newest verified checkpoint's.
      history: the rows of ``metrics.jsonl`` up to that checkpoint (``[]`` when fresh).
      epoch: the epoch of the checkpoint resumed from; None when starting from the beginning.
      extra: what was saved with that checkpoint (a stream's position), or None.
    """

    state: _State
    history: list[dict[str, Any]]
    epoch: int | None
    extra: dict[str, Any] | None


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

    def epochs(self) -> list[int]:
        """The epochs of the run's complete checkpoints, ascending: ``fit`` numbers its
        checkpoints by epoch, so these are ``checkpointer().steps()`` under their real name."""
        return self.checkpointer().steps()

    # ------------------------------------------------------------------ a fit's one door

    def open(
        self,
        fresh: _State,
        checkpoints: Checkpointer,
        *,
        config: dict[str, Any],
        model: dict[str, Any] | None,
        resume: bool,
        writes: bool = True,
    ) -> Opened[_State]:
        """Make the folder ready for a fit and say where it starts.

        Fresh (``resume=False``): a folder that holds checkpoints is refused; leftovers of a
        killed run are removed; ``config.json`` and ``model.json`` are written. Resumed: the
        settings that shape the steps must be the folder's (:data:`KEPT_ON_RESUME`), the newest
        checkpoint that verifies is restored into ``fresh``'s structure (damaged newer ones
        are set aside, each with a :class:`CheckpointWarning`), the data file must be the one
        the run began on, ``metrics.jsonl`` must hold one row per epoch up to it, and
        ``config.json`` is rewritten with the new settings (``epochs`` may grow). A resume of
        a run killed before its first checkpoint starts over, as it began.

        Args:
          fresh: the state a new run starts from (its structure is what a resume restores).
          checkpoints: the folder's checkpoints, as :meth:`checkpointer` made them.
          config: the settings of this fit, for ``config.json``.
          model: the model's description, for ``model.json`` (None: not written).
          resume: continue the run in the folder.
          writes: whether this process writes files (process 0 of several); all read.

        Raises:
          ValueError: checkpoints without ``resume``; a resume with other settings.
          FileNotFoundError: a resume of a folder that holds no run.
          RunFolderError, CheckpointError: a damaged file, named.
        """
        if not resume:
            if checkpoints.latest_step() is not None:
                raise ValueError(
                    f"fit: run folder {str(self.path)!r} already holds checkpoints; "
                    "pass resume=True to continue it, or choose another folder"
                )
            self._clean(writes)
            self._write(config, model, writes)
            return Opened(fresh, [], None, None)
        return self._resume(fresh, checkpoints, config, model, writes)

    def _resume(
        self,
        fresh: _State,
        checkpoints: Checkpointer,
        config: dict[str, Any],
        model: dict[str, Any] | None,
        writes: bool,
    ) -> Opened[_State]:
        """:meth:`open` with ``resume=True``: verify, set aside, restore, cut the history."""
        if (self.path / CONFIG).is_file():
            self._check_same_settings(config)  # before anything in the folder moves
        epoch, passed_over = checkpoints.verified_step()
        if passed_over:
            sync_processes("jaxnet resume: verified")  # all have read before process 0 moves
        for step, error in passed_over.items():
            where = checkpoints.set_aside(step) if writes else None
            start = "the start" if epoch is None else f"epoch {epoch}"
            warnings.warn(
                CheckpointWarning(
                    f"fit: resuming from {start}, passing over {error}"
                    + ("" if where is None else f" (moved to {where.name})")
                ),
                stacklevel=5,  # the caller of fit (fit, Recorder.start, open, here)
            )
        opened = Opened(fresh, [], epoch, None)
        if epoch is not None:
            self._check_same_data(model)
            state = checkpoints.restore(fresh, epoch)
            step = int(jax.device_get(state.step))
            opened = Opened(state, self.history_until(epoch, step), epoch, checkpoints.extra(epoch))
        elif not (self.path / CONFIG).is_file():
            raise FileNotFoundError(
                f"fit: cannot resume: {str(self.path)!r} holds no run "
                "(no checkpoint, no config.json)"
            )
        # else killed before its first checkpoint: start over, exactly as it began
        self._clean(writes)
        self._write({**self.read_config(), **config}, model, writes)
        return opened

    def _check_same_settings(self, config: Mapping[str, Any]) -> None:
        """A resumed run keeps the settings that shape its steps (see :data:`KEPT_ON_RESUME`):
        another batch size, seed or update rule would silently continue a different run."""
        saved = self.read_config()
        for key, default in KEPT_ON_RESUME.items():
            if default is _UNRECORDED and (key not in saved or key not in config):
                continue  # a folder from before the key was recorded
            was, now = _as_json(saved.get(key, default)), _as_json(config.get(key, default))
            if was != now:
                raise ValueError(
                    f"fit: cannot resume {str(self.path)!r} with {key}={now!r}: it was "
                    f"trained with {key}={was!r} (config.json); a resume keeps the run's "
                    "settings, so pass the same or train into a new run_dir"
                )

    def _check_same_data(self, model: Mapping[str, Any] | None) -> None:
        """A resumed run trains on the data file it began on: model.json holds its SHA-256."""
        file = self.path / MODEL
        if model is None or not file.is_file():
            return
        saved = self.read_model().get("data") or {}
        check_same_file(saved, model.get("data") or {}, str(file))

    def _clean(self, writes: bool) -> None:
        """Remove what a killed run left behind (``.tmp-*``, ``.deleting-*``)."""
        if writes:
            atomic.remove_leftovers(self.path)
            atomic.remove_leftovers(self.path / CHECKPOINTS)

    def _write(self, config: dict[str, Any], model: dict[str, Any] | None, writes: bool) -> None:
        """config.json, then model.json (by the process that writes)."""
        if writes:
            self.write_config(config)
            if model is not None:
                self.write_model(model)

    # ------------------------------------------------------------------------ the files

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
