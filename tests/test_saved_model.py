"""A trained model leaves the library: model.json, load, load_params, predict on raw inputs."""

import json
import re
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxnet as jn

RNG = np.random.default_rng(0)
X_RAW = RNG.normal([3.0, -20.0, 100.0], [5.0, 0.5, 30.0], (300, 3))  # far from standardized
TRUE_W = np.array([0.4, -2.0, 0.02])
REGRESSION = jn.data.from_arrays(X_RAW, X_RAW @ TRUE_W + 1.0, name="linear")
NET = jn.serial(jn.nn.Dense(16), jn.nn.Tanh, jn.nn.Dense(1))


def _fit(net, data, run_dir, *, loss=jn.losses.mse, optimizer=None, epochs=3, **kwargs):
    return jn.train.fit(
        net,
        data,
        optimizer=optimizer or optax.adam(0.02),
        loss=loss,
        epochs=epochs,
        batch_size=32,
        run_dir=run_dir,
        progress=False,
        **kwargs,
    )


@pytest.fixture(scope="module")
def regression_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "regression"
    result = _fit(NET, REGRESSION, run_dir, epochs=4)
    return run_dir, result


def test_model_json_holds_the_net_preprocessing_and_outputs(regression_run):
    run_dir, _ = regression_run
    description = json.loads((run_dir / "model.json").read_text())
    assert description["format"] == "jaxnet.run-model/1"
    assert description["net"] == jn.to_config(NET)
    assert description["task"] == "regression" and description["outputs"] == "values"
    assert description["loss"] == "mse" and description["metrics"] == {}
    assert description["optimizer"]["name"] is None  # optax.adam itself: nothing names it
    standardize = description["preprocessing"]["standardize"]
    np.testing.assert_array_equal(np.float32(standardize["mean"]), REGRESSION.feature_mean)
    np.testing.assert_array_equal(np.float32(standardize["std"]), REGRESSION.feature_std)


