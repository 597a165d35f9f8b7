"""The training engine: steps, fit, guard, freezing, run folders and exact resume."""

import json
import os
import re
import signal

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxnet as jn
from jaxnet import recipes

IRIS = jn.data.load("iris")
NET = jn.serial(jn.nn.Dense(8), jn.nn.Tanh, jn.nn.Dense(3))
ACCURACY = {"accuracy": jn.metrics.accuracy}


def _fit(**kwargs):
    options = {"optimizer": optax.adam(0.01), "loss": jn.losses.softmax_cross_entropy}
    options |= {"metrics": ACCURACY, "epochs": 3, "batch_size": 16, "progress": False}
    return jn.train.fit(NET, IRIS, **(options | kwargs))


def _assert_trees_equal(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    if isinstance(a, jn.train.TrainState):
        a, b = (s._replace(key=jax.random.key_data(s.key)) for s in (a, b))
    jax.tree.map(np.testing.assert_array_equal, a, b)


def test_train_step_is_pure_and_jittable():
    ts = jn.train.TrainState.create(NET, optax.sgd(0.1), (None, 4), key=jax.random.key(0))
    step = jn.train.make_train_step(NET, jn.losses.softmax_cross_entropy, optax.sgd(0.1))
    batch = (jnp.asarray(IRIS.x_train[:16]), jnp.asarray(IRIS.y_train[:16]))
    eager, eager_metrics = step(ts, batch)
    jitted, jit_metrics = jax.jit(step)(ts, batch)
    assert int(eager.step) == 1
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
        eager.params,
        jitted.params,
    )
    np.testing.assert_allclose(eager_metrics["loss"], jit_metrics["loss"], rtol=1e-6)
    assert int(ts.step) == 0  # the input state is untouched


def test_train_step_scans_and_vmaps_over_seeds():
    step = jn.train.make_train_step(NET, jn.losses.softmax_cross_entropy, optax.sgd(0.1))
    keys = jax.random.split(jax.random.key(0), 3)
    states = jax.vmap(lambda k: jn.train.TrainState.create(NET, optax.sgd(0.1), (None, 4), key=k))(
        keys
    )
    batch = (jnp.asarray(IRIS.x_train[:16]), jnp.asarray(IRIS.y_train[:16]))
    states, metrics = jax.vmap(step, in_axes=(0, None))(states, batch)
    assert metrics["loss"].shape == (3,)
    batches = (
        jnp.asarray(IRIS.x_train[:64]).reshape(4, 16, 4),
        jnp.asarray(IRIS.y_train[:64]).reshape(4, 16),
    )
    ts = jn.train.TrainState.create(NET, optax.sgd(0.1), (None, 4), key=jax.random.key(0))
    ts, losses = jax.lax.scan(
        lambda s, b: (lambda r: (r[0], r[1]["loss"]))(step(s, b)), ts, batches
    )
    assert int(ts.step) == 4 and losses.shape == (4,)


def test_any_optax_transformation_works():
    schedule = optax.warmup_cosine_decay_schedule(0.0, 0.05, 5, 30)
    optimizer = optax.chain(
        optax.clip_by_global_norm(1.0), optax.adamw(schedule, weight_decay=1e-4)
    )
    result = _fit(optimizer=optimizer)
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


@pytest.mark.parametrize("name", recipes.names())
def test_loss_decreases_on_every_recipe(name):
    job = recipes.build(recipes.make_config(name, epochs=4))
    result = job.fit(progress=False)
    losses = [row["train_loss"] for row in result.history]
    assert losses[-1] < losses[0], losses
    assert result.stopped == "completed" and len(result.history) == 4


def test_same_seed_same_params_and_other_seed_differs():
    first, second, other = _fit(seed=3), _fit(seed=3), _fit(seed=4)
    _assert_trees_equal(first.train_state.params, second.train_state.params)
    assert not np.array_equal(
        first.train_state.params["dense_0"]["w"], other.train_state.params["dense_0"]["w"]
    )


