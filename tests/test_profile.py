"""Profiling chosen steps: ``fit(profile=(first, last))`` and ``jaxnet train --profile``.

The trace is ``jax.profiler``'s own; the tests read its Perfetto file (``.trace.json.gz``) to
count the epochs it holds, and check when the trace starts and stops against the steps.
"""

from __future__ import annotations

import gzip
import json
import re

import optax
import pytest

import jaxnet as jn
from jaxnet import cli
from jaxnet.train import profile as profile_module

STEPS = 19  # digits with val_fraction=0.1 at batch 64


@pytest.fixture(scope="module")
def digits():
    return jn.data.load("digits", val_fraction=0.1)


def _fit(digits, run_dir, **kwargs):
    net = jn.serial(jn.nn.Dense(16), jn.nn.Relu, jn.nn.Dense(10))
    return jn.train.fit(
        net,
        digits,
        optimizer=optax.adam(1e-2),
        loss=jn.losses.softmax_cross_entropy,
        epochs=3,
        batch_size=64,
        run_dir=run_dir,
        progress=False,
        **kwargs,
    )


def _traced_epochs(run_dir):
    """How many of fit's epoch calls the run's one trace holds (the Python tracer's events of
    fit.py's ``run_epoch``, not those of the epoch function it traces when it compiles)."""
    [trace] = (run_dir / "profile").glob("plugins/profile/*/*.trace.json.gz")
    events = json.loads(gzip.decompress(trace.read_bytes()))["traceEvents"]
    return sum(1 for e in events if re.fullmatch(r"\$fit\.py:\d+ run_epoch", str(e.get("name"))))


@pytest.mark.parametrize(("steps", "epochs"), [((20, 25), 1), ((19, 20), 2), ((1, 57), 3)])
def test_the_trace_holds_the_epochs_of_the_chosen_steps(digits, tmp_path, steps, epochs):
    _fit(digits, tmp_path, profile=steps)
    assert [p.suffixes[-2:] for p in (tmp_path / "profile").glob("plugins/profile/*/*.xplane.pb")]
    assert _traced_epochs(tmp_path) == epochs


def test_the_trace_starts_and_stops_at_the_epochs_that_hold_the_steps(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(profile_module.jax.profiler, "start_trace", lambda d: calls.append("start"))
    monkeypatch.setattr(profile_module.jax.profiler, "stop_trace", lambda: calls.append("stop"))
    profiler = profile_module.Profiler((20, 25), tmp_path)
    with profiler:
        for finished in (0, 19, 38, 57):  # epochs of 19 steps: 1-19, 20-38, 39-57, 58-76
            profiler.before(finished, STEPS)
            calls.append(f"epoch to {finished + STEPS}")
            profiler.after(finished + STEPS)
    assert calls == ["epoch to 19", "start", "epoch to 38", "stop", "epoch to 57", "epoch to 76"]
    calls.clear()
    unknown = profile_module.Profiler((30, 100), tmp_path)  # a pass of unknown length
    with pytest.raises(RuntimeError, match="a step failed"), unknown:
        unknown.before(0, None)
        calls.append("epoch")
        raise RuntimeError("a step failed")
    assert calls == ["start", "epoch", "stop"]  # the trace is stopped on the way out


@pytest.mark.parametrize("steps", [(0, 5), (5, 3), (1.0, 2), "1,2", (1, 2, 3)])
def test_bad_steps_are_refused(digits, tmp_path, steps):
    with pytest.raises(ValueError, match=r"^fit: profile must be \(first_step, last_step\)"):
        _fit(digits, tmp_path, profile=steps)


def test_a_profile_needs_a_run_folder(digits):
    with pytest.raises(ValueError, match=r"^fit: profile= writes its trace into the run folder"):
        _fit(digits, None, profile=(1, 2))


def test_jaxnet_train_profile(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "iris", "--epochs", "2", "--no-progress", "--out", str(out)]
    assert cli.main([*args, "--profile", "2,3"]) == 0
    assert _traced_epochs(out) == 1  # iris: 7 steps an epoch at batch 16
    capsys.readouterr()
    assert cli.main([*args[:-1], str(tmp_path / "x"), "--profile", "3"]) == 2
    assert capsys.readouterr().err.strip() == (
        "jaxnet: error: --profile must be FIRST,LAST train steps such as 10,20, got '3'"
    )
    assert not (tmp_path / "x").exists()
