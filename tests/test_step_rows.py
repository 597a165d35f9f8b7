"""Rows inside an epoch: ``jn.train.Streaming(log_every=..., eval_every=...)`` on a stream.

The reference is a hand-written loop of the same steps (``jax.value_and_grad`` and optax, no
jaxnet training code) over the same batches: a step row's training metrics are the mean of
that loop's per-step metrics since the previous row with them (or the epoch's start), and its
evaluation is the loss and metrics of that loop's parameters at the row's step on the whole
split. Rows never change what is trained, and a run folder's ``steps.jsonl`` survives kill -9,
a full disk and a resume, ending as an uninterrupted run's.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import warnings

import jax
import numpy as np
import pytest

import jaxnet as jn
from jaxnet.runs.folder import RunFolderError
from jaxnet.train.streaming import steps_per_call
from tests.helpers_training import (
    assert_same_leaves,
    fit_kwargs,
    hand_loop_start,
    load_digits,
    read_jsonl,
    small_net,
    stream_with_held_out,
    without_seconds,
)

BATCH = 64
STEPS = 19  # digits with val_fraction=0.1: 1,216 training rows, 19 batches of 64


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def _batches(digits, epoch=0):
    order = np.random.default_rng(epoch).permutation(digits.num_train)
    rows = [order[i * BATCH : (i + 1) * BATCH] for i in range(STEPS)]
    return [(digits.x_train[r], digits.y_train[r]) for r in rows]


def _stream(digits, **kwargs):
    return stream_with_held_out(digits, lambda epoch: _batches(digits, epoch), **kwargs)


class Collect:
    """A logger that keeps its epoch rows and, through ``log_steps``, its step rows."""

    def __init__(self):
        self.rows, self.steps = [], []

    def log(self, step, row):
        self.rows.append(dict(row))

    def log_steps(self, step, row):
        assert row["step"] == step
        self.steps.append(dict(row))

    def close(self):
        pass


def _hand_loop(digits, epochs, log_every, eval_every):
    """The expected step rows, from a hand-written step (jax.value_and_grad and optax's adam)
    over the same batches, each split evaluated whole."""
    kw = fit_kwargs()
    net, loss, metric_fns = small_net(), kw["loss"], kw["metrics"]
    params, _, step, opt_state = hand_loop_start(net, loss, kw["optimizer"], metric_fns)

    def evaluate(params, x, y):
        predictions, _ = net.apply(params, {}, x)  # evaluation mode
        return {k: float(f(predictions, y)) for k, f in ({"loss": loss} | metric_fns).items()}

    rows, done = [], 0
    for epoch in range(epochs):
        window = []
        for x, y in _batches(digits, epoch):
            params, opt_state, metrics = step(params, opt_state, x, y)
            window.append(jax.device_get(metrics))
            done += 1
            row = {"epoch": epoch + 1, "step": done}
            if done % log_every == 0:
                row |= {f"train_{k}": np.mean([m[k] for m in window]) for k in window[0]}
                window = []
            if done % eval_every == 0:
                for split in ("val", "test"):
                    held_x, held_y = getattr(digits, f"x_{split}"), getattr(digits, f"y_{split}")
                    values = evaluate(params, held_x, held_y)
                    row |= {f"{split}_{k}": v for k, v in values.items()}
            if len(row) > 2:
                rows.append(row)
    return rows


def _assert_rows_close(actual, expected):
    assert [(r["epoch"], r["step"], sorted(r)) for r in actual] == [
        (r["epoch"], r["step"], sorted(r)) for r in expected
    ]
    for got, want in zip(actual, expected, strict=True):
        for key, value in want.items():
            np.testing.assert_allclose(got[key], value, rtol=2e-5, atol=1e-6, err_msg=key)


@pytest.mark.parametrize("steps_per_call", [None, 4, 64])
def test_step_rows_are_the_means_of_a_hand_written_loop(digits, steps_per_call):
    collect = Collect()
    settings = jn.train.Streaming(steps_per_call=steps_per_call, log_every=5, eval_every=7)
    result = jn.train.fit(
        small_net(), _stream(digits), streaming=settings, loggers=[collect], **fit_kwargs()
    )
    expected = _hand_loop(digits, epochs=2, log_every=5, eval_every=7)
    _assert_rows_close(collect.steps, expected)
    assert [r["step"] for r in collect.steps] == [5, 7, 10, 14, 15, 20, 21, 25, 28, 30, 35]
    assert list(collect.steps[-1])[:4] == ["epoch", "step", "train_accuracy", "train_loss"]
    assert collect.rows == result.history  # the epoch rows are what they always were
    plain = jn.train.fit(small_net(), _stream(digits), **fit_kwargs())
    assert_same_leaves(result.train_state.params, plain.train_state.params)  # rows change no step
    assert without_seconds(result.history) == without_seconds(plain.history)


def test_an_evaluation_due_at_the_end_of_an_epoch_is_the_epochs_own(digits):
    collect = Collect()
    settings = jn.train.Streaming(eval_every=STEPS)
    result = jn.train.fit(
        small_net(), _stream(digits), streaming=settings, loggers=[collect], **fit_kwargs()
    )
    assert [r["step"] for r in collect.steps] == [STEPS, 2 * STEPS]
    for row, epoch_row in zip(collect.steps, result.history, strict=True):
        assert {k: v for k, v in row.items() if k.startswith(("val_", "test_"))} == {
            k: v for k, v in epoch_row.items() if k.startswith(("val_", "test_"))
        }


def test_rows_of_a_pass_of_unknown_length_land_on_their_steps_without_recompiling(digits):
    def generator():
        epoch = 0
        while True:
            yield from _batches(digits, epoch)
            epoch += 1

    collect = Collect()
    stream = jn.data.stream(generator(), steps_per_epoch=STEPS, val=[(digits.x_val, digits.y_val)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a retrace of the chunk would warn
        jn.train.fit(
            small_net(),
            stream,
            streaming=jn.train.Streaming(steps_per_call=4, log_every=6),
            loggers=[collect],
            **fit_kwargs(epochs=3),
        )
    assert [r["step"] for r in collect.steps] == [6, 12, 18, 24, 30, 36, 42, 48, 54]
    assert all(
        sorted(r) == ["epoch", "step", "train_accuracy", "train_loss"] for r in collect.steps
    )


def test_default_steps_per_call_splits_the_period_of_the_rows(digits):
    stream = jn.data.stream(_batches(digits))  # a list: its pass's length is known
    Streaming = jn.train.Streaming
    assert steps_per_call(stream, Streaming()) == STEPS  # the pass, one chunk
    assert steps_per_call(_stream(digits), Streaming()) == 64  # a function: length unknown
    assert steps_per_call(stream, Streaming(log_every=100)) == STEPS  # rows rarer than passes
    assert steps_per_call(_stream(digits), Streaming(log_every=100)) == 50  # 2 chunks of 50
    assert steps_per_call(stream, Streaming(log_every=48, eval_every=32)) == 16  # their gcd
    assert steps_per_call(stream, Streaming(eval_every=7)) == 7
    assert steps_per_call(stream, Streaming(steps_per_call=5, log_every=7)) == 5  # as set


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"log_every": 0}, "log_every must be a positive int, got 0"),
        ({"eval_every": True}, "eval_every must be a positive int, got True"),
        ({"eval_every": 2.5}, "eval_every must be a positive int, got 2.5"),
    ],
)
def test_bad_row_periods_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=rf"^Streaming: {message}$"):
        jn.train.Streaming(**kwargs)


def test_rows_inside_epochs_need_a_stream(digits):
    with pytest.raises(ValueError, match=r"stream it: jn\.data\.stream\(\.\.\.\)"):
        jn.train.fit(
            small_net(), digits, streaming=jn.train.Streaming(log_every=10), **fit_kwargs()
        )


def test_steps_jsonl_of_a_resumed_run_is_the_uninterrupted_runs(digits, tmp_path):
    settings = jn.train.Streaming(log_every=4, eval_every=10)

    def fit(run_dir, epochs, resume=False):
        return jn.train.fit(
            small_net(),
            _stream(digits),
            streaming=settings,
            run_dir=run_dir,
            resume=resume,
            **fit_kwargs(epochs=epochs),
        )

    fit(tmp_path / "whole", 3)
    fit(tmp_path / "cut", 1)
    with open(tmp_path / "cut" / "steps.jsonl", "a") as file:  # rows of steps trained again
        file.write(json.dumps({"epoch": 2, "step": 20, "train_loss": 9.0}) + "\n")
    fit(tmp_path / "cut", 3, resume=True)
    whole = read_jsonl(tmp_path / "whole" / "steps.jsonl")
    assert [r["step"] for r in whole] == [
        4,
        8,
        10,
        12,
        16,
        20,
        24,
        28,
        30,
        32,
        36,
        40,
        44,
        48,
        50,
        52,
        56,
    ]
    assert read_jsonl(tmp_path / "cut" / "steps.jsonl") == whole
    metrics = read_jsonl(tmp_path / "whole" / "metrics.jsonl")
    assert [row["epoch"] for row in metrics] == [1, 2, 3]  # epoch rows only


def test_a_damaged_steps_jsonl_is_named_on_resume_and_a_cut_off_last_line_dropped(digits, tmp_path):
    settings = jn.train.Streaming(log_every=5)
    kw = fit_kwargs(epochs=1)
    jn.train.fit(small_net(), _stream(digits), streaming=settings, run_dir=tmp_path, **kw)
    path = tmp_path / "steps.jsonl"
    whole = path.read_text()
    path.write_text(whole + '{"epoch": 2, "step": 2')  # a kill -9 in an append after the checkpoint
    jn.train.fit(
        small_net(), _stream(digits), streaming=settings, run_dir=tmp_path, resume=True, **kw
    )
    assert path.read_text() == whole
    lines = whole.splitlines()
    path.write_text("\n".join([lines[0], "not json", *lines[2:]]) + "\n")
    with pytest.raises(RunFolderError, match=rf"^{path}: line 2 is not valid JSON"):
        jn.train.fit(
            small_net(), _stream(digits), streaming=settings, run_dir=tmp_path, resume=True, **kw
        )


def test_eval_every_needs_a_held_out_source(digits):
    stream = jn.data.stream(_batches(digits))
    with pytest.raises(ValueError, match=r"^fit: Streaming\(eval_every=5\) evaluates the stream's"):
        jn.train.fit(
            small_net(), stream, streaming=jn.train.Streaming(eval_every=5), **fit_kwargs()
        )


def test_tensorboard_draws_the_step_rows_under_steps_tags(digits, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    collect = Collect()
    jn.train.fit(
        small_net(),
        _stream(digits),
        streaming=jn.train.Streaming(log_every=5, eval_every=10),
        run_dir=tmp_path,
        loggers=["tensorboard", collect],
        **fit_kwargs(),
    )
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert {"steps/train_loss", "steps/val_accuracy", "steps/test_loss", "train/loss"} <= set(tags)
    logged = [(e.step, e.value) for e in events.Scalars("steps/train_loss")]
    expected = [(r["step"], r["train_loss"]) for r in collect.steps if "train_loss" in r]
    assert [s for s, _ in logged] == [s for s, _ in expected] == [5, 10, 15, 20, 25, 30, 35]
    np.testing.assert_allclose([v for _, v in logged], [v for _, v in expected], rtol=1e-6)
    assert [e.step for e in events.Scalars("train/loss")] == [STEPS, 2 * STEPS]


# The child: a streaming fit of 3 epochs with a row every step, that dies (SIGKILL) in the
# middle of epoch 2, or fills the disk there (RLIMIT_FSIZE fails writes as a full disk does).
CHILD = textwrap.dedent(
    """
    import os, resource, signal, sys
    import jax, numpy as np, optax
    import jaxnet as jn

    run_dir, moment, resume = sys.argv[1], sys.argv[2], sys.argv[3] == "resume"
    digits = jn.data.load("digits", val_fraction=0.1)

    def batches(epoch):
        order = np.random.default_rng(epoch).permutation(digits.num_train)
        rows = [order[i * 64 : (i + 1) * 64] for i in range(19)]
        return [(digits.x_train[r], digits.y_train[r]) for r in rows]

    class Moment:  # called before steps.jsonl takes the row
        def log(self, step, row):
            pass
        def log_steps(self, step, row):
            if moment == "kill" and step == 27:
                os.kill(os.getpid(), signal.SIGKILL)
            if moment == "full-disk" and step == 25:  # room for one more row of train_loss
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
                # the shared compilation cache is no longer written: a cut-off entry would
                # break every other process of the test run that reads it
                jax.config.update("jax_persistent_cache_min_compile_time_secs", float("inf"))
                size = os.path.getsize(os.path.join(run_dir, "steps.jsonl")) + 80
                resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
        def close(self):
            pass

    try:
        jn.train.fit(
            jn.serial(jn.nn.Dense(16), jn.nn.Relu, jn.nn.Dense(10)),
            jn.data.stream(batches, val=[(digits.x_val, digits.y_val)]),
            optimizer=optax.adam(1e-2),
            loss=jn.losses.softmax_cross_entropy,
            epochs=3,
            run_dir=run_dir,
            resume=resume,
            progress=False,
            streaming=jn.train.Streaming(steps_per_call=4, log_every=1, eval_every=6),
            # synchronous for the full disk: steps.jsonl is written at each row, in this thread
            checkpointing=jn.train.Checkpointing(every=1, asynchronous=moment != "full-disk"),
            loggers=[Moment()],
        )
    except OSError as error:
        print(f"OSError {error.errno} {error.filename}", flush=True)
        sys.exit(74)
    """
)


def _child(run_dir, moment, resume=False):
    return subprocess.run(  # the child inherits the worker's compilation cache (conftest.py)
        [sys.executable, "-c", CHILD, str(run_dir), moment, "resume" if resume else "fresh"],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("whole") / "run"
    done = _child(run_dir, "none")
    assert done.returncode == 0, done.stderr
    return read_jsonl(run_dir / "steps.jsonl")


def test_kill_9_inside_an_epoch_then_resume_ends_with_the_uninterrupted_step_rows(
    tmp_path, uninterrupted
):
    run_dir = tmp_path / "run"
    killed = _child(run_dir, "kill")
    assert killed.returncode == -9, killed.stderr
    rows = read_jsonl(
        run_dir / "steps.jsonl"
    )  # whole lines, some of them past the checkpoint of epoch 1
    assert rows == uninterrupted[: len(rows)]
    resumed = _child(run_dir, "none", resume=True)
    assert resumed.returncode == 0, resumed.stderr
    assert read_jsonl(run_dir / "steps.jsonl") == uninterrupted
    assert [r["step"] for r in uninterrupted] == list(range(1, 3 * STEPS + 1))


def test_a_full_disk_at_steps_jsonl_keeps_whole_files_and_resumes(tmp_path, uninterrupted):
    run_dir = tmp_path / "run"
    full = _child(run_dir, "full-disk")
    assert full.returncode == 74, full.stderr
    errno_, filename = full.stdout.split()[1:]
    assert int(errno_) == 27  # EFBIG: the file-size limit, as a full disk's ENOSPC would be
    assert filename.startswith(str(run_dir)) and "steps.jsonl" in filename
    assert (
        read_jsonl(run_dir / "steps.jsonl") == uninterrupted[:25]
    )  # whole: every row up to the one that fit
    assert [p.name for p in run_dir.iterdir() if p.name.startswith(".")] == []  # rolled back
    resumed = _child(run_dir, "none", resume=True)
    assert resumed.returncode == 0, resumed.stderr
    assert read_jsonl(run_dir / "steps.jsonl") == uninterrupted
