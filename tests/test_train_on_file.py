"""``jaxnet train --data FILE``: a recipe's net on the user's own .npz or .csv file."""

from __future__ import annotations

import json

import numpy as np
import pytest

import jaxnet as jn
from jaxnet import cli

FAST = ["--epochs", "5", "--lr", "0.02", "--width", "8", "--batch-size", "16", "--no-progress"]


def _rows(n=200, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5)) * [1, 10, 100, 1, 1] + [0, 5, 50, 0, 0]  # raw, unscaled units
    return x, (x[:, 0] > 0).astype(int)


def _csv(path, x, y, target="kind"):
    header = ",".join([*(f"f{i}" for i in range(x.shape[1])), target])
    lines = [",".join(f"{v:.6g}" for v in [*row, label]) for row, label in zip(x, y, strict=True)]
    path.write_text("\n".join([header, *lines]) + "\n")
    return path


def _main(args, capsys):
    status = cli.main(args)
    out, err = capsys.readouterr()
    return status, out, err.strip().splitlines()


def test_csv_with_a_target_column_trains_a_model_that_predicts_raw_rows(tmp_path, capsys):
    x, y = _rows()
    data = _csv(tmp_path / "points.csv", x, y)
    status, out, _ = _main(
        ["train", "--data", str(data), "--target", "kind", "--out", str(tmp_path / "run"), *FAST],
        capsys,
    )
    assert status == 0
    assert f"jaxnet train digits-mlp from {data}: Dataset(name='points'" in out
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (config["data"], config["target"], config["dataset"]) == (str(data), "kind", None)
    run = jn.train.load(tmp_path / "run")
    assert run.description["num_classes"] == 2
    accuracy = (run.predict(x) == y).mean()  # raw rows in: the stored standardization applies
    assert accuracy > 0.8


def test_npz_trains_and_resume_reads_the_file_again(tmp_path, capsys):
    x, y = _rows()
    np.savez(tmp_path / "d.npz", x=x, y=y)
    out = str(tmp_path / "run")
    assert _main(["train", "--data", str(tmp_path / "d.npz"), "--out", out, *FAST], capsys)[0] == 0
    status, text, _ = _main(["train", "--resume", out, "--epochs", "6", "--no-progress"], capsys)
    assert status == 0 and "from " + str(tmp_path / "d.npz") in text
    assert [row["epoch"] for row in jn.train.load(out).history] == [1, 2, 3, 4, 5, 6]


def test_float_target_is_regression(tmp_path, capsys):
    x, _ = _rows()
    data = _csv(tmp_path / "r.csv", x, x[:, 0] * 2.5 + 0.1, target="value")
    args = ["train", "--data", str(data), "--target", "value", "--out", str(tmp_path / "run")]
    assert _main([*args, *FAST], capsys)[0] == 0
    run = jn.train.load(tmp_path / "run")
    assert run.description["task"] == "regression" and run.description["loss"] == "mse"