def test_resume_is_bit_for_bit(tmp_path, default_optimizations):  # XLA's default compiler
    straight = _fit(epochs=4, run_dir=tmp_path / "straight")
    _fit(epochs=2, run_dir=tmp_path / "resumed")
    resumed = _fit(epochs=4, run_dir=tmp_path / "resumed", resume=True)
    _assert_trees_equal(straight.train_state, resumed.train_state)
    assert [r["train_loss"] for r in resumed.history] == [r["train_loss"] for r in straight.history]
    lines = (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 4


_REFUSED_RESUMES = {
    "plain": (
        {},
        [
            ({"batch_size": 8}, "batch_size=8: it was trained with batch_size=16"),
            ({"seed": 1}, "seed=1: it was trained with seed=0"),
            (
                {"precision": "bfloat16"},
                "precision='bfloat16': it was trained with precision='float32'",
            ),
            (
                {"update": jn.train.Update(accumulate=2)},
                "accumulate=2: it was trained with accumulate=1",
            ),
            ({"update": jn.train.Update(ema=0.9)}, "ema=0.9: it was trained with ema=None"),
        ],
    ),
    "accumulated-ema": (
        {"update": jn.train.Update(accumulate=2, ema=0.9)},
        [
            (
                {"update": jn.train.Update(ema=0.9)},
                "accumulate=1: it was trained with accumulate=2",
            ),
            (
                {"update": jn.train.Update(accumulate=2, ema=0.5)},
                "ema=0.5: it was trained with ema=0.9",
            ),
        ],
    ),
}


@pytest.mark.parametrize("run", list(_REFUSED_RESUMES))
def test_resume_refuses_other_settings_and_keeps_the_run(tmp_path, run):
    first, refused = _REFUSED_RESUMES[run]
    done = _fit(epochs=1, run_dir=tmp_path / "run", **first)
    for then, said in refused:
        message = (
            f"fit: cannot resume {str(tmp_path / 'run')!r} with {said} (config.json); a resume "
            "keeps the run's settings, so pass the same or train into a new run_dir"
        )
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            _fit(epochs=2, run_dir=tmp_path / "run", resume=True, **then)
    again = _fit(epochs=2, run_dir=tmp_path / "run", resume=True, **first)  # nothing was lost
    assert [r["epoch"] for r in again.history] == [1, 2]
    assert again.history[0] == done.history[0]


def test_run_folder_files(tmp_path):
    result = _fit(run_dir=tmp_path / "run", checkpointing=jn.train.Checkpointing(every=1, keep=2))
    files = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert files == ["checkpoints", "config.json", "curves.png", "metrics.jsonl", "model.json"]
    assert (tmp_path / "run" / "curves.png").read_bytes()[:4] == b"\x89PNG"
    checkpoints = jn.train.RunFolder(tmp_path / "run").checkpointer()
    assert checkpoints.steps()[-2:] == [2, 3]
    assert checkpoints.best_step() in checkpoints.steps()
    # iris has no validation split, so fit monitors train_accuracy (higher is better); the
    # best checkpoint is the first epoch with the highest one in the recorded rows
    assert json.loads((tmp_path / "run" / "config.json").read_text())["monitor"] == (
        "train_accuracy"
    )
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    assert [row["epoch"] for row in rows] == [1, 2, 3] and "val_accuracy" not in rows[0]
    best = 1 + int(np.argmax([row["train_accuracy"] for row in rows]))  # first of equals
    assert checkpoints.best_step() == best
    assert checkpoints.steps() == sorted({2, 3, best})  # keep=2, and the best one
    restored = checkpoints.restore(result.train_state)
    _assert_trees_equal(restored, result.train_state)


def test_huge_learning_rate_stops_with_step_and_layer_and_keeps_checkpoint(tmp_path):
    job = recipes.build(recipes.make_config("temperature", epochs=3, lr=0.01, optimizer="sgd"))
    first = job.fit(run_dir=tmp_path / "run", progress=False)
    hot = recipes.build({**job.config, "lr": 1e8, "epochs": 6})
    with pytest.raises(jn.train.NonFiniteError) as caught:
        hot.fit(run_dir=tmp_path / "run", resume=True, progress=False)
    error = caught.value
    assert error.step > first.history[-1]["step"]
    assert error.layer is not None and error.layer.startswith("serial/dense_")
    message = str(error)
    assert f"at step {error.step}" in message and "last good checkpoint kept" in message
    checkpoints = jn.train.RunFolder(tmp_path / "run").checkpointer()
    assert checkpoints.latest_step() == 3
    kept = checkpoints.restore(job.initial_state())
    assert all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in jax.tree.leaves(kept.params))
    _assert_trees_equal(kept.params, first.train_state.params)


