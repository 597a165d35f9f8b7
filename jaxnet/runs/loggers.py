"""Loggers: where the rows of a run go (JSON lines, CSV, TensorBoard event files).

``fit`` writes one row per epoch, a dict such as ``{"epoch": 3, "step": 150, "train_loss": 0.12,
"test_accuracy": 0.95, "seconds": 0.01}``, and hands it to each of its loggers as
``logger.log(row["step"], row)``. A logger is anything with ``log(step, scalars)`` and
``close()`` (the :class:`Logger` protocol); three are built in, named in
:data:`BUILTIN_LOGGERS` by what they write in a run folder.

- **Atomic files.** :class:`JsonLinesLogger` and :class:`CsvLogger` keep their rows in memory
  and rewrite the whole file through :mod:`jaxnet.atomic` (temporary sibling, fsync,
  rename) on every ``log``: a kill -9 or a full disk leaves the previous complete file, never a
  cut-off one. A killed write may leave its temporary ``.tmp-<name>-*`` beside the file; the
  next logger built on that path removes it (and :func:`jaxnet.atomic.remove_leftovers`
  removes every temporary of a folder).
- **Resume.** ``rows=`` are the rows a resumed run keeps (its history truncated to the
  checkpoint); they are written at once, so the file agrees with the checkpoint. A
  :class:`TensorBoardLogger` built with ``purge_step`` makes TensorBoard discard the events of
  the earlier, killed process from that step on.

Example:
    >>> import json, pathlib, tempfile
    >>> run_dir = pathlib.Path(tempfile.mkdtemp())
    >>> logger = make_logger("jsonl", run_dir, history=[])
    >>> logger.log(50, {"epoch": 1, "step": 50, "train_loss": 0.5})
    >>> logger.close()
    >>> (run_dir / "metrics.jsonl").read_text()
    '{"epoch": 1, "step": 50, "train_loss": 0.5}\\n'
"""

from __future__ import annotations

import abc
import csv
import importlib.util
import io
import json
import numbers
import os
import pathlib
import threading
import time
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, Self, runtime_checkable

from jaxnet import atomic
from jaxnet.runs.folder import METRICS

SPLITS = ("train", "val", "test")
"""The prefixes that group TensorBoard tags: ``train_loss`` is drawn as ``train/loss``."""

BUILTIN_LOGGERS: Mapping[str, str] = types.MappingProxyType(
    {"jsonl": METRICS, "csv": "metrics.csv", "tensorboard": "tensorboard/"}
)
"""The loggers named by a string, and what each writes in the run folder: ``"jsonl"`` the
run's ``metrics.jsonl``, ``"csv"`` ``metrics.csv``, ``"tensorboard"`` event files in
``tensorboard/``."""

TENSORBOARD_MISSING = (
    "TensorBoard logging needs tensorboardX: pip install 'jaxnet-functional[tensorboard]'"
)
"""The message of the ImportError raised when tensorboardX is not installed."""


@runtime_checkable
class Logger(Protocol):
    """Where the rows of a run go: ``log`` is called once per row, ``close`` once at the end.

    Any object with these two methods is a logger; there is nothing to subclass. A logger
    that also has ``log_steps(step, scalars)`` receives the step rows that a streaming fit
    reports inside its epochs (``jn.train.Streaming(log_every=..., eval_every=...)``), with
    the same keys; one without it receives only the epoch rows.

    Example:
        >>> class Collect:
        ...     def __init__(self) -> None:
        ...         self.rows = []
        ...     def log(self, step, scalars):
        ...         self.rows.append((step, dict(scalars)))
        ...     def close(self):
        ...         pass
        >>> logger = Collect()
        >>> isinstance(logger, Logger)
        True
        >>> logger.log(10, {"step": 10, "train_loss": 0.25})
        >>> logger.rows
        [(10, {'step': 10, 'train_loss': 0.25})]
    """

    def log(self, step: int, scalars: Mapping[str, float]) -> None:
        """Record ``scalars`` (one history row; it may hold ``step`` and ``epoch``) at ``step``."""

    def close(self) -> None:
        """Finish: flush and release what the logger holds. Called once, after the last row."""