def test_predictions_on_raw_inputs_equal_the_bare_net_on_standardized_ones(regression_run):
    run_dir, result = regression_run
    run = jn.train.load(run_dir)
    raw = X_RAW[:37]
    params, state = result.train_state.params, result.train_state.state
    bare = NET.apply(params, state, jnp.asarray(REGRESSION.transform(raw)))[0]
    np.testing.assert_allclose(run.predict(raw), bare, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(run.predict(raw, batch_size=5), run.predict(raw), rtol=1e-6)
    assert isinstance(run.predict(raw), np.ndarray) and run.predict(raw).shape == (37, 1)
    assert run.predict(raw[:0]).shape == (0, 1)


def test_load_params_reads_params_whatever_the_optimizer(regression_run):
    run_dir, result = regression_run
    params, state = jn.train.load_params(run_dir)
    jax.tree.map(np.testing.assert_array_equal, params, result.train_state.params)
    assert state == {}
    assert jn.train.load(run_dir).train_state is None


def test_a_named_optimizer_restores_the_whole_train_state(tmp_path):
    adam = jn.train.optimizer("adam", learning_rate=0.02)
    result = _fit(NET, REGRESSION, tmp_path / "run", optimizer=adam, trainable="dense_1/*")
    run = jn.train.load(tmp_path / "run")
    description = json.loads((tmp_path / "run" / "model.json").read_text())
    assert description["optimizer"] == {
        "name": "adam",
        "hyperparameters": {"learning_rate": 0.02},
    }
    assert description["trainable"] == "dense_1/*"
    assert run.train_state is not None
    expected = result.train_state._replace(key=jax.random.key_data(result.train_state.key))
    got = run.train_state._replace(key=jax.random.key_data(run.train_state.key))
    jax.tree.map(np.testing.assert_array_equal, got, expected)


def test_classification_labels_probabilities_and_evaluation_mode(tmp_path):
    iris = jn.data.load("iris")
    net = jn.serial(jn.nn.Dense(8), jn.nn.BatchNorm(), jn.nn.Dropout(0.5), jn.nn.Dense(3))
    loss = jn.losses.softmax_cross_entropy
    result = _fit(net, iris, tmp_path / "run", loss=loss, metrics={"acc": jn.metrics.accuracy})
    run = jn.train.load(tmp_path / "run")
    assert run.description["metrics"] == {"acc": "accuracy"}
    assert run.model.class_names == iris.target_names
    assert sorted(run.state) == ["batch_norm_0"]
    raw = iris.x_test * iris.feature_std + iris.feature_mean
    ts = result.train_state  # no dropout, BatchNorm's running statistics:
    logits = net.apply(ts.params, ts.state, jnp.asarray(iris.x_test), train=False)[0]
    np.testing.assert_allclose(run.predict_outputs(raw), logits, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(run.predict(raw), np.argmax(run.predict_outputs(raw), axis=-1))
    proba = run.predict_proba(raw)
    np.testing.assert_allclose(proba, jax.nn.softmax(logits), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert run.predict(raw).dtype == np.int32


def test_token_ids_are_not_standardized(tmp_path):
    data = jn.data.load("reverse_digits")
    net = jn.serial(jn.nn.Embedding(10, 8), jn.nn.Dense(10))
    _fit(net, data, tmp_path / "run", loss=jn.losses.softmax_cross_entropy, epochs=1)
    run = jn.train.load(tmp_path / "run")
    assert run.model.preprocessing.dtype == "int32" and run.model.preprocessing.mean is None
    assert run.predict(data.x_test[:4]).shape == (4, 8)
    np.testing.assert_array_equal(
        run.predict(data.x_test[:4].astype(np.float64)), run.predict(data.x_test[:4])
    )
    with pytest.raises(ValueError, match=re.escape("x: the net takes integer ids (int32), got")):
        run.predict(data.x_test[:4] + 0.5)


@pytest.mark.parametrize(
    ("x", "error", "message"),
    [
        (np.ones((4, 2)), ValueError, "x: expected inputs of shape (n, 3), got (4, 2)"),
        (np.ones(3), ValueError, "got (3,) (one example? add a batch axis: x[None])"),
        (np.ones((2, 3, 1)), ValueError, "x: expected inputs of shape (n, 3), got (2, 3, 1)"),
        (np.array([["a", "b", "c"]]), TypeError, "x: expected real numbers, got dtype <U1"),
        (np.array([[1.0, np.nan, 2.0]]), ValueError, "x: holds NaN or Inf (first in row 0)"),
    ],
)
def test_bad_inputs_to_predict(regression_run, x, error, message):
    run = jn.train.load(regression_run[0])
    with pytest.raises(error, match=re.escape(message)):
        run.predict(x)


def test_bad_batch_size_and_probabilities_of_a_regression(regression_run):
    run = jn.train.load(regression_run[0])
    with pytest.raises(ValueError, match=re.escape("predict: batch_size must be a positive int")):
        run.predict(X_RAW[:2], batch_size=0)
    with pytest.raises(ValueError, match="predict_proba: this model outputs values, not logits"):
        run.predict_proba(X_RAW[:2])


def test_a_hand_written_layer_trains_and_load_says_why_it_cannot_rebuild(tmp_path):
    scale = jn.Layer(lambda k, s: (tuple(s), {}, {}), lambda p, s, x, **_: (x * 0.5, s), "half")
    net = jn.serial(jn.nn.Dense(4), scale, jn.nn.Dense(1))
    result = _fit(net, REGRESSION, tmp_path / "run", epochs=1)
    description = json.loads((tmp_path / "run" / "model.json").read_text())
    assert description["net"] is None
    assert "serial/half_0 is a layer built by hand" in description["net_error"]
    with pytest.raises(
        jn.train.RunFolderError, match=re.escape("model.json: the net cannot be rebuilt")
    ):
        jn.train.load(tmp_path / "run")
    params, _ = jn.train.load_params(tmp_path / "run")
    jax.tree.map(np.testing.assert_array_equal, params, result.train_state.params)


def test_damaged_or_missing_model_json(regression_run, tmp_path):
    run_dir, _ = regression_run
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("config.json", "model.json"):
        (copy / name).write_bytes((run_dir / name).read_bytes())
    (copy / "model.json").write_text((run_dir / "model.json").read_text()[:40])
    with pytest.raises(jn.train.RunFolderError, match=r"model\.json: line \d+ is not valid JSON"):
        jn.train.load(copy)
    (copy / "model.json").unlink()
    with pytest.raises(FileNotFoundError, match=re.escape("has no model.json")):
        jn.train.load(copy)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        jn.train.load_params(tmp_path / "missing")
    with pytest.raises(ValueError, match="load: which must be 'latest' or 'best'"):
        jn.train.load(run_dir, which="newest")


def test_a_fresh_process_rebuilds_the_net_and_predicts(regression_run, tmp_path):
    run_dir, _ = regression_run
    np.save(tmp_path / "raw.npy", X_RAW[:9])
    script = textwrap.dedent(
        f"""
        import numpy as np, jaxnet as jn
        run = jn.train.load({str(run_dir)!r})
        np.save({str(tmp_path / "out.npy")!r}, run.predict(np.load({str(tmp_path / "raw.npy")!r})))
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    np.testing.assert_array_equal(
        np.load(tmp_path / "out.npy"), jn.train.load(run_dir).predict(X_RAW[:9])
    )


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: jn.train.optimizer("adamm"), "unknown optimizer 'adamm'; did you mean 'adam'?"),
        (
            lambda: jn.train.optimizer("adam", learning_rate=optax.constant_schedule(0.1)),
            "optimizer 'adam': learning_rate=",
        ),
        (
            lambda: jn.train.optimizer("sgd", learning_rate=float("inf")),
            "optimizer 'sgd': learning_rate must be finite, got inf",
        ),
    ],
)
def test_optimizer_errors(call, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dtype": "float64"}, "Preprocessing: dtype must be one of ('float32', 'int32')"),
        ({"mean": np.zeros(3)}, "Preprocessing: give both mean and std, or neither"),
        ({"mean": np.zeros(2), "std": np.ones(2)}, "Preprocessing: mean must have shape (3,)"),
        (
            {"mean": np.zeros(3), "std": np.zeros(3)},
            "Preprocessing: every std must be finite and > 0",
        ),
        ({"feature_shape": (3, 0)}, "Preprocessing: feature_shape must be positive ints"),
    ],
)
def test_preprocessing_is_checked(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        jn.data.Preprocessing(**{"feature_shape": (3,), **kwargs})


def test_preprocessing_reads_lists_and_refuses_what_float32_cannot_hold():
    p = jn.data.Preprocessing([3], mean=[1.0, 2.0, 3.0], std=[1.0, 1.0, 2.0])
    assert p.feature_shape == (3,) and p.mean.dtype == np.float32
    np.testing.assert_array_equal(p(np.array([[2.0, 2.0, 5.0]])), [[1.0, 0.0, 1.0]])
    assert jn.data.Preprocessing.from_json(p.to_json()).std.tolist() == [1.0, 1.0, 2.0]
    with pytest.raises(
        ValueError, match=re.escape("x: a value beyond float32's range (first in row 1)")
    ):
        p.check(np.array([[0.0, 0.0, 0.0], [1e39, 0.0, 0.0]]))
    with pytest.raises(ValueError, match=re.escape("preprocessing: malformed entry (KeyError")):
        jn.data.Preprocessing.from_json({"dtype": "float32"})
    ids = jn.data.Preprocessing((2,), "int32")
    with pytest.raises(ValueError, match=re.escape("x: ids outside the int32 range")):
        ids.check(np.array([[0, 2**40]]))


def test_model_checks_its_outputs_kind_and_the_nets_output():
    net = jn.nn.Dense(2)
    _, params, state = net.init(jax.random.key(0), (None, 3))
    with pytest.raises(ValueError, match=re.escape("Model: outputs must be one of ('logits',")):
        jn.train.Model(net, params, state, jn.data.Preprocessing((3,)), "probabilities")
    pair = jn.Layer(lambda k, s: ((tuple(s), tuple(s)), {}, {}), lambda p, s, x, **_: ((x, x), s))
    model = jn.train.Model(pair, {}, {}, jn.data.Preprocessing((3,)))
    with pytest.raises(
        ValueError, match=re.escape("predict: the net returns tuple, not one array")
    ):
        model.predict(np.ones((2, 3)))


def test_any_number_of_rows_compiles_a_few_programs(regression_run):
    model = jn.train.load(regression_run[0]).model
    for n in range(1, 10):
        assert model.predict(X_RAW[:n], batch_size=16).shape == (n, 1)
    assert model._compiled._cache_size() == 5  # 1, 2, 4, 8 and 16 rows


def _edited_copy(run_dir, tmp_path, **changes):
    copy = tmp_path / "edited"
    copy.mkdir()
    (copy / "config.json").write_bytes((run_dir / "config.json").read_bytes())
    description = json.loads((run_dir / "model.json").read_text())
    for key, value in changes.items():
        if value is ...:
            del description[key]
        else:
            description[key] = value
    (copy / "model.json").write_text(json.dumps(description))
    return copy


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"preprocessing": ...}, "model.json: preprocessing must be an object, got None"),
        ({"outputs": "probs"}, "model.json: outputs must be one of ('logits', 'binary_logits',"),
        ({"optimizer": None}, "model.json: optimizer must be an object, got None"),
        ({"loss": "nope"}, "model.json: loss must be the name of a function of jn.losses or null"),
        (
            {"metrics": {"acc": "nope"}},
            "model.json: metrics: 'acc' names no function of jn.metrics",
        ),
        ({"target_names": 5}, "model.json: target_names must be a list of strings or null, got 5"),
        ({"data": {"name": "iris", "bogus": 1}}, "model.json: data must be null or an object"),
        ({"trainable": 3}, "model.json: trainable must be a glob, null or false, got 3"),
        ({"format": "jaxnet.run-model/0"}, "model.json: format must be 'jaxnet.run-model/1'"),
        ({"optimizer": {"name": "adamx"}}, "model.json: optimizer: unknown optimizer 'adamx'"),
        ({"net": {"format": "jaxnet.model/1"}}, "model.json: config: has no 'net' entry"),
    ],
)
def test_an_edited_model_json_is_one_error_naming_it(regression_run, tmp_path, changes, message):
    copy = _edited_copy(regression_run[0], tmp_path, **changes)
    (copy / "checkpoints").symlink_to(regression_run[0] / "checkpoints")
    with pytest.raises(jn.train.RunFolderError, match=re.escape(message)):
        jn.train.load(copy)


def test_a_run_without_checkpoints_or_from_an_older_recipe_run(regression_run, tmp_path):
    copy = _edited_copy(regression_run[0], tmp_path)
    with pytest.raises(FileNotFoundError, match=re.escape("has no checkpoint")):
        jn.train.load(copy)
    (copy / "model.json").unlink()
    (copy / "config.json").write_text(json.dumps({"recipe": "iris"}))
    with pytest.raises(
        FileNotFoundError, match=re.escape("has no model.json (a recipe run written")
    ):
        jn.train.load(copy)


def test_the_best_checkpoint_is_ranked_as_fit_ranked_it(regression_run):
    run_dir, result = regression_run
    kept = jn.train.RunFolder(run_dir).checkpointer().steps()
    losses = {row["epoch"]: row["test_loss"] for row in result.history if row["epoch"] in kept}
    assert len(set(losses.values())) > 1  # a lowest and a highest to tell apart
    assert jn.train.load(run_dir, which="best").step == min(losses, key=losses.get)