def test_nonfinite_output_is_named_by_path():
    net = jn.serial(jn.nn.Dense(4), jn.nn.Activation(jnp.log, name="log"), jn.nn.Dense(3))
    data = jn.data.load("iris")
    with pytest.raises(
        jn.train.NonFiniteError, match=re.escape("first non-finite output: serial/log_0")
    ) as caught:
        jn.train.fit(
            net,
            data,
            optimizer=optax.sgd(0.1),
            loss=jn.losses.softmax_cross_entropy,
            epochs=1,
            batch_size=8,
            progress=False,
        )
    assert caught.value.step == 1 and caught.value.layer == "serial/log_0"


def test_freezing_by_pattern_keeps_other_params():
    ts = jn.train.initial_state(NET, optax.adam(0.01), IRIS)
    result = _fit(trainable="dense_1/*")
    _assert_trees_equal(result.train_state.params["dense_0"], ts.params["dense_0"])
    assert not np.array_equal(result.train_state.params["dense_1"]["w"], ts.params["dense_1"]["w"])
    by_predicate = _fit(trainable=lambda path: path.endswith("/b"))
    _assert_trees_equal(by_predicate.train_state.params["dense_0"]["w"], ts.params["dense_0"]["w"])


def test_fit_traces_its_epoch_once():
    traces = []

    def counting_loss(predictions, labels):
        traces.append(predictions.shape)
        return jn.losses.softmax_cross_entropy(predictions, labels)

    _fit(loss=counting_loss, epochs=4)
    # one trace for the fused epoch, one for evaluation; none per epoch
    assert len(traces) == 2, traces


def test_early_stopping_and_callbacks_stop():
    stopping = jn.train.EarlyStopping(monitor="test_accuracy", patience=1, min_delta=1.0)
    result = _fit(epochs=10, early_stopping=stopping)
    assert result.stopped == "early_stopping" and len(result.history) == 2
    seen = []
    result = _fit(
        epochs=10, callbacks=[lambda row, ts: seen.append(row["epoch"]) or row["epoch"] == 3]
    )
    assert result.stopped == "callback" and seen == [1, 2, 3]


def test_ctrl_c_finishes_the_epoch_and_saves(tmp_path):
    def interrupt(row, ts):
        if row["epoch"] == 2:
            os.kill(os.getpid(), signal.SIGINT)

    # Python's own handler, as in a script (pytest-xdist's workers ignore SIGINT)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        result = _fit(epochs=5, run_dir=tmp_path / "run", callbacks=[interrupt])
        assert result.stopped == "interrupted" and len(result.history) == 2
        assert jn.train.RunFolder(tmp_path / "run").checkpointer().latest_step() == 2
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # given back
    finally:
        signal.signal(signal.SIGINT, previous)


