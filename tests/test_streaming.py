"""``fit`` on a stream of batches: the same parameters as in memory, exact resume, clear errors.

The in-memory epoch is the reference: a stream fed the very batches the in-memory path draws
(its shuffle, replayed on the host) must train bit for bit the same parameters, whatever the
steps per compiled call (a padded last chunk included).
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import textwrap

import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxnet as jn
from jaxnet.data.stream import StreamError
from jaxnet.train.epoch import epoch_batches
from tests.helpers_training import (
    assert_same_leaves,
    chunks,
    fit_kwargs,
    load_digits,
    small_net,
    stream_with_held_out,
    without_seconds,
)

BATCH = 64


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def _replayed(data, net):
    """The in-memory path's batches of each epoch, as a function epoch -> list of batches."""
    key = jn.train.initial_state(net, optax.adam(1e-2), data).key
    x, y = jnp.asarray(data.x_train), jnp.asarray(data.y_train)

    def epoch(e):
        xs, ys = epoch_batches(key, jnp.int32(e), x, y, BATCH)
        return list(zip(np.asarray(xs), np.asarray(ys), strict=True))

    return epoch


@pytest.fixture(scope="module")
def in_memory(digits):
    return jn.train.fit(small_net(), digits, batch_size=BATCH, **fit_kwargs())


class _Known:
    """A function epoch -> batches that also tells its pass's length."""

    def __init__(self, fn, length):
        self.fn, self.length = fn, length

    def __call__(self, epoch):
        return self.fn(epoch)

    def __len__(self):
        return self.length


