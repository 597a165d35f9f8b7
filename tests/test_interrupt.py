"""Ctrl-C works from the first instant of ``jaxnet train`` (issue 25, item 6).

SIGINT once arrived inside JAX's C++ callbacks during its first seconds: swallowed ("Exception
ignored in ... _xla_gc_callback", then the run trained on and exited 0) or a 25-line
traceback. Now, at any moment, it is exit 130 and the one line ``jaxnet: interrupted``; in
training the epoch finishes and is saved first. Each case runs the console script's entry
point in its own child process; the four run side by side.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jaxnet as jn

ROOT = Path(__file__).resolve().parents[1]
DELAYS = (0.3, 0.8, 1.5, 2.5)


def test_sigint_at_any_moment_is_exit_130_and_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    children = {}
    for delay in DELAYS:
        run = tmp_path / f"run-{delay}"
        command = [sys.executable, "-m", "jaxnet.console", "train", "--epochs", "1000"]
        command += ["--no-progress", "--out", str(run)]
        children[delay] = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
    start = time.monotonic()
    for delay in DELAYS:
        time.sleep(max(0.0, start + delay - time.monotonic()))
        children[delay].send_signal(signal.SIGINT)
    for delay, child in children.items():
        out, err = child.communicate(timeout=300)
        assert (child.returncode, err) == (130, "jaxnet: interrupted\n"), (delay, out, err)
        run = tmp_path / f"run-{delay}"
        if "run folder:" in out:  # it was training: the epoch finished and was saved
            loaded = jn.train.load(run)
            assert 1 <= loaded.step < 1000
            assert out.splitlines()[-1] == f"run folder: {run}"


def test_sigint_in_training_finishes_the_epoch_saves_and_says_so(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = tmp_path / "run"
    command = [sys.executable, "-m", "jaxnet.console", "train", "--epochs", "300"]
    child = subprocess.Popen(
        [*command, "--no-progress", "--out", str(run)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 120
    while not (run / "metrics.jsonl").is_file() or not (run / "metrics.jsonl").read_text():
        assert child.poll() is None and time.monotonic() < deadline, child.communicate()
        time.sleep(0.05)
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=300)
    assert (child.returncode, err) == (130, "jaxnet: interrupted\n"), out
    loaded = jn.train.load(run)
    rows = (run / "metrics.jsonl").read_text().splitlines()
    assert loaded.step == len(rows) < 300  # the last epoch trained is the one saved
    assert "(stopped: interrupted)" in out