def test_load_rebuilds_a_recipe_run(tmp_path):
    job = recipes.build(recipes.make_config("iris", epochs=2))
    result = job.fit(run_dir=tmp_path / "run", progress=False)
    loaded = jn.train.load(tmp_path / "run")
    _assert_trees_equal(loaded.train_state, result.train_state)
    assert loaded.config["recipe"] == "iris" and len(loaded.history) == 2
    x = jnp.asarray(job.data.x_test)
    np.testing.assert_array_equal(
        loaded.net.apply(loaded.train_state.params, {}, x)[0],
        job.net.apply(result.train_state.params, {}, x)[0],
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"epochs": 0}, ValueError, "fit: epochs must be a positive int, got 0"),
        ({"batch_size": 2.5}, ValueError, "fit: batch_size must be a positive int, got 2.5"),
        (
            {"batch_size": 1000},
            ValueError,
            "fit: batch_size=1000 is larger than the 120 training examples",
        ),
        ({"monitor": "val_acc"}, ValueError, "fit: cannot monitor 'val_acc'; the history has"),
        (
            {"early_stopping": jn.train.EarlyStopping(monitor="acc")},
            ValueError,
            "early_stopping cannot monitor 'acc'",
        ),
        (
            {"trainable": "dense_9/*"},
            ValueError,
            "trainable='dense_9/*' matches no parameter; the paths are: dense_0/b",
        ),
        (
            {"trainable": 3},
            TypeError,
            "trainable must be a glob string, a predicate on paths or None, got int",
        ),
    ],
)
def test_bad_fit_arguments(kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        _fit(**kwargs)


def test_fit_wants_a_dataset():
    with pytest.raises(TypeError, match=re.escape("fit: data must be a jaxnet.data.Dataset")):
        jn.train.fit(
            NET, (IRIS.x_train, IRIS.y_train), optimizer=optax.sgd(0.1), loss=jn.losses.mse
        )


def test_run_folder_is_never_overwritten_and_resume_needs_a_checkpoint(tmp_path):
    _fit(epochs=1, run_dir=tmp_path / "run")
    with pytest.raises(ValueError, match="already holds checkpoints; pass resume=True"):
        _fit(epochs=1, run_dir=tmp_path / "run")
    with pytest.raises(FileNotFoundError, match=r"cannot resume: .* holds no run \(no checkpoint"):
        _fit(epochs=1, run_dir=tmp_path / "empty", resume=True)


def test_load_of_a_hand_built_net_without_its_optimizer(tmp_path):
    result = _fit(epochs=2, run_dir=tmp_path / "run")
    loaded = jn.train.load(tmp_path / "run")
    assert loaded.train_state is None  # optax.adam(0.01) itself: nothing names it
    assert loaded.step == 2 and len(loaded.history) == 2
    _assert_trees_equal(loaded.params, result.train_state.params)
    x = jnp.asarray(IRIS.x_test)
    np.testing.assert_array_equal(
        loaded.net.apply(loaded.params, {}, x)[0], NET.apply(result.train_state.params, {}, x)[0]
    )
    with pytest.raises(FileNotFoundError, match="does not exist"):
        jn.train.load(tmp_path / "missing")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"patience": 0}, "EarlyStopping: patience must be a positive int, got 0"),
        ({"mode": "up"}, "EarlyStopping: mode must be 'min' or 'max', got 'up'"),
        ({"min_delta": -1.0}, "EarlyStopping: min_delta must be >= 0, got -1.0"),
    ],
)
def test_bad_early_stopping(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        jn.train.EarlyStopping(**kwargs)


def test_fit_watches_its_epoch_for_retraces(monkeypatch):
    watched = []
    real = jn.train.fit.__globals__["watch_retraces"]

    def spy(fn, *, name=None):
        watched.append(name)
        return real(fn, name=name)

    monkeypatch.setitem(jn.train.fit.__globals__, "watch_retraces", spy)
    _fit(epochs=2)
    assert watched == ["fit's epoch"]


def test_curves_are_redrawn_during_the_run_titled_with_the_run(tmp_path, monkeypatch):
    from jaxnet import plot
    from jaxnet.runs import recorder

    drawn = []

    def recording(history, path, *, title=""):
        drawn.append((len(history), title))
        original(history, path, title=title)

    original = plot.plot_curves
    monkeypatch.setattr(plot, "plot_curves", recording)
    seen = []

    def look(row, ts):  # synchronous writes: the plot is on disk when callbacks run
        seen.append((tmp_path / "my-run" / "curves.png").read_bytes()[:4])

    sync = jn.train.Checkpointing(asynchronous=False)
    _fit(epochs=3, run_dir=tmp_path / "my-run", callbacks=[look], checkpointing=sync)
    assert seen == [b"\x89PNG"] * 3  # drawn after the first epoch: a crashed run has a plot
    assert drawn[0] == (1, "my-run") and drawn[-1] == (3, "my-run")  # and the last rows
    monkeypatch.setattr(recorder, "PLOT_INTERVAL_S", 0.0)
    drawn.clear()
    _fit(epochs=3, run_dir=tmp_path / "every", checkpointing=sync)
    assert drawn == [(1, "every"), (2, "every"), (3, "every")]  # after every epoch
    job = recipes.build(recipes.make_config("xor", epochs=1))
    job.fit(run_dir=tmp_path / "xor-run", progress=False)
    assert drawn[-1] == (1, "xor")