# 19 steps an epoch: one chunk; or 4+4+4+4+3, the 3 padded and skipped in a lax.cond (length
# unknown) or compiled as a chunk of 3 (length known)
@pytest.mark.parametrize(("steps_per_call", "known"), [(None, True), (4, False), (4, True)])
def test_stream_of_the_same_batches_trains_the_same_params(
    digits, in_memory, steps_per_call, known
):
    net = small_net()
    replayed = _replayed(digits, net)
    stream = stream_with_held_out(
        digits,
        _Known(replayed, digits.num_train // BATCH) if known else replayed,
        val_size=50,  # 50, 50, 50, 30: a smaller last batch
        test_size=100,
    )
    settings = jn.train.Streaming(steps_per_call=steps_per_call)
    result = jn.train.fit(net, stream, streaming=settings, **fit_kwargs())
    assert_same_leaves(result.train_state.params, in_memory.train_state.params)
    streamed, reference = result.history[-1], in_memory.history[-1]
    assert streamed["step"] == reference["step"] == 2 * (digits.num_train // BATCH)
    for key in ("train_loss", "train_accuracy"):
        assert streamed[key] == reference[key]
    for key in ("val_loss", "val_accuracy", "test_loss", "test_accuracy"):
        np.testing.assert_allclose(streamed[key], reference[key], rtol=1e-5)


def test_default_steps_per_call_splits_the_pass_into_equal_chunks_of_at_most_64(digits):
    from jaxnet.train.streaming import steps_per_call

    short = jn.data.stream([(digits.x_train[:8], digits.y_train[:8])] * 19)
    long = jn.data.stream([(digits.x_train[:8], digits.y_train[:8])] * 200)
    unknown = jn.data.stream(lambda e: iter([(digits.x_train[:8], digits.y_train[:8])]))
    settings = jn.train.Streaming()
    assert [steps_per_call(s, settings) for s in (short, long, unknown)] == [
        19,
        50,
        64,
    ]  # 200 = 4 × 50


def _generator_source(digits):
    """An endless, deterministic generator of batches (a new one per call)."""

    def batches():
        for i in itertools.count():
            start = (i * BATCH) % (digits.num_train - BATCH)
            yield digits.x_train[start : start + BATCH], digits.y_train[start : start + BATCH]

    return batches


def test_steps_per_epoch_resume_continues_the_iterator_exactly(
    digits, tmp_path, default_optimizations
):
    make = _generator_source(digits)

    def fit(run_dir, epochs, resume=False):
        stream = jn.data.stream(
            make(), steps_per_epoch=7, val=chunks(digits.x_val, digits.y_val, 90)
        )
        return jn.train.fit(
            small_net(), stream, run_dir=run_dir, resume=resume, **fit_kwargs(epochs=epochs)
        )

    whole = fit(tmp_path / "whole", 4)
    fit(tmp_path / "cut", 2)
    resumed = fit(tmp_path / "cut", 4, resume=True)
    assert_same_leaves(resumed.train_state.params, whole.train_state.params)
    assert [r["step"] for r in resumed.history] == [7, 14, 21, 28]
    assert without_seconds(resumed.history) == without_seconds(whole.history)


def test_validation_picks_the_best_checkpoint_and_stops_early_never_the_test_split(
    digits, tmp_path
):
    # the test split's labels are shuffled: its metrics disagree with validation's
    rng = np.random.default_rng(0)
    test = [(digits.x_test, rng.permutation(digits.y_test))]
    stream = jn.data.stream(
        _replayed(digits, small_net()), val=[(digits.x_val, digits.y_val)], test=test
    )
    result = jn.train.fit(
        small_net(),
        stream,
        run_dir=tmp_path / "run",
        early_stopping=jn.train.EarlyStopping(patience=2),
        checkpointing=jn.train.Checkpointing(every=1, keep=1),
        **fit_kwargs(epochs=30, optimizer=optax.adam(0.3)),
    )
    accuracies = [row["val_accuracy"] for row in result.history]
    best = 1 + int(np.argmax(accuracies))
    assert jn.train.RunFolder(tmp_path / "run").read_config()["monitor"] == "val_accuracy"
    assert jn.train.RunFolder(tmp_path / "run").checkpointer().best_step() == best
    assert result.stopped == "early_stopping"
    assert len(result.history) == best + 2  # stopped after `patience` epochs without a better one


def test_without_a_validation_split_the_monitor_is_a_training_metric(digits):
    data = jn.data.load("iris")
    net = jn.serial(jn.nn.Dense(3))
    result = jn.train.fit(net, data, batch_size=16, **fit_kwargs(epochs=1))
    assert not any(k.startswith("val_") for k in result.history[0])
    stream = jn.data.stream([(data.x_train[:16], data.y_train[:16])])
    with pytest.raises(
        ValueError, match=r"cannot monitor 'val_loss'; the history has \['train_loss'\]"
    ):
        jn.train.fit(net, stream, monitor="val_loss", **fit_kwargs(metrics=None))


# ------------------------------------------------------------------------- bad input


def _batches(digits, n, *, edit=None):
    batches = chunks(digits.x_train, digits.y_train, BATCH, count=n)
    out = [(x.copy(), y.copy()) for x, y in batches]
    if edit is not None:
        edit(out)
    return out


def test_a_batch_of_another_shape_is_an_error_naming_it(digits):
    def shorter(batches):
        batches[5] = (batches[5][0][:, :63], batches[5][1])

    stream = jn.data.stream(_batches(digits, 8, edit=shorter))
    with pytest.raises(
        StreamError,
        match=r"^stream: train batch 5 of epoch 0: x has shape \(64, 63\) and y \(64,\), but "
        r"the first training batch had \(64, 64\) and \(64,\)",
    ):
        jn.train.fit(small_net(), stream, **fit_kwargs())


def test_a_label_out_of_range_in_a_later_batch_is_an_error_naming_it(digits):
    def bad_label(batches):
        batches[6][1][3] = 10

    stream = jn.data.stream(_batches(digits, 8, edit=bad_label))
    with pytest.raises(
        StreamError,
        match=r"^stream: train batch 6 of epoch 0: label 10 at position 3 is outside "
        r"\[0, num_classes=10\)$",
    ):
        jn.train.fit(small_net(), stream, **fit_kwargs())


def test_a_source_that_raises_mid_epoch_keeps_the_last_good_checkpoint(digits, tmp_path):
    good = _batches(digits, 6)

    def source(epoch):
        for i, batch in enumerate(good):
            if epoch == 2 and i == 4:
                raise OSError("disk read failed")
            yield batch

    with pytest.raises(
        StreamError,
        match=r"^stream: train batch 4 of epoch 2: the source raised OSError: disk read failed$",
    ):
        jn.train.fit(
            small_net(),
            jn.data.stream(source),
            run_dir=tmp_path / "run",
            checkpointing=jn.train.Checkpointing(every=1),
            **fit_kwargs(epochs=4),
        )
    checkpointer = jn.train.RunFolder(tmp_path / "run").checkpointer()
    assert checkpointer.steps() == [1, 2]
    assert checkpointer.verified_step()[0] == 2


def test_an_empty_source_is_an_error():
    with pytest.raises(StreamError, match=r"^stream: the train source yielded no batches$"):
        jn.data.stream([])


def test_a_source_that_runs_dry_later_is_an_error_naming_the_epoch(digits):
    batches = _batches(digits, 3)
    stream = jn.data.stream(lambda epoch: batches if epoch == 0 else [])
    with pytest.raises(
        StreamError, match=r"^stream: the train source yielded no batches in epoch 1$"
    ):
        jn.train.fit(small_net(), stream, **fit_kwargs())


def test_a_generator_needs_steps_per_epoch(digits):
    with pytest.raises(ValueError, match=r"one-shot iterator \(a generator\).*steps_per_epoch=N"):
        jn.data.stream(iter(_batches(digits, 2)))


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"batch_size": 32},
            ValueError,
            r"batch_size=32, but the stream's batches hold 64 examples",
        ),
        ({"streaming": "fast"}, TypeError, r"streaming must be a jaxnet.train.Streaming"),
    ],
)
def test_bad_stream_arguments(digits, kwargs, error, message):
    with pytest.raises(error, match=message):
        jn.train.fit(small_net(), jn.data.stream(_batches(digits, 2)), **fit_kwargs(**kwargs))


