"""jaxnet.runs.loggers: rows round-trip, files stay whole under faults, TensorBoard reads them.

The fault tests run a child process: one whose file-size limit makes a write fail with EFBIG
as a full disk would (root ignores permissions, not RLIMIT_FSIZE), and one killed with
SIGKILL while it logs. The TensorBoard tests read the event files back with TensorBoard's own
reader and with the real ``tensorboard`` server on 127.0.0.1.
"""

from __future__ import annotations

import csv
import errno
import inspect
import json
import math
import os
import pathlib
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytest

import jaxnet as jn
from jaxnet import atomic
from jaxnet.runs.loggers import BUILTIN_LOGGERS, TENSORBOARD_MISSING, tensorboard_tag
from jaxnet.train import (
    CsvLogger,
    JsonLinesLogger,
    Logger,
    TensorBoardLogger,
    make_logger,
)

ROOT = pathlib.Path(__file__).resolve().parents[1]
ROWS = [
    {"epoch": 1, "step": 50, "train_loss": 0.1, "train_accuracy": 1 / 3, "seconds": 0.01},
    {"epoch": 2, "step": 100, "train_loss": 2.0 / 7, "train_accuracy": 0.97, "seconds": 1e-300},
    {"epoch": 3, "step": 150, "train_loss": 5e-324, "train_accuracy": 1.0, "seconds": 123456.789},
]


def _read_jsonl(path: pathlib.Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _read_csv(path: pathlib.Path) -> list[dict[str, Any]]:
    """The CSV rows with numbers parsed back (ints as int, others as float; empty as None)."""

    def number(cell: str) -> int | float | None:
        if cell == "":
            return None
        return int(cell) if cell.lstrip("-").isdigit() else float(cell)

    with open(path, newline="") as file:
        return [{k: number(v) for k, v in row.items()} for row in csv.DictReader(file)]


def _event_accumulator(logdir: pathlib.Path) -> Any:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(logdir))
    accumulator.Reload()
    return accumulator


def _scalars(logdir: pathlib.Path, tag: str) -> list[tuple[int, float]]:
    return [(event.step, event.value) for event in _event_accumulator(logdir).Scalars(tag)]


# ----------------------------------------------------------------------------- JSON lines, CSV


