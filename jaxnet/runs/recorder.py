"""What a ``fit`` writes into its run folder, when, and how a resume reads it back.

Inside an epoch (a stream with ``Streaming(log_every=..., eval_every=...)``): each step row
goes to ``steps.jsonl`` and to every logger with a ``log_steps`` method. Per epoch: the
history row goes to every logger (``metrics.jsonl`` always; CSV, TensorBoard or
the user's own on request), a checkpoint is taken at the cadence of `Checkpointing`, and
``curves.png`` is redrawn. The slow part of each (the log files' rewrite, the checkpoint of a
host copy of the state, the plot) runs in a :class:`jaxnet.runs.writer.BackgroundWriter`, in
that order, so the files on disk always hold at least the rows of the newest checkpoint.

The loop talks to the run folder through this one door: :meth:`Recorder.start` (which asks
:meth:`jaxnet.runs.RunFolder.open` where to start: fresh, or the newest checkpoint that verifies,
never the log), :meth:`Recorder.record` and :meth:`Recorder.record_steps` as it trains, and
:meth:`Recorder.finish`. The order of things on disk is the run folder's business; the order
of writes in time is this module's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import pathlib
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax

from jaxnet.optim.state import TrainState
from jaxnet.runs.checkpoint import Checkpointer, host_copy
from jaxnet.runs.folder import CONFIG, CURVES, STEPS, RunFolder
from jaxnet.runs.loggers import AppendedJsonLines, FileLogger, Logger, make_logger
from jaxnet.runs.writer import BackgroundWriter
from jaxnet.validate import checked_fields, flag, positive_int

__all__ = ["PLOT_INTERVAL_S", "Checkpointing", "Recorder"]

PLOT_INTERVAL_S = 1.0
"""The least time between two redraws of curves.png during a run (the last rows are always
drawn when it ends)."""


@dataclasses.dataclass(frozen=True)
class Checkpointing:
    """When ``fit`` checkpoints, how many it keeps, and whether training waits for the disk.

    Args:
      every: checkpoint after every ``every``-th epoch. None (the default): after each epoch
        at which the previous checkpoint has finished writing, so a fast run is never slowed
        by its disk. Either way the last epoch (also after early stopping or Ctrl-C) is
        always checkpointed, and the best checkpoint is the best of those taken (an epoch
        whose monitored value is not finite never is).
      keep: how many of the most recent checkpoints to keep (the best one is kept too).
      asynchronous: write checkpoints, log files and plots in a background thread from a
        host copy of the state, so that training goes on meanwhile; every write completes
        (or is rolled back) before ``fit`` returns or raises. With several processes writes
        are always synchronous and ``every=None`` means every epoch, so that all processes
        take part in the same checkpoints.

    Example:
      >>> Checkpointing(every=5, keep=2)
      Checkpointing(every=5, keep=2, asynchronous=True)
    """

    every: int | None = None
    keep: int = 3
    asynchronous: bool = True

    def __post_init__(self) -> None:
        every = self.every
        checked_fields(
            self,
            every=None if every is None else positive_int(every, "every", owner="Checkpointing"),
            keep=positive_int(self.keep, "keep", owner="Checkpointing"),
            asynchronous=flag(self.asynchronous, "asynchronous", owner="Checkpointing"),
        )


class Recorder:
    """The files of one fit: run folder, loggers and checkpoints, or nothing but the user's
    loggers when ``run_dir`` is None. With several processes all read (resume) and all take
    part in checkpoints (each writes its shards), but only process 0 writes the other files.

    Use as a context manager around the epochs: on the way out, every write has finished.
    """

    def __init__(
        self,
        run_dir: Any,
        config: dict[str, Any],
        *,
        resume: bool,
        checkpointing: Checkpointing,
        mode: str,
        loggers: Sequence[Logger | str] = (),
        title: str = "",
        model: dict[str, Any] | None = None,
        step_rows: bool = False,
    ) -> None:
        self.folder = None if run_dir is None else RunFolder(run_dir)
        self.writes = jax.process_index() == 0
        self.config, self.resume, self.policy = config, resume, checkpointing
        self.model = model
        self.title = title or ("" if self.folder is None else self.folder.path.name)
        self._logger_specs = list(loggers)
        names = [spec for spec in self._logger_specs if isinstance(spec, str)]
        if names:  # the built-in loggers are settings of the run: a resume reopens them
            self.config = {**config, "loggers": names}
        self.loggers: list[Logger] = []
        self.step_rows = step_rows
        self.steps: AppendedJsonLines | None = None  # steps.jsonl
        self.checkpoints: Checkpointer | None = None
        if self.folder is not None:
            self.checkpoints = self.folder.checkpointer(
                max_to_keep=checkpointing.keep, best_mode=mode
            )
        synchronous = jax.process_count() > 1 or not checkpointing.asynchronous
        self.writer = BackgroundWriter(asynchronous=not synchronous)
        self._saved_epoch: int | None = None
        self._extra: dict[str, Any] | None = None  # saved with the next checkpoint
        self.resumed_extra: dict[str, Any] | None = None  # of the checkpoint resumed from
        self._history: list[dict[str, Any]] = []
        self._held: tuple[int, Callable[[], None]] | None = None  # a best epoch not yet queued
        self._mode = mode
        self._plotted_at, self._plotted_rows = -math.inf, 0  # when, and how many rows

    # ------------------------------------------------------------------------- start

    def start(self, fresh: TrainState) -> tuple[TrainState, list[dict[str, Any]]]:
        """The state and history to start from: fresh, or the newest verified checkpoint when
        resuming; writes config.json and opens the loggers."""
        state, history = fresh, list[dict[str, Any]]()
        if self.folder is not None:
            assert self.checkpoints is not None
            if self.resume:
                self._reopen_recorded_loggers()
            opened = self.folder.open(
                fresh,
                self.checkpoints,
                config=self.config,
                model=self.model,
                resume=self.resume,
                writes=self.writes,
            )
            state, history, self._saved_epoch, self.resumed_extra = opened
        self._history = history  # the list fit appends each epoch's row to
        self.loggers = [self._open_logger(spec, history) for spec in self._logger_specs]
        if self.folder is not None and self.writes:
            self.loggers.insert(0, self._open_logger("jsonl", history))
            self._open_steps(int(jax.device_get(state.step)) if history else 0)
        return state, history

    def _reopen_recorded_loggers(self) -> None:
        """A resume keeps the loggers config.json records (``--tensorboard`` need not be
        given again) and adds those given now; config.json then records them all."""
        assert self.folder is not None
        if not (self.folder.path / CONFIG).is_file():
            return
        recorded = self.folder.read_config().get("loggers") or []
        if not isinstance(recorded, list) or not all(isinstance(n, str) for n in recorded):
            return  # not a list of names: what fit wrote is checked by make_logger below
        given = [spec for spec in self._logger_specs if isinstance(spec, str)]
        names = list(dict.fromkeys([*recorded, *given]))
        self._logger_specs = names + [s for s in self._logger_specs if not isinstance(s, str)]
        if names:
            self.config = {**self.config, "loggers": names}

    def _open_steps(self, step: int) -> None:
        """steps.jsonl, cut back to ``step`` (the rows a resume trains again are dropped),
        when this fit writes step rows or the file is there from before."""
        assert self.folder is not None
        if self.step_rows or (self.folder.path / STEPS).is_file():
            kept = self.folder.steps_until(step) if self.resume else []
            self.steps = AppendedJsonLines(self.folder.path / STEPS, rows=kept)

    def warm_up(self) -> None:
        """Start importing orbax and matplotlib and making the orbax writer in the writer
        thread, to overlap with the compilation of init and the first epoch: together about
        1.5 s of CPU the first time, which the first checkpoint and plot would otherwise wait."""
        if self.checkpoints is not None and self.writer.asynchronous:
            self.writer.submit("warm-up", self._warm_up)

    def _warm_up(self) -> None:
        assert self.checkpoints is not None
        self.checkpoints.warm_up()
        if self.writes:
            from jaxnet.plot import prepare

            prepare()

    def _open_logger(self, spec: Logger | str, history: list[dict[str, Any]]) -> Logger:
        path = None if self.folder is None else self.folder.path
        if isinstance(spec, str) and not self.writes:
            return _Discard()
        return make_logger(spec, path, history, autoflush=False)

    # ------------------------------------------------------------------------- epochs

    def record_steps(self, row: dict[str, Any]) -> None:
        """A step row from inside an epoch: to steps.jsonl (written by the writer thread)
        and to every logger with a ``log_steps(step, scalars)`` method."""
        step = int(row["step"])
        for logger in self.loggers:
            log_steps = getattr(logger, "log_steps", None)
            if callable(log_steps):
                log_steps(step, row)
        if self.steps is not None:
            self.steps.log(step, row)
            self.writer.submit("logs", self._flush_logs)

    def record(
        self,
        epoch: int,
        state: TrainState,
        row: dict[str, Any],
        metric: str,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """After an epoch (whose ``row`` fit has appended to the history): log the row,
        checkpoint when due (with ``extra``, the input's position, see
        `jaxnet.train.Checkpointer.save`), redraw the plot."""
        self._extra = extra
        for logger in self.loggers:
            logger.log(int(row["step"]), row)
        if self._deferred:
            self.writer.submit("logs", self._flush_logs)
        if self.checkpoints is not None:
            improved = self.policy.every is None and self._improves(metric)  # a set cadence rules
            self._keep(epoch, state, row[metric], improved=improved)
        self._redraw()

    def _improves(self, metric: str) -> bool:
        """Whether the newest row's monitored value beats every earlier row's (ties keep the
        earlier epoch, as the best checkpoint does); not-finite values never do."""
        values = [float(row[metric]) for row in self._history if metric in row]
        if not values or not math.isfinite(values[-1]):
            return False
        sign = 1.0 if self._mode == "max" else -1.0
        earlier = [sign * v for v in values[:-1] if math.isfinite(v)]
        return not earlier or sign * values[-1] > max(earlier)

    def _keep(self, epoch: int, state: TrainState, metric: Any, *, improved: bool) -> None:
        """Checkpoint ``epoch`` when due; and, with the default cadence, whenever the monitored
        value improves keep that epoch too: saved now, or held as a host copy until the writer
        is free (a newer best replaces it), so that ``which="best"`` is the true best epoch,
        not the best of those the writer happened to be free for. The held epoch is always
        written before a later one."""
        due = self._due(epoch)
        if self._held is not None and (due or not self.writer.busy("checkpoint")):
            self._submit(*self._held)
        if due or (improved and not self.writer.busy("checkpoint")):
            self._submit(epoch, self._save_job(epoch, state, metric))
        elif improved:
            self._held = (epoch, self._save_job(epoch, state, metric))

    def _due(self, epoch: int) -> bool:
        every = self.policy.every
        if every is not None:
            return epoch % every == 0
        return not self.writer.busy("checkpoint")

    def _save_job(self, epoch: int, state: TrainState, metric: Any) -> Callable[[], None]:
        """The write of ``epoch``'s checkpoint, from a host copy of ``state`` taken now. An
        epoch whose monitored value is not finite is saved without a metric (never the best)."""
        assert self.checkpoints is not None
        checkpoints = self.checkpoints
        value = float(metric) if math.isfinite(metric) else None
        tree = host_copy(state) if self.writer.asynchronous else state
        extra = self._extra

        def save() -> None:
            checkpoints.save(epoch, tree, metric=value, extra=extra)

        return save

    def _submit(self, epoch: int, save: Callable[[], None]) -> None:
        """Queue a checkpoint; at most one waits behind the one being written."""
        if self._held is not None and self._held[0] == epoch:
            self._held = None
        self.writer.submit("checkpoint", save, replace=False)
        self._saved_epoch = epoch

    def _checkpoint(self, epoch: int, state: TrainState, metric: Any) -> None:
        """Checkpoint ``epoch`` now, after a held best (which is older, or this epoch)."""
        held, self._held = self._held, None
        if held is not None:
            self._submit(*held)
        if held is None or held[0] != epoch:
            self._submit(epoch, self._save_job(epoch, state, metric))

    @property
    def _deferred(self) -> list[FileLogger]:
        """The built-in file loggers, made with ``autoflush=False``: the writer flushes them
        (a user's logger is only ever called from the training thread)."""
        return [
            logger
            for logger in self.loggers
            if isinstance(logger, FileLogger) and not logger.autoflush
        ]

    def _flush_logs(self) -> None:
        for logger in self._deferred:
            logger.flush()
        if self.steps is not None:
            self.steps.flush()

    def _redraw(self, *, final: bool = False) -> None:
        """Redraw curves.png with the rows so far: after an epoch at most every
        `PLOT_INTERVAL_S` (a redraw costs about 0.3 s of CPU, more than a small epoch), and
        at the end if the last rows are not drawn yet."""
        if self.folder is None or not self.writes or len(self._history) == self._plotted_rows:
            return
        now = time.monotonic()
        if not final and now - self._plotted_at < PLOT_INTERVAL_S:
            return
        self._plotted_at, self._plotted_rows = now, len(self._history)
        rows, path, title = list(self._history), self.folder.path / CURVES, self.title

        def draw() -> None:
            from jaxnet.plot import plot_curves  # matplotlib loads only for a run folder

            plot_curves(rows, path, title=title)

        self.writer.submit("plot", draw)

    def finish(self, state: TrainState, row: Mapping[str, Any] | None, metric: str) -> None:
        """After the last epoch (or a stop): checkpoint it if it was not, draw the last rows,
        wait for every write."""
        if self.checkpoints is not None and row is not None:
            epoch = int(row["epoch"])
            if self._saved_epoch != epoch:
                self._checkpoint(epoch, state, row[metric])  # a held best goes first
        self._redraw(final=True)
        self.writer.wait()

    def last_checkpoint(self) -> pathlib.Path | None:
        """The newest checkpoint folder once every write in flight has finished, or None."""
        with contextlib.suppress(Exception):  # the error that stopped training says more
            self.writer.wait()
        if self.checkpoints is None or self.checkpoints.latest_step() is None:
            return None
        return self.checkpoints.directory / str(self.checkpoints.latest_step())

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        """Finish every write (complete or rolled back), then close the loggers and the
        orbax writer. The first error is raised, unless one is already on its way (it wins)."""
        first: BaseException | None = None
        for close in (lambda: self.writer.__exit__(kind, error, trace), *self._closers()):
            try:
                close()
            except BaseException as failure:
                first = first or failure
        if first is not None and error is None:
            raise first

    def _closers(self) -> list[Callable[[], None]]:
        closers = [logger.close for logger in self.loggers]
        if self.steps is not None:
            closers.append(self.steps.close)
        if self.checkpoints is not None and not self.writer.running():
            closers.append(self.checkpoints.close)  # not under a save still going on
        return closers


class _Discard:
    """The run folder's loggers on processes other than 0, which write nothing."""

    def log(self, step: int, scalars: Mapping[str, float]) -> None:
        del step, scalars

    def close(self) -> None:
        pass