def test_streaming_settings_are_for_streams_and_checked(digits):
    with pytest.raises(ValueError, match=r"streaming= is for a jaxnet.data.Stream"):
        jn.train.fit(small_net(), digits, streaming=jn.train.Streaming(), **fit_kwargs())
    with pytest.raises(
        ValueError, match=r"^Streaming: steps_per_call must be a positive int, got 0$"
    ):
        jn.train.Streaming(steps_per_call=0)


def test_a_non_finite_step_names_the_step_in_a_later_chunk(digits):
    def blow_up(batches):
        batches[5] = (np.full_like(batches[5][0], 3e38), batches[5][1])

    stream = jn.data.stream(_batches(digits, 8, edit=blow_up))
    with pytest.raises(
        jn.train.NonFiniteError, match=r"non-finite loss or parameters at step 6"
    ) as caught:
        jn.train.fit(
            small_net(),
            stream,
            streaming=jn.train.Streaming(steps_per_call=2),
            **fit_kwargs(epochs=1),
        )
    assert caught.value.step == 6


# ------------------------------------------------------------------------- data on disk


@pytest.fixture(scope="module")
def on_disk(tmp_path_factory, digits):
    raw = jn.data.load("digits", standardize=False)
    x = np.concatenate([raw.x_train, raw.x_test])
    y = np.concatenate([raw.y_train, raw.y_test])
    path = tmp_path_factory.mktemp("disk") / "x.npy"
    np.save(path, x)
    return path, x, y