class _Closable:
    """``close`` that may be called twice, ``log`` after it refused, and ``with`` blocks."""

    _closed = False

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Finish the logger; calling it again does nothing."""
        self._closed = True

    def _row(self, step: int, scalars: Mapping[str, Any]) -> dict[str, Any]:
        """``scalars`` as a dict with ``"step"`` set; refuses a closed logger and a row whose
        ``"step"`` is not ``step``."""
        if self._closed:
            raise ValueError(f"{self!r} is closed; log() needs an open logger")
        row = dict(scalars)
        if row.setdefault("step", step) != step:
            raise ValueError(
                f"{type(self).__name__}.log: step={step!r} but the row's 'step' is {row['step']!r}"
            )
        return row


def _json_default(value: Any) -> Any:
    """NumPy and JAX scalars (``float32``, a 0-d array) as the Python number they hold."""
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        return value.item()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _remove_own_leftovers(path: pathlib.Path) -> None:
    """Delete the temporaries that killed writes of ``path`` left (never another file's)."""
    for leftover in path.parent.glob(f"{atomic.TEMPORARY_PREFIXES[0]}{path.name}-*"):
        leftover.unlink(missing_ok=True)


class FileLogger(_Closable, abc.ABC):
    """A logger whose rows live in memory and whose file is rewritten whole, atomically:
    at every ``log`` (``autoflush``), or at `flush` and ``close`` (``fit``'s writer thread
    flushes while training goes on; the lock keeps ``log`` and ``flush`` apart)."""

    def __init__(self, path: str | os.PathLike[str], autoflush: bool) -> None:
        self.path = pathlib.Path(path)
        self.autoflush = autoflush
        self._lock = threading.Lock()
        self._dirty = False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _remove_own_leftovers(self.path)

    @abc.abstractmethod
    def _text(self) -> str:
        """The whole file, as the subclass writes it."""

    def _store(self, text: Callable[[], str], commit: Callable[[], None]) -> None:
        """With autoflush, write ``text()`` and then ``commit`` the new rows (a failed write
        changes nothing); else commit them now and leave the write to `flush`."""
        if self.autoflush:
            atomic.write_text(self.path, text())
        commit()
        self._dirty = not self.autoflush

    def flush(self) -> None:
        """Write the rows logged since the last write, atomically (nothing if none)."""
        with self._lock:
            if not self._dirty:
                return
            text, self._dirty = self._text(), False
        try:
            atomic.write_text(self.path, text)
        except BaseException:
            self._dirty = True
            raise

    def close(self) -> None:
        """Write what `flush` has not yet written, then finish; calling it again does nothing."""
        if not self._closed:
            self.flush()
        super().close()


class JsonLinesLogger(FileLogger):
    """One JSON object per line, in the row's key order: the run folder's ``metrics.jsonl``.

    Each line is ``json.dumps(row)`` of the row (with ``"step"`` set if the row lacks it).
    The file is rewritten atomically on every ``log``, so it always holds whole lines.

    Args:
      path: the file to write; its folder is created.
      rows: rows already kept (a resumed run's history), written at once.
      autoflush: rewrite the file on every ``log`` (True); or only on `flush` and ``close``,
        which ``fit`` calls from its writer thread, so that several rows cost one rewrite.

    Raises:
      ValueError: from ``log``, after ``close`` or when the row's ``"step"`` is not ``step``.

    Example:
        >>> import json, pathlib, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "metrics.jsonl"
        >>> with JsonLinesLogger(path, rows=[{"epoch": 1, "step": 5, "train_loss": 0.5}]) as log:
        ...     log.log(10, {"epoch": 2, "train_loss": 0.25})
        >>> [json.loads(line) for line in path.read_text().splitlines()]
        [{'epoch': 1, 'step': 5, 'train_loss': 0.5}, {'epoch': 2, 'train_loss': 0.25, 'step': 10}]
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        rows: Iterable[Mapping[str, Any]] = (),
        autoflush: bool = True,
    ) -> None:
        super().__init__(path, autoflush)
        self._lines = [json.dumps(dict(row), default=_json_default) + "\n" for row in rows]
        atomic.write_text(self.path, self._text())

    def __repr__(self) -> str:
        return f"JsonLinesLogger({str(self.path)!r})"

    def _text(self, lines: Sequence[str] | None = None) -> str:
        return "".join(self._lines if lines is None else lines)

    def log(self, step: int, scalars: Mapping[str, float]) -> None:
        """Append the row and rewrite the file atomically; a failed write changes nothing."""
        line = json.dumps(self._row(step, scalars), default=_json_default) + "\n"
        with self._lock:
            lines = [*self._lines, line]
            self._store(lambda: self._text(lines), lambda: setattr(self, "_lines", lines))


class AppendedJsonLines(_Closable):
    """JSON lines appended to, not rewritten: for the many rows of a run's ``steps.jsonl``.

    Built with the rows kept (a resumed run's, cut back to its checkpoint), which replace the
    file atomically, once. ``log`` only keeps the row; `flush` (``fit``'s writer thread)
    appends the rows kept since, then ``fsync``s, so a run of many rows costs each row one
    write, where rewriting the file would cost them all. A failed append (a full disk) is cut
    back to the whole lines before it and raised; a kill -9 can leave at most a cut-off last
    line, of a row past the newest checkpoint, which :meth:`RunFolder.steps_until` drops.
    """

    autoflush = False

    def __init__(self, path: str | os.PathLike[str], *, rows: Iterable[Mapping[str, Any]] = ()):
        self.path = pathlib.Path(path)
        self._lock = threading.Lock()
        self._pending: list[str] = []
        _remove_own_leftovers(self.path)
        atomic.write_text(self.path, "".join(_json_line(row) for row in rows))

    def __repr__(self) -> str:
        return f"AppendedJsonLines({str(self.path)!r})"

    def log(self, step: int, scalars: Mapping[str, float]) -> None:
        """Keep the row; the next `flush` appends it."""
        line = _json_line(self._row(step, scalars))
        with self._lock:
            self._pending.append(line)

    def flush(self) -> None:
        """Append the rows kept since the last flush and fsync; on failure, cut back."""
        with self._lock:
            lines, self._pending = self._pending, []
        if not lines:
            return
        data = "".join(lines).encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            start = os.fstat(fd).st_size
            try:
                rest = memoryview(data)
                while rest:  # a write may stop short (at a file-size limit) before it fails
                    rest = rest[os.write(fd, rest) :]
                os.fsync(fd)
            except BaseException as error:
                os.ftruncate(fd, start)  # only whole lines stay
                with self._lock:
                    self._pending = lines + self._pending
                if isinstance(error, OSError) and error.filename is None:  # name the file
                    raise OSError(error.errno, error.strerror, str(self.path)) from error
                raise
        finally:
            os.close(fd)

    def close(self) -> None:
        """Append what `flush` has not yet, then finish; calling it again does nothing."""
        if not self._closed:
            self.flush()
        super().close()


def _json_line(row: Mapping[str, Any]) -> str:
    return json.dumps(dict(row), default=_json_default) + "\n"


def _csv_cell(value: Any) -> Any:
    """Numbers exactly: floats as ``repr`` (which ``float()`` reads back to the same value)."""
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        value = value.item()  # a NumPy or JAX scalar: np.float32(0.1) -> 0.10000000149011612
    if isinstance(value, bool | str) or value is None:
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return repr(float(value))
    return value


def _csv_lines(fields: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """The CSV lines of ``rows`` under the header ``fields``; missing cells are empty."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, restval="", lineterminator="\n")
    lines = []
    for row in rows:
        writer.writerow({key: _csv_cell(value) for key, value in row.items()})
        lines.append(buffer.getvalue())
        buffer.seek(0)
        buffer.truncate()
    return lines


class CsvLogger(FileLogger):
    """A CSV table, one row per ``log``, the header the union of the rows' keys.

    The header lists every key in the order first seen; a row that brings a new key rewrites
    the file with the wider header, and cells a row lacks are empty. Floats are written as
    ``repr``, so ``float(cell)`` gives back exactly the value logged. The file is rewritten
    atomically on every ``log``.

    Args:
      path: the file to write; its folder is created.
      rows: rows already kept (a resumed run's history), written at once.
      autoflush: rewrite the file on every ``log`` (True), or only on `flush` and ``close``.

    Raises:
      ValueError: from ``log``, after ``close`` or when the row's ``"step"`` is not ``step``.

    Example:
        >>> import pathlib, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "metrics.csv"
        >>> with CsvLogger(path) as log:
        ...     log.log(5, {"step": 5, "train_loss": 0.5})
        ...     log.log(10, {"step": 10, "train_loss": 0.25, "lr": 0.001})
        >>> print(path.read_text(), end="")
        step,train_loss,lr
        5,0.5,
        10,0.25,0.001
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        rows: Iterable[Mapping[str, Any]] = (),
        autoflush: bool = True,
    ) -> None:
        super().__init__(path, autoflush)
        self._rows = [dict(row) for row in rows]
        self._fields = _widen([], self._rows)
        self._lines = _csv_lines(self._fields, self._rows)  # the rows, under self._fields
        atomic.write_text(self.path, self._text())

    def __repr__(self) -> str:
        return f"CsvLogger({str(self.path)!r})"

    def _text(self, fields: Sequence[str] | None = None, lines: Sequence[str] | None = None) -> str:
        """The header and ``lines``; an empty file while no row has a key."""
        fields = self._fields if fields is None else fields
        lines = self._lines if lines is None else lines
        if not fields:
            return ""
        return "".join([*_csv_lines(fields, [dict(zip(fields, fields, strict=True))]), *lines])

    def log(self, step: int, scalars: Mapping[str, float]) -> None:
        """Append the row and rewrite the file atomically; a failed write changes nothing."""
        row = self._row(step, scalars)
        with self._lock:
            fields = _widen(self._fields, [row])
            lines = self._lines if fields == self._fields else _csv_lines(fields, self._rows)
            lines = [*lines, *_csv_lines(fields, [row])]

            def commit() -> None:
                self._rows.append(row)
                self._fields, self._lines = fields, lines

            self._store(lambda: self._text(fields, lines), commit)


def _widen(fields: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """``fields`` followed by the keys of ``rows`` not among them, in the order first seen."""
    wider = list(fields)
    for row in rows:
        wider.extend(key for key in row if key not in wider)
    return wider


def tensorboard_tag(key: str) -> str:
    """The TensorBoard tag of a history key: ``train_loss`` -> ``train/loss``, ``val_x`` ->
    ``val/x``; other keys (``seconds``, ``lr``) keep their name.

    Example:
        >>> [tensorboard_tag(k) for k in ("train_loss", "test_accuracy", "val_top_5", "lr")]
        ['train/loss', 'test/accuracy', 'val/top_5', 'lr']
    """
    split, underscore, name = key.partition("_")
    return f"{split}/{name}" if split in SPLITS and underscore and name else key


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


class TensorBoardLogger(_Closable):
    """TensorBoard event files in ``logdir``, one event per row, flushed at once.

    Each numeric value becomes a scalar at ``step`` (the x axis), tagged by split
    (:func:`tensorboard_tag`): ``train_loss`` as ``train/loss``, ``test_accuracy`` as
    ``test/accuracy``; ``step`` and ``epoch`` are skipped, other keys keep their name. The
    step rows of a streaming fit (``log_steps``) go under ``steps/``. Every row is flushed to
    the file, so ``tensorboard --logdir`` shows the run as it goes.

    ``purge_step`` marks the file with a restart at that step: TensorBoard then discards the
    events of earlier files from ``purge_step`` on (the dropped epochs of a killed run that is
    resumed from a checkpoint). ``0`` discards every earlier event; ``None`` discards nothing.

    The events are written with tensorboardX's synchronous ``EventsWriter``, the file writer
    beneath ``SummaryWriter``, in the same format. ``SummaryWriter`` itself hands events to a
    background thread, and its ``flush()`` does not wait for that thread, so the last row could
    stay invisible until the next. Each file name ends with a nanosecond time stamp, so that
    a second logger started within the same second neither overwrites the first one's file nor
    is read before it.

    Args:
      logdir: the folder of the event files; created if missing.
      purge_step: the first step whose earlier events TensorBoard discards; None keeps all.

    Raises:
      ImportError: if tensorboardX is not installed (the ``tensorboard`` extra).

    Example (needs the extra, so not run here)::

        logger = TensorBoardLogger("runs/digits/tensorboard")
        logger.log(50, {"epoch": 1, "step": 50, "train_loss": 0.5, "test_accuracy": 0.9})
        logger.close()
    """

    def __init__(self, logdir: str | os.PathLike[str], *, purge_step: int | None = None) -> None:
        # Imported here, so the base install never imports tensorboardX; the package first,
        # so that a missing (or blocked) package fails even when its modules are cached.
        try:
            import tensorboardX  # noqa: F401
            from tensorboardX.event_file_writer import EventsWriter
            from tensorboardX.proto.event_pb2 import Event, SessionLog
            from tensorboardX.proto.summary_pb2 import Summary
        except ImportError as error:
            raise ImportError(TENSORBOARD_MISSING) from error
        self._event, self._summary = Event, Summary
        self.logdir = pathlib.Path(logdir)
        self.logdir.mkdir(parents=True, exist_ok=True)
        suffix = f".{time.time_ns():020d}.{os.getpid()}"
        self._writer = EventsWriter(str(self.logdir / "events"), suffix)  # writes file_version
        if purge_step is not None:
            start = SessionLog(status=SessionLog.START)
            self._writer.write_event(
                Event(wall_time=time.time(), step=purge_step, session_log=start)
            )
        self._writer.flush()

    def __repr__(self) -> str:
        return f"TensorBoardLogger({str(self.logdir)!r})"

    def log(self, step: int, scalars: Mapping[str, float]) -> None:
        """Write the row's numbers as scalars at ``step`` and flush them to the file."""
        self._write(step, scalars, tensorboard_tag)

    def log_steps(self, step: int, scalars: Mapping[str, float]) -> None:
        """Write a step row from inside an epoch (``Streaming(log_every=...)``) at ``step``,
        under ``steps/<key>`` tags (``steps/train_loss``), apart from the epochs' curves:
        a step row's training metrics are means over fewer steps than an epoch row's."""
        self._write(step, scalars, lambda key: f"steps/{key}")

    def _write(self, step: int, scalars: Mapping[str, float], tag: Callable[[str], str]) -> None:
        row = self._row(step, scalars)
        values = [
            self._summary.Value(tag=tag(key), simple_value=float(value))
            for key, value in row.items()
            if key not in ("step", "epoch") and _is_number(value)
        ]
        if values:
            summary = self._summary(value=values)
            self._writer.write_event(
                self._event(wall_time=time.time(), step=int(step), summary=summary)
            )
            self._writer.flush()

    def close(self) -> None:
        """Flush and close the event file; calling it again does nothing."""
        if not self._closed:
            self._writer.close()
        super().close()


def make_logger(
    spec: str | Logger,
    run_dir: pathlib.Path | None,
    history: Sequence[Mapping[str, Any]],
    *,
    autoflush: bool = True,
) -> Logger:
    """The logger ``fit`` uses for ``spec``: a name in :data:`BUILTIN_LOGGERS`, or a logger.

    A name builds its logger in ``run_dir`` and continues ``history`` (the rows kept when
    resuming, ``[]`` for a fresh run): the file loggers write those rows at once, and
    ``"tensorboard"`` purges every earlier event from the step after the last kept row (from
    step 0 for a fresh run, so events of a run killed before its first checkpoint are
    discarded); in a folder without event files yet (TensorBoard asked for first on a resume)
    it writes the whole ``history`` first, so its curves start at epoch 1. An object is
    returned as it is. ``autoflush=False`` makes the file loggers
    write at their ``flush()`` instead of at every ``log`` (``fit`` flushes in its writer).

    Raises:
      ValueError: for an unknown name, or a name without ``run_dir``.
      TypeError: for a class (not an instance), or an object without callable ``log`` and
        ``close``.

    Example:
        >>> import pathlib, tempfile
        >>> run_dir = pathlib.Path(tempfile.mkdtemp())
        >>> logger = make_logger("csv", run_dir, history=[{"epoch": 1, "step": 5}])
        >>> logger.close()
        >>> (run_dir / "metrics.csv").read_text()
        'epoch,step\\n1,5\\n'
    """
    check_logger(spec, run_dir)
    if not isinstance(spec, str):
        return spec
    target = pathlib.Path(run_dir or ".") / BUILTIN_LOGGERS[spec]
    if spec == "tensorboard":
        if history and not any(target.glob("events*")):  # new to this run: its whole history
            logger = TensorBoardLogger(target, purge_step=0)
            for row in history:
                logger.log(int(row["step"]), row)
            return logger
        return TensorBoardLogger(target, purge_step=int(history[-1]["step"]) + 1 if history else 0)
    kind = JsonLinesLogger if spec == "jsonl" else CsvLogger
    return kind(target, rows=history, autoflush=autoflush)


def check_logger(spec: object, run_dir: pathlib.Path | str | None) -> None:
    """The errors `make_logger` would raise for ``spec``, without building anything, so that
    ``fit`` reports them before it writes a file: an unknown name, a name without
    ``run_dir``, a missing tensorboardX, or an object that is not a logger."""
    if not isinstance(spec, str):
        _check_logger(spec)
        return
    if spec not in BUILTIN_LOGGERS:
        names = ", ".join(map(repr, BUILTIN_LOGGERS))
        raise ValueError(f"fit: unknown logger {spec!r}; the built-in loggers are {names}")
    if run_dir is None:
        raise ValueError(f"fit: logger {spec!r} writes into the run folder; pass run_dir=...")
    if spec == "tensorboard" and importlib.util.find_spec("tensorboardX") is None:
        raise ImportError(TENSORBOARD_MISSING)


def _check_logger(spec: object) -> None:
    """Raise TypeError unless ``spec`` is a logger object (not a class, with both methods)."""
    kind = type(spec).__qualname__
    if isinstance(spec, type):
        raise TypeError(
            f"fit: a logger must be an instance, got the class {spec.__qualname__}; "
            f"pass {spec.__qualname__}(...)"
        )
    missing = [name for name in ("log", "close") if not callable(getattr(spec, name, None))]
    if missing:
        names = ", ".join(map(repr, BUILTIN_LOGGERS))
        lacks = " and ".join(f"{name}()" for name in missing)
        raise TypeError(
            f"fit: a logger is one of {names} or an object with methods log(step, scalars) "
            f"and close() (the jaxnet.train.Logger protocol); got a {kind} without {lacks}"
        )