def test_json_lines_round_trip_in_todays_metrics_format(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "metrics.jsonl"
    with JsonLinesLogger(path) as logger:
        for row in ROWS:
            logger.log(row["step"], row)
    assert path.read_text() == "".join(json.dumps(row) + "\n" for row in ROWS)
    assert _read_jsonl(path) == ROWS
    assert [list(row) for row in _read_jsonl(path)] == [list(row) for row in ROWS]  # key order


def test_json_lines_sets_a_missing_step_last(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "metrics.jsonl"
    with JsonLinesLogger(path) as logger:
        logger.log(7, {"epoch": 1, "train_loss": 0.5})
        logger.log(8, {"train_loss": np.float32(0.25)})  # a NumPy scalar, written as its value
    assert path.read_text() == (
        '{"epoch": 1, "train_loss": 0.5, "step": 7}\n{"train_loss": 0.25, "step": 8}\n'
    )


def test_json_lines_writes_the_kept_rows_at_construction(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "run" / "metrics.jsonl"
    (tmp_path / "run").mkdir()
    path.write_text(json.dumps({"epoch": 9, "step": 999}) + "\n")  # a killed run's later epoch
    logger = JsonLinesLogger(path, rows=ROWS[:2])
    assert _read_jsonl(path) == ROWS[:2]
    logger.log(150, ROWS[2])
    assert _read_jsonl(path) == ROWS
    logger.close()


def test_csv_round_trip_is_exact(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "metrics.csv"
    with CsvLogger(path) as logger:
        for row in ROWS:
            logger.log(row["step"], row)
    assert _read_csv(path) == ROWS
    assert path.read_text().splitlines()[0] == "epoch,step,train_loss,train_accuracy,seconds"


def test_csv_writes_numpy_scalars_as_the_numbers_they_hold(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "metrics.csv"
    values = {"a": np.float32(0.1), "b": np.float64(1 / 3), "c": np.int64(7), "d": True}
    with CsvLogger(path) as logger:
        logger.log(1, values)
    with open(path, newline="") as file:
        (row,) = list(csv.DictReader(file))
    assert np.float32(float(row["a"])) == values["a"]
    assert float(row["b"]) == values["b"]
    assert row["c"] == "7"
    assert row["d"] == "True"
    assert row["step"] == "1"


def test_csv_new_key_widens_the_header(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "metrics.csv"
    logger = CsvLogger(path, rows=[{"epoch": 1, "step": 5, "train_loss": 0.5}])
    assert path.read_text() == "epoch,step,train_loss\n1,5,0.5\n"  # written at construction
    logger.log(10, {"epoch": 2, "step": 10, "train_loss": 0.25, "val_loss": 0.75})
    logger.log(15, {"epoch": 3, "step": 15, "lr": 0.001})
    logger.close()
    assert path.read_text() == (
        "epoch,step,train_loss,val_loss,lr\n1,5,0.5,,\n2,10,0.25,0.75,\n3,15,,,0.001\n"
    )


def test_csv_without_rows_is_an_empty_file(tmp_path: pathlib.Path) -> None:
    CsvLogger(tmp_path / "metrics.csv").close()
    assert (tmp_path / "metrics.csv").read_text() == ""


@pytest.mark.parametrize("cls", [JsonLinesLogger, CsvLogger])
def test_a_failed_write_changes_nothing(
    cls: type[JsonLinesLogger | CsvLogger],
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / "metrics"
    logger = cls(path, rows=ROWS[:1])
    before = path.read_text()

    def full_disk(target: object, text: str) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(atomic, "write_text", full_disk)
        with pytest.raises(OSError, match="No space left"):
            logger.log(100, {**ROWS[1], "new_key": 1.5})
    assert path.read_text() == before
    logger.log(150, ROWS[2])  # neither the failed row nor its new key is in the file
    read = _read_jsonl(path) if cls is JsonLinesLogger else _read_csv(path)
    assert read == [ROWS[0], ROWS[2]]


def test_loggers_satisfy_the_protocol(tmp_path: pathlib.Path) -> None:
    loggers = [
        JsonLinesLogger(tmp_path / "a.jsonl"),
        CsvLogger(tmp_path / "a.csv"),
        TensorBoardLogger(tmp_path / "tb"),
    ]
    for logger in loggers:
        assert isinstance(logger, Logger)
        logger.close()
    assert not isinstance(object(), Logger)


@pytest.mark.parametrize("name", ["jsonl", "csv", "tensorboard"])
def test_close_is_idempotent_and_log_after_close_raises(name: str, tmp_path: pathlib.Path) -> None:
    logger = make_logger(name, tmp_path, [])
    logger.close()
    logger.close()
    target = tmp_path / BUILTIN_LOGGERS[name]
    kind = {"jsonl": "JsonLinesLogger", "csv": "CsvLogger", "tensorboard": "TensorBoardLogger"}
    message = f"{kind[name]}({str(target)!r}) is closed; log() needs an open logger"
    with pytest.raises(ValueError) as error:
        logger.log(1, {"train_loss": 0.5})
    assert str(error.value) == message


@pytest.mark.parametrize("name", ["jsonl", "csv", "tensorboard"])
def test_a_row_whose_step_disagrees_is_refused(name: str, tmp_path: pathlib.Path) -> None:
    kind = {"jsonl": "JsonLinesLogger", "csv": "CsvLogger", "tensorboard": "TensorBoardLogger"}
    logger = make_logger(name, tmp_path, [])
    with pytest.raises(ValueError) as error:
        logger.log(5, {"step": 6, "train_loss": 0.5})
    logger.close()
    assert str(error.value) == f"{kind[name]}.log: step=5 but the row's 'step' is 6"


# ----------------------------------------------------------------------------- faults


def _big_row(step: int, width: int) -> dict[str, Any]:
    """A deterministic row of ``width`` metrics (parent and child build the same rows)."""
    return {"epoch": step, "step": step, **{f"train_m{i}": step + i / 7 for i in range(width)}}


_CHILD = """
import itertools, json, sys
from jaxnet.train import CsvLogger, JsonLinesLogger
mode, folder, width = sys.argv[1], sys.argv[2], int(sys.argv[3])
loggers = {"jsonl": JsonLinesLogger(folder + "/metrics.jsonl"), "csv": CsvLogger(folder + "/metrics.csv")}
if mode == "full-disk":  # each kind logs until a write fails
    import resource, signal
    limit = int(sys.argv[4])
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # so a write past the limit fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    for kind, logger in loggers.items():
        for step in itertools.count(1):
            try:
                logger.log(step, _big_row(step, width))
            except OSError as error:
                print(json.dumps({"kind": kind, "failed_at": step, "errno": error.errno}), flush=True)
                break
elif mode == "forever":  # log to both until killed, saying after each row that it is written
    for step in itertools.count(1):
        for logger in loggers.values():
            logger.log(step, _big_row(step, width))
        print(step, flush=True)
else:  # "die-mid-write <kind>": log 3 rows, then SIGKILL itself halfway through writing the 4th
    import builtins, io, os, signal
    logger = loggers[sys.argv[4]]
    for step in (1, 2, 3):
        logger.log(step, _big_row(step, width))

    class Dying:  # a file whose first write stops halfway, on the disk, and kills the process
        def __init__(self, file):
            self._file = file
        def write(self, data):
            self._file.write(data[: len(data) // 2])
            self._file.flush()
            os.fsync(self._file.fileno())
            os.kill(os.getpid(), signal.SIGKILL)
        def __getattr__(self, name):
            return getattr(self._file, name)
        def __enter__(self):
            return self
        def __exit__(self, *exc_info):
            self._file.close()

    real_open = builtins.open
    def dying_open(file, mode="r", *args, **kwargs):
        opened = real_open(file, mode, *args, **kwargs)
        return Dying(opened) if any(flag in mode for flag in "wax+") else opened
    builtins.open = io.open = dying_open  # every Python writer (pathlib's too) opens through these
    logger.log(4, _big_row(4, width))
    print("survived the kill", flush=True)
"""


def _child_command(mode: str, folder: pathlib.Path, width: int, *args: str) -> list[str]:
    source = "from typing import Any\n" + textwrap.dedent(inspect.getsource(_big_row)) + _CHILD
    return [sys.executable, "-c", source, mode, str(folder), str(width), *args]


def _child_env() -> dict[str, str]:
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, "PYTHONDONTWRITEBYTECODE": "1"}


def _read(kind: str, path: pathlib.Path) -> list[dict[str, Any]]:
    return _read_jsonl(path) if kind == "jsonl" else _read_csv(path)


FILE_LIMIT = 64 * 1024  # bytes: about 50 JSON rows of width 40, 90 CSV rows


def test_a_full_disk_leaves_the_last_complete_file(tmp_path: pathlib.Path) -> None:
    result = subprocess.run(
        # the child limits its own file size (RLIMIT_FSIZE): a preexec_fn would fork this
        # process, whose JAX threads make fork unsafe
        _child_command("full-disk", tmp_path, 40, str(FILE_LIMIT)),
        env=_child_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    reports = [json.loads(line) for line in result.stdout.splitlines()]
    assert [report["kind"] for report in reports] == ["jsonl", "csv"]
    for report in reports:
        path = tmp_path / BUILTIN_LOGGERS[report["kind"]]
        assert report["errno"] == errno.EFBIG
        assert report["failed_at"] > 10  # many rows were written before the disk was "full"
        expected = [_big_row(step, 40) for step in range(1, report["failed_at"])]
        assert _read(report["kind"], path) == expected  # whole, up to the last successful log
        assert path.stat().st_size <= FILE_LIMIT
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.csv", "metrics.jsonl"]


def test_kill_9_while_logging_never_leaves_a_cut_off_file(tmp_path: pathlib.Path) -> None:
    """Readers running beside the child see whole files; so does the one after SIGKILL."""
    width, wanted = 2000, 6  # rows of 60-100 KB: each rewrite takes a while
    paths = {kind: tmp_path / BUILTIN_LOGGERS[kind] for kind in ("jsonl", "csv")}
    written: list[int] = []
    errors = (tmp_path / "child.err").open("w+")
    child = subprocess.Popen(
        _child_command("forever", tmp_path, width),
        env=_child_env(),
        stdout=subprocess.PIPE,
        stderr=errors,
        text=True,
    )
    assert child.stdout is not None
    reader = threading.Thread(target=lambda: written.extend(map(int, child.stdout)), daemon=True)
    reader.start()
    reads, seen = 0, dict.fromkeys(paths, -1)  # rows read last time; -1: no file yet
    try:
        deadline = time.monotonic() + 120
        while len(written) < wanted:
            if child.poll() is not None or time.monotonic() > deadline:
                errors.seek(0)
                pytest.fail(f"the child wrote {written} rows, then:\n{errors.read()}")
            for kind, path in paths.items():
                acknowledged = len(written)
                if seen[kind] < 0 and not path.exists():
                    continue  # the child is starting; once there, the file never goes away
                rows = _read(kind, path)
                assert rows == [_big_row(step, width) for step in range(1, len(rows) + 1)]
                assert len(rows) >= max(acknowledged, seen[kind])  # never a truncated file
                seen[kind] = len(rows)
                reads += 1
            time.sleep(0.02)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        reader.join(timeout=30)
        child.stdout.close()
        errors.close()
    assert child.returncode == -signal.SIGKILL
    assert reads > wanted  # the readers looked while the child was writing
    acknowledged = written[-1]
    for kind, path in paths.items():
        rows = _read(kind, path)
        assert acknowledged <= len(rows) <= acknowledged + 1
        assert rows == [_big_row(step, width) for step in range(1, len(rows) + 1)]
    # A temporary that the kill cut off is removed by the next logger of that file (a resume).
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]
    assert all(name.startswith((".tmp-metrics.jsonl-", ".tmp-metrics.csv-")) for name in leftovers)
    JsonLinesLogger(paths["jsonl"], rows=_read("jsonl", paths["jsonl"])).close()
    CsvLogger(paths["csv"], rows=_read("csv", paths["csv"])).close()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "child.err",
        "metrics.csv",
        "metrics.jsonl",
    ]


@pytest.mark.parametrize("kind", ["jsonl", "csv"])
def test_kill_9_halfway_through_a_write_keeps_the_previous_file(
    kind: str, tmp_path: pathlib.Path
) -> None:
    """Deterministic: the child dies with half of its 4th version on the disk."""
    result = subprocess.run(
        _child_command("die-mid-write", tmp_path, 40, kind),
        env=_child_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == -signal.SIGKILL, result.stdout + result.stderr
    path = tmp_path / BUILTIN_LOGGERS[kind]
    assert _read(kind, path) == [_big_row(step, 40) for step in (1, 2, 3)]
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]
    assert len(leftovers) == 1 and leftovers[0].startswith(f".tmp-{path.name}-")  # cut off
    # Who removes it: the next logger of that file (fit's logger when the run resumes).
    cls = JsonLinesLogger if kind == "jsonl" else CsvLogger
    cls(path, rows=_read(kind, path)).close()
    assert not any(p.name.startswith(".tmp-") for p in tmp_path.iterdir())
    assert _read(kind, path) == [_big_row(step, 40) for step in (1, 2, 3)]


def test_a_logger_removes_only_its_own_leftover_temporaries(tmp_path: pathlib.Path) -> None:
    for name in [".tmp-metrics.jsonl-0123456789ab", ".tmp-metrics.csv-0123456789ab"]:
        (tmp_path / name).write_text('{"cut off')
    (tmp_path / ".tmp-config.json-0123456789ab").write_text("{")  # another writer's
    JsonLinesLogger(tmp_path / "metrics.jsonl").close()
    CsvLogger(tmp_path / "metrics.csv").close()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".tmp-config.json-0123456789ab",
        "metrics.csv",
        "metrics.jsonl",
    ]


# ----------------------------------------------------------------------------- TensorBoard


def test_tensorboard_tags_group_by_split() -> None:
    keys = ["train_loss", "test_accuracy", "val_x", "val_top_5", "seconds", "lr", "trainer", "val_"]
    assert [tensorboard_tag(key) for key in keys] == [
        "train/loss",
        "test/accuracy",
        "val/x",
        "val/top_5",
        "seconds",
        "lr",
        "trainer",
        "val_",
    ]


def test_tensorboard_events_read_back_with_tensorboards_reader(tmp_path: pathlib.Path) -> None:
    logger = TensorBoardLogger(tmp_path / "tb")
    rows = [{**row, "lr": 1e-3 * row["epoch"], "note": "text", "flag": True} for row in ROWS]
    for row in rows:
        logger.log(row["step"], row)
        # Flushed at every log: the reader sees the row before the logger is closed.
        assert _scalars(tmp_path / "tb", "train/loss")[-1][0] == row["step"]
    logger.close()
    tags = _event_accumulator(tmp_path / "tb").Tags()["scalars"]
    assert sorted(tags) == ["lr", "seconds", "train/accuracy", "train/loss"]  # no step, epoch
    for key in ["train_loss", "train_accuracy", "seconds", "lr"]:
        read = _scalars(tmp_path / "tb", tensorboard_tag(key))
        assert [step for step, _ in read] == [50, 100, 150]
        for (_, value), row in zip(read, rows, strict=True):
            assert value == np.float32(row[key])  # TensorBoard keeps float32


def _log_steps(logdir: pathlib.Path, steps: Sequence[int], offset: float, **kwargs: Any) -> None:
    with TensorBoardLogger(logdir, **kwargs) as logger:
        for step in steps:
            logger.log(step, {"step": step, "train_loss": step + offset})


def test_purge_step_discards_the_dropped_steps_of_a_killed_run(tmp_path: pathlib.Path) -> None:
    _log_steps(tmp_path, [1, 2, 3], offset=0.0)  # the killed run; its checkpoint is at step 1
    _log_steps(tmp_path, [2, 3, 4], offset=0.5, purge_step=2)  # the resumed run, same second
    assert len(list(tmp_path.glob("events.out.tfevents.*"))) == 2  # the first is not overwritten
    assert _scalars(tmp_path, "train/loss") == [(1, 1.0), (2, 2.5), (3, 3.5), (4, 4.5)]


def test_without_purge_step_tensorboard_keeps_the_stale_steps(tmp_path: pathlib.Path) -> None:
    """Why the purge is needed: without it, steps 2 and 3 appear twice."""
    _log_steps(tmp_path, [1, 2, 3], offset=0.0)
    _log_steps(tmp_path, [2, 3, 4], offset=0.5)
    assert len(_scalars(tmp_path, "train/loss")) == 6


def test_make_logger_resumes_tensorboard_after_the_kept_history(tmp_path: pathlib.Path) -> None:
    _log_steps(tmp_path / "tensorboard", [50, 100, 150], offset=0.0)  # killed after step 150
    history = [{"epoch": 1, "step": 50}, {"epoch": 2, "step": 100}]  # checkpoint at epoch 2
    logger = make_logger("tensorboard", tmp_path, history)
    logger.log(150, {"epoch": 3, "step": 150, "train_loss": 150.5})
    logger.close()
    assert _scalars(tmp_path / "tensorboard", "train/loss") == [
        (50, 50.0),
        (100, 100.0),
        (150, 150.5),
    ]


def test_a_fresh_run_discards_events_of_a_run_killed_before_its_checkpoint(
    tmp_path: pathlib.Path,
) -> None:
    """A fresh run (empty history) purges from step 0: every earlier event of the folder."""
    _log_steps(tmp_path / "tensorboard", [50, 100], offset=0.0)  # killed before any checkpoint
    logger = make_logger("tensorboard", tmp_path, [])
    logger.log(50, {"epoch": 1, "step": 50, "train_loss": 0.25})
    logger.close()
    assert _scalars(tmp_path / "tensorboard", "train/loss") == [(50, 0.25)]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def _poll(what: str, fetch: Any, done: Any, server: subprocess.Popen[bytes], log: Any) -> Any:
    """``fetch()`` until ``done(result)``; at most 60 s, then fail with the server's output."""
    deadline = time.monotonic() + 60
    while True:
        try:
            result = fetch()
            if done(result):
                return result
        except (urllib.error.URLError, ConnectionError):
            result = None
        if server.poll() is not None or time.monotonic() > deadline:
            log.seek(0)
            pytest.fail(f"tensorboard: no {what} (last answer {result!r}):\n{log.read()}")
        time.sleep(0.25)


def test_the_tensorboard_server_shows_the_run_live(tmp_path: pathlib.Path) -> None:
    runs = tmp_path / "runs"
    logger = make_logger("tensorboard", runs / "digits", [])
    rows = [{"epoch": e, "step": 10 * e, "train_loss": 1.0 / e} for e in range(1, 6)]
    for row in rows[:3]:
        logger.log(row["step"], row)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "tensorboard.main", "--logdir", str(runs)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--load_fast=false"]
    command += ["--reload_interval", "1"]
    with open(tmp_path / "server.log", "w+") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            (run,) = _poll("run", lambda: _get_json(f"{base}/data/runs"), bool, server, log)
            assert run == "digits/tensorboard"
            query = urllib.parse.urlencode({"run": run, "tag": "train/loss"})

            def points() -> Any:
                return _get_json(f"{base}/data/plugin/scalars/scalars?{query}")

            answer = _poll("3 points", points, lambda a: len(a) == 3, server, log)
            assert [step for _, step, _ in answer] == [10, 20, 30]
            for row in rows[3:]:  # while the server runs; not closed: each log is on disk
                logger.log(row["step"], row)
            answer = _poll("5 points", points, lambda a: len(a) == 5, server, log)
            assert [step for _, step, _ in answer] == [10, 20, 30, 40, 50]
            for (_, _, value), row in zip(answer, rows, strict=True):
                assert math.isclose(value, row["train_loss"], rel_tol=1e-7)  # float32
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            logger.close()


# ----------------------------------------------------------------------------- make_logger


@pytest.mark.parametrize(
    ("name", "written"),
    [("jsonl", "metrics.jsonl"), ("csv", "metrics.csv"), ("tensorboard", "tensorboard")],
)
def test_make_logger_writes_its_file_in_the_run_folder(
    name: str, written: str, tmp_path: pathlib.Path
) -> None:
    logger = make_logger(name, tmp_path, ROWS[:1])
    logger.log(100, ROWS[1])
    logger.close()
    assert [p.name for p in tmp_path.iterdir()] == [written]
    if name == "tensorboard":  # new to the folder: the kept rows first, as the files do
        loss = _scalars(tmp_path / written, "train/loss")
        assert loss == [(50, np.float32(0.1)), (100, np.float32(2 / 7))]
    else:
        assert _read(name, tmp_path / written) == ROWS[:2]


def test_make_logger_returns_a_logger_object_as_it_is() -> None:
    class Collect:
        def __init__(self) -> None:
            self.rows: list[tuple[int, dict[str, float]]] = []

        def log(self, step: int, scalars: Mapping[str, float]) -> None:
            self.rows.append((step, dict(scalars)))

        def close(self) -> None:
            pass

    collect = Collect()
    assert make_logger(collect, None, ROWS) is collect


def test_make_logger_unknown_name() -> None:
    with pytest.raises(ValueError) as error:
        make_logger("wandb", pathlib.Path("runs/x"), [])
    assert str(error.value) == (
        "fit: unknown logger 'wandb'; the built-in loggers are 'jsonl', 'csv', 'tensorboard'"
    )


@pytest.mark.parametrize("name", ["jsonl", "csv", "tensorboard"])
def test_make_logger_name_without_run_dir(name: str) -> None:
    with pytest.raises(ValueError) as error:
        make_logger(name, None, [])
    assert str(error.value) == f"fit: logger {name!r} writes into the run folder; pass run_dir=..."


class _OnlyLog:
    def log(self, step: int, scalars: Mapping[str, float]) -> None:
        pass


@pytest.mark.parametrize(
    ("spec", "lacks"),
    [(42, "int without log() and close()"), (_OnlyLog(), "_OnlyLog without close()")],
)
def test_make_logger_refuses_an_object_that_is_no_logger(spec: Any, lacks: str) -> None:
    with pytest.raises(TypeError) as error:
        make_logger(spec, None, [])
    assert str(error.value) == (
        "fit: a logger is one of 'jsonl', 'csv', 'tensorboard' or an object with methods "
        f"log(step, scalars) and close() (the jaxnet.train.Logger protocol); got a {lacks}"
    )


def test_make_logger_refuses_a_logger_class() -> None:
    with pytest.raises(TypeError) as error:
        make_logger(CsvLogger, None, [])  # type: ignore[arg-type]
    assert str(error.value) == (
        "fit: a logger must be an instance, got the class CsvLogger; pass CsvLogger(...)"
    )


def test_missing_tensorboardx_names_the_extra(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    TensorBoardLogger(tmp_path / "ok").close()  # its modules are imported and cached now
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    with pytest.raises(ImportError) as error:
        make_logger("tensorboard", tmp_path, [])
    assert str(error.value) == TENSORBOARD_MISSING
    assert TENSORBOARD_MISSING == (
        "TensorBoard logging needs tensorboardX: pip install 'jaxnet-functional[tensorboard]'"
    )
    assert not (tmp_path / "tensorboard").exists()


def test_the_base_install_never_imports_tensorboardx(tmp_path: pathlib.Path) -> None:
    code = (
        "import sys, jaxnet as jn\n"
        "jn.train.make_logger('jsonl', __import__('pathlib').Path(sys.argv[1]), []).close()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorboardX', 'tensorboard')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        env=_child_env(),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert result.stdout.strip() == "[]"


def _xor_fit(run: pathlib.Path, epochs: int, **kwargs: Any) -> None:
    jn.train.fit(
        jn.serial(jn.nn.Dense(4), jn.nn.Tanh, jn.nn.Dense(2)),
        jn.data.load("xor"),
        optimizer=jn.train.optimizer("adam", learning_rate=0.05),
        loss=jn.losses.softmax_cross_entropy,
        epochs=epochs,
        run_dir=run,
        progress=False,
        **kwargs,
    )


@pytest.mark.parametrize(
    ("first", "then"),
    [(["tensorboard"], []), ([], ["tensorboard"])],
    ids=["kept-from-the-first-run", "asked-for-on-resume"],
)
def test_a_resumed_run_keeps_its_loggers_and_tensorboard_sees_every_epoch(
    tmp_path: pathlib.Path, first: list[str], then: list[str]
) -> None:
    """Issue 25, item 5: the loggers are settings of the run, reopened on resume; TensorBoard
    asked for first on a resume starts from the run's whole history (metrics.jsonl)."""
    run = tmp_path / "run"
    _xor_fit(run, 3, loggers=first)
    _xor_fit(run, 5, loggers=then, resume=True)
    steps = [row["step"] for row in _read_jsonl(run / "metrics.jsonl")]
    assert len(steps) == 5
    assert [step for step, _ in _scalars(run / "tensorboard", "train/loss")] == steps
    losses = [row["train_loss"] for row in _read_jsonl(run / "metrics.jsonl")]
    assert [v for _, v in _scalars(run / "tensorboard", "train/loss")] == pytest.approx(losses)
    assert json.loads((run / "config.json").read_text())["loggers"] == ["tensorboard"]