def test_memmapped_features_split_and_standardize_as_in_memory(on_disk):
    path, x, y = on_disk
    mapped = jn.data.from_arrays(np.load(path, mmap_mode="r"), y, val_fraction=0.1)
    in_memory = jn.data.from_arrays(x, y, val_fraction=0.1)
    assert isinstance(mapped, jn.data.OnDisk) and isinstance(mapped.x, np.memmap)
    assert (mapped.num_train, mapped.num_val, mapped.num_test) == (
        in_memory.num_train,
        in_memory.num_val,
        in_memory.num_test,
    )
    np.testing.assert_allclose(mapped.feature_mean, in_memory.feature_mean, rtol=1e-6)
    np.testing.assert_allclose(mapped.feature_std, in_memory.feature_std, rtol=1e-6)
    # an epoch's batches: the training rows, each once, standardized, the remainder left out
    stream = mapped.stream(BATCH)
    rows = np.concatenate([bx for bx, _ in stream.batches("train", 0)])
    assert len(rows) == (in_memory.num_train // BATCH) * BATCH
    matches = (rows[:, None, :] == in_memory.x_train[None, :, :]).all(-1)
    assert (matches.sum(1) >= 1).all()  # every row streamed is a training row
    assert len(np.unique(matches.argmax(1))) == len(rows)  # no row twice
    second = np.concatenate([bx for bx, _ in stream.batches("train", 1)])
    assert not np.array_equal(rows, second)  # reshuffled each epoch


def test_streaming_statistics_refuse_non_finite_rows(tmp_path):
    x = np.ones((50, 3), np.float32)
    x[17, 1] = np.nan
    np.save(tmp_path / "x.npy", x)
    with pytest.raises(
        ValueError, match=r"non-finite values \(NaN or Inf\); the first is in row 17"
    ):
        jn.data.from_arrays(np.load(tmp_path / "x.npy", mmap_mode="r"), np.arange(50) % 2)


CHILD = textwrap.dedent(
    """
    import os, signal, sys
    import numpy as np, optax, jaxnet as jn
    path, labels, run_dir, mode = sys.argv[1:5]
    data = jn.data.from_arrays(np.load(path, mmap_mode="r"), np.load(labels), val_fraction=0.1)

    def die(row, state):
        if mode == "die" and row["epoch"] == 2:
            os.kill(os.getpid(), signal.SIGKILL)

    jn.train.fit(
        jn.serial(jn.nn.Dense(16), jn.nn.Relu, jn.nn.Dense(10)), data,
        optimizer=optax.adam(1e-2), loss=jn.losses.softmax_cross_entropy, epochs=4,
        batch_size=64, run_dir=run_dir, resume=mode == "resume", progress=False,
        checkpointing=jn.train.Checkpointing(every=1, asynchronous=False), callbacks=[die],
    )
    """
)


def test_kill_9_and_resume_of_memmapped_data_is_bit_for_bit(on_disk, tmp_path):
    path, _, y = on_disk
    np.save(tmp_path / "y.npy", y)

    def child(run_dir, mode):
        args = [str(path), str(tmp_path / "y.npy"), str(run_dir), mode]
        return subprocess.run(
            [sys.executable, "-c", CHILD, *args], capture_output=True, text=True, timeout=300
        )

    killed = child(tmp_path / "cut", "die")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    resumed = child(tmp_path / "cut", "resume")
    assert resumed.returncode == 0, resumed.stderr
    data = jn.data.from_arrays(np.load(path, mmap_mode="r"), y, val_fraction=0.1)
    net = small_net()
    whole = jn.train.fit(
        net, data, batch_size=64, run_dir=tmp_path / "whole", **fit_kwargs(epochs=4, metrics=None)
    )
    restored = jn.train.load(tmp_path / "cut")
    assert_same_leaves(restored.params, whole.train_state.params)
    assert os.path.exists(tmp_path / "cut" / "model.json")
    model = restored.model
    assert model.predict(np.load(path)[:5]).shape == (5,)


def test_memmapped_data_needs_grain_named_in_the_error(on_disk, monkeypatch):
    path, _, y = on_disk
    data = jn.data.from_arrays(np.load(path, mmap_mode="r"), y)
    monkeypatch.setitem(sys.modules, "grain", None)  # as if the extra were not installed
    with pytest.raises(ImportError, match=r"pip install 'jaxnet-functional\[grain\]'"):
        data.stream(64)


def test_grain_loader_with_worker_processes_trains_like_the_list(digits):
    import grain

    batches = _batches(digits, 6)
    # an endless pipeline read by two worker processes (each start costs them ~5 s, so one
    # running iterator serves both epochs)
    source = grain.MapDataset.source(batches).repeat().to_iter_dataset()
    with_workers = source.mp_prefetch(grain.MultiprocessingOptions(num_workers=2))
    net = small_net()
    a = jn.train.fit(net, jn.data.stream(batches), **fit_kwargs(metrics=None))
    b = jn.train.fit(
        net, jn.data.stream(with_workers, steps_per_epoch=6), **fit_kwargs(metrics=None)
    )
    assert_same_leaves(a.train_state.params, b.train_state.params)
