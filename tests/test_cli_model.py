"""``jaxnet evaluate``, ``predict`` and ``export`` on run folders, in-process."""

import json
import re

import numpy as np
import optax
import pytest

import jaxnet as jn
from jaxnet import cli


def _main(args, capsys):
    """``cli.main(args)``: (exit status, stdout, stderr lines)."""
    status = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return status, out, err.splitlines()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """``jaxnet train iris`` for 2 epochs, and the iris test split as raw inputs."""
    run = tmp_path_factory.mktemp("cli_model") / "run"
    assert cli.main(["train", "iris", "--epochs", "2", "--out", str(run), "--no-progress"]) == 0
    data = jn.data.load("iris")
    raw = data.x_test * data.feature_std + data.feature_mean
    return run, data, raw


def test_evaluate_prints_the_last_epochs_test_metrics(trained, capsys):
    run, *_ = trained
    last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    status, out, err = _main(["evaluate", run], capsys)
    assert (status, err) == (0, [])
    assert out == (
        f"{run} (latest, epoch 2): test_accuracy {last['test_accuracy']:.4f}, "
        f"test_loss {last['test_loss']:.4f}\n"
    )


def test_evaluate_on_raw_labelled_data(trained, capsys, tmp_path):
    run, data, raw = trained
    np.savez(tmp_path / "test.npz", x=raw, y=data.y_test)
    status, out, _ = _main(["evaluate", run, "--data", tmp_path / "test.npz"], capsys)
    assert status == 0
    assert out == _main(["evaluate", run], capsys)[1]


def test_predict_writes_labels_and_probabilities(trained, capsys, tmp_path):
    run, data, raw = trained
    np.save(tmp_path / "raw.npy", raw)
    loaded = jn.train.load(run)
    status, out, _ = _main(["predict", run, tmp_path / "raw.npy"], capsys)
    lines = out.splitlines()
    assert status == 0 and lines[0] == "label"
    assert [int(v) for v in lines[1:]] == loaded.predict(raw).tolist()
    status, out, _ = _main(["predict", run, tmp_path / "raw.npy", "--proba"], capsys)
    lines = out.splitlines()
    assert lines[0] == ",".join(f"p_{name}" for name in data.target_names)
    proba = np.array([[float(v) for v in line.split(",")] for line in lines[1:]])
    np.testing.assert_allclose(proba, loaded.predict_proba(raw), rtol=1e-7)
    assert (
        _main(["predict", run, tmp_path / "raw.npy", "--output", tmp_path / "p.npy"], capsys)[0]
        == 0
    )
    np.testing.assert_array_equal(np.load(tmp_path / "p.npy"), loaded.predict(raw))


def test_predict_reads_csv_with_a_header(trained, capsys, tmp_path):
    run, _, raw = trained
    header = "sepal length,sepal width,petal length,petal width,label"  # the label is left out
    table = np.c_[raw, np.zeros(len(raw))]
    np.savetxt(tmp_path / "raw.csv", table, delimiter=",", header=header, comments="", fmt="%.17g")
    status, _, _ = _main(
        ["predict", run, tmp_path / "raw.csv", "--output", tmp_path / "p.csv"], capsys
    )
    assert status == 0
    lines = (tmp_path / "p.csv").read_text().splitlines()
    assert [int(v) for v in lines[1:]] == jn.train.load(run).predict(raw).tolist()


def test_export_writes_the_three_files(trained, capsys, tmp_path):
    run, *_ = trained
    status, out, _ = _main(
        ["export", run, "--out", tmp_path / "x", "--platforms", "cpu,cuda"], capsys
    )
    assert status == 0
    assert out.splitlines() == [
        f"exported {run} for cpu, cuda to {tmp_path / 'x'}/",
        "  forward.jax",
        "  params.safetensors",
        "  signature.json",
    ]
    assert json.loads((tmp_path / "x" / "signature.json").read_text())["platforms"] == [
        "cpu",
        "cuda",
    ]