@pytest.mark.parametrize(
    ("make", "flags", "message"),
    [
        (None, ["--data", "{tmp}/none.csv"], "jaxnet: error: {tmp}/none.csv: no such file"),
        (
            "csv",
            ["--data", "{tmp}/p.csv", "--target", "colour"],
            "jaxnet: error: {tmp}/p.csv: no column 'colour'; the columns are f0, f1, f2, f3, f4, kind",
        ),
        (
            "csv",
            ["--data", "{tmp}/p.csv"],
            "jaxnet: error: {tmp}/p.csv: pass --target COLUMN (no single column named y, label or target",
        ),
        (
            "bad",
            ["--data", "{tmp}/p.csv", "--target", "kind"],
            "jaxnet: error: {tmp}/p.csv: line 3, column 2: 'n/a' is not a number",
        ),
        (
            "npz",
            ["--data", "{tmp}/p.npz", "--target", "kind"],
            "jaxnet: error: {tmp}/p.npz: --target is for a CSV file",
        ),
        (
            "xonly",
            ["--data", "{tmp}/p.npz"],
            "jaxnet: error: {tmp}/p.npz: needs arrays named x and y, has x",
        ),
        (
            "npy",
            ["--data", "{tmp}/p.npy"],
            "jaxnet: error: {tmp}/p.npy: expected a .npz file (arrays x and y)",
        ),
        (None, ["--target", "kind"], "jaxnet: error: --target names a column of --data FILE.csv"),
        (
            "csv",
            ["reverse-digits", "--data", "{tmp}/p.csv", "--target", "kind"],
            "jaxnet: error: recipe 'reverse-digits' (transformer) does not fit p's 5 features",
        ),
    ],
)
def test_bad_files_are_one_line_and_exit_2(make, flags, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    x, y = _rows(20)
    if make in ("csv", "bad"):
        _csv(tmp_path / "p.csv", x, y)
    if make == "bad":
        lines = (tmp_path / "p.csv").read_text().splitlines()
        lines[2] = ",".join(["1", "n/a", *lines[2].split(",")[2:]])
        (tmp_path / "p.csv").write_text("\n".join(lines) + "\n")
    if make == "npz":
        np.savez(tmp_path / "p.npz", x=x, y=y)
    if make == "xonly":
        np.savez(tmp_path / "p.npz", x=x)
    if make == "npy":
        np.save(tmp_path / "p.npy", x)
    args = ["train", *(f.format(tmp=tmp_path) for f in flags), "--out", str(tmp_path / "run")]
    status, _, err = _main([*args, "--no-progress"], capsys)
    assert status == 2
    assert len(err) == 1 and err[0].startswith(message.format(tmp=tmp_path)), err
    assert not (tmp_path / "run" / "config.json").exists()


def test_a_changed_data_file_is_refused_on_resume(tmp_path, capsys):
    x, y = _rows()
    np.savez(tmp_path / "d.npz", x=x, y=y)
    out = str(tmp_path / "run")
    assert _main(["train", "--data", str(tmp_path / "d.npz"), "--out", out, *FAST], capsys)[0] == 0
    status, _, err = _main(["train", "--resume", out, "--data", "other.npz"], capsys)
    assert status == 2 and err == [
        "jaxnet: error: --resume keeps the run's config; cannot change --data"
    ]


def _trained_on_csv(tmp_path, capsys):
    x, y = _rows()
    data = _csv(tmp_path / "points.csv", x, y)
    out = str(tmp_path / "run")
    args = ["train", "--data", str(data), "--target", "kind", "--out", out, *FAST]
    assert _main(args, capsys)[0] == 0
    return data, out


def test_evaluate_reloads_the_test_split_of_the_runs_file(tmp_path, capsys):
    data, out = _trained_on_csv(tmp_path, capsys)
    model = json.loads((tmp_path / "run" / "model.json").read_text())
    assert model["data"]["file"] == str(data) and len(model["data"]["sha256"]) == 64
    status, text, _ = _main(["evaluate", out], capsys)
    last = jn.train.load(out).history[-1]  # the latest checkpoint is the last epoch's
    assert status == 0
    assert text.strip() == (
        f"{out} (latest, epoch 5): test_accuracy {last['test_accuracy']:.4f}, "
        f"test_loss {last['test_loss']:.4f}"
    )


def test_a_changed_data_file_is_named_by_evaluate_and_by_resume(tmp_path, capsys):
    data, out = _trained_on_csv(tmp_path, capsys)
    data.write_text(data.read_text() + "0,0,0,0,0,1\n")  # one row more
    changed = (
        f"jaxnet: error: {data}: changed since the run was trained (its SHA-256 differs from "
        f"the one in {tmp_path / 'run' / 'model.json'}), so its splits are not the run's"
    )
    assert _main(["evaluate", out], capsys)[::2] == (2, [changed])
    status, _, err = _main(["train", "--resume", out, "--epochs", "6", "--no-progress"], capsys)
    assert (status, err) == (2, [changed])
    data.unlink()
    status, _, err = _main(["evaluate", out], capsys)
    assert status == 2 and err[0].startswith(f"jaxnet: error: {data}: no such file")


def test_fit_refuses_to_resume_on_a_changed_file(tmp_path):
    x, y = _rows()
    data = _csv(tmp_path / "points.csv", x, y)
    net = jn.serial(jn.nn.Dense(4), jn.nn.Relu, jn.nn.Dense(2))
    kw = dict(
        optimizer=jn.train.optimizer("adam", learning_rate=0.01),
        loss=jn.losses.softmax_cross_entropy,
        batch_size=16,
        run_dir=tmp_path / "run",
        progress=False,
    )
    jn.train.fit(net, jn.data.from_file(data, target="kind"), epochs=1, **kw)
    data.write_text(data.read_text() + "0,0,0,0,0,1\n")
    with pytest.raises(ValueError, match=r"points\.csv: changed since the run was trained"):
        jn.train.fit(net, jn.data.from_file(data, target="kind"), epochs=2, resume=True, **kw)
    saved = json.loads((tmp_path / "run" / "model.json").read_text())["data"]["sha256"]
    assert saved != jn.data.from_file(data, target="kind").origin["sha256"]  # not overwritten