def test_a_hand_built_run_on_users_arrays_needs_data_to_evaluate(capsys, tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(10.0, 3.0, (80, 2))
    y = (x[:, 0] > 10).astype(np.int32)
    net = jn.serial(jn.nn.Dense(4), jn.nn.Relu, jn.nn.Dense(2))
    jn.train.fit(
        net,
        jn.data.from_arrays(x, y),
        optimizer=optax.sgd(0.1),
        loss=jn.losses.softmax_cross_entropy,
        epochs=1,
        batch_size=16,
        run_dir=tmp_path / "run",
        progress=False,
    )
    status, _, err = _main(["evaluate", tmp_path / "run"], capsys)
    assert status == 2
    assert err == [
        f"jaxnet: error: {tmp_path / 'run'}: the run's data did not come from jaxnet.data.load "
        "or a data file, so there is no test split to reload; pass --data FILE (.npz with x "
        "and y, or .csv with a y column)"
    ]
    np.savetxt(tmp_path / "d.csv", np.c_[x, y], delimiter=",", header="a,b,y", comments="")
    status, out, _ = _main(["evaluate", tmp_path / "run", "--data", tmp_path / "d.csv"], capsys)
    assert status == 0 and re.fullmatch(r".* \(latest, epoch 1\): test_loss \d\.\d{4}\n", out)


@pytest.mark.parametrize(
    ("make_args", "message"),
    [
        (
            lambda run, tmp: ["predict", run, _save(tmp / "wide.npy", np.ones((2, 5)))],
            "jaxnet: error: {tmp}/wide.npy: expected inputs of shape (n, 4), got (2, 5)",
        ),
        (
            lambda run, tmp: ["predict", run, tmp / "none.npy"],
            "jaxnet: error: {tmp}/none.npy: no such file",
        ),
        (
            lambda run, tmp: ["export", run, "--platforms", "gpu"],
            "jaxnet: error: export: unknown platform 'gpu'; the platforms are cpu, cuda, rocm, tpu",
        ),
        (
            lambda run, tmp: ["evaluate", run, "--data", _save(tmp / "x.npy", np.ones((2, 4)))],
            "jaxnet: error: {tmp}/x.npy: holds no targets (an array or column named y)",
        ),
    ],
)
def test_bad_inputs_are_one_line_and_exit_2(trained, make_args, message, capsys, tmp_path):
    run, *_ = trained
    status, _, err = _main(make_args(run, tmp_path), capsys)
    assert (status, err) == (2, [message.format(tmp=tmp_path)])


def _save(path, array):
    np.save(path, array)
    return path


def test_evaluate_a_recipe_run_written_before_model_json(trained, capsys, tmp_path):
    import shutil

    run, *_ = trained
    old = tmp_path / "old"
    shutil.copytree(run, old)
    (old / "model.json").unlink()
    status, out, _ = _main(["evaluate", old], capsys)
    assert status == 0
    assert out.replace(str(old), "RUN") == _main(["evaluate", run], capsys)[1].replace(
        str(run), "RUN"
    )


def test_evaluate_and_predict_refuse_mismatched_files(trained, capsys, tmp_path):
    run, data, raw = trained
    np.savez(tmp_path / "short.npz", x=raw, y=data.y_test[:-1])
    status, _, err = _main(["evaluate", run, "--data", tmp_path / "short.npz"], capsys)
    assert (status, err) == (
        2,
        [
            f"jaxnet: error: {tmp_path / 'short.npz'}: x has {len(raw)} rows but y has {len(raw) - 1}"
        ],
    )
    np.save(tmp_path / "raw.npy", raw)
    out = tmp_path / "p.npz"
    status, _, err = _main(["predict", run, tmp_path / "raw.npy", "--output", out], capsys)
    assert (status, err) == (
        2,
        [f"jaxnet: error: --output {out}: expected a .csv or .npy file, got '.npz'"],
    )
    assert not out.exists()


def test_evaluate_needs_a_loss_of_jaxnet(capsys, tmp_path):
    data = jn.data.load("xor")
    jn.train.fit(
        jn.serial(jn.nn.Dense(2)),
        data,
        optimizer=optax.sgd(0.1),
        loss=lambda logits, labels: jn.losses.softmax_cross_entropy(logits, labels),
        epochs=1,
        batch_size=16,
        run_dir=tmp_path / "run",
        progress=False,
    )
    status, _, err = _main(["evaluate", tmp_path / "run"], capsys)
    assert (status, err) == (
        2,
        [
            f"jaxnet: error: {tmp_path / 'run' / 'model.json'}: names no loss (the run was "
            "trained with a loss of its own, not one of jn.losses), so evaluate cannot compute one"
        ],
    )
