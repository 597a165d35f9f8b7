"""``jaxnet train --data FILE``: which recipe's net fits which file, and the file's bad values.

The basic flows (a CSV or an .npz trains, regression, resume, the reader's errors) are in
tests/test_train_on_file.py; these are the checks ``recipes.build`` adds on top of
``jn.data.from_file``.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

import jaxnet as jn
from jaxnet import cli, recipes

FAST = ["--epochs", "1", "--width", "4", "--depth", "1", "--batch-size", "16", "--no-progress"]


def _csv(path, x, y, target="kind"):
    header = ",".join([*(f"f{i}" for i in range(x.shape[1])), target])
    lines = [",".join(f"{v:.6g}" for v in [*row, label]) for row, label in zip(x, y, strict=True)]
    path.write_text("\n".join([header, *lines]) + "\n")
    return path


def _rows(n=60, features=3):
    x = np.random.default_rng(0).normal(size=(n, features))
    return x, (x[:, 0] > 0).astype(int)


def _main(args, capsys):
    status = cli.main(args)
    out, err = capsys.readouterr()
    return status, out, err.strip().splitlines()


def _fails(args, message, tmp_path, capsys):
    """The command exits 2 with exactly ``message`` on stderr, and makes no run folder."""
    status, _, err = _main(["train", *args, "--out", str(tmp_path / "run"), *FAST], capsys)
    assert (status, err) == (2, [message.format(tmp=tmp_path)])
    assert not (tmp_path / "run").exists()


def _npz(path, shape):
    x = np.random.default_rng(0).normal(size=shape)
    np.savez(path, x=x, y=(x.reshape(len(x), -1)[:, 0] > 0).astype(int))
    return path


@pytest.mark.parametrize(
    ("recipe", "shape", "message"),
    [
        (
            "digits-mlp",
            (60, 6, 6),
            "recipe 'digits-mlp' (mlp) does not fit d's features of shape (6, 6) per row: an "
            "MLP takes one axis of features, x of shape (n, features); reshape x, or use "
            "digits-cnn for images or temperature-lstm for sequences",
        ),
        (
            "digits-cnn",
            (60, 3),
            "recipe 'digits-cnn' (cnn) does not fit d's 3 features per row; use an MLP recipe "
            "such as digits-mlp (a cnn takes images, x of shape (n, height, width[, channels]))",
        ),
        (
            "temperature-lstm",
            (60, 6, 6, 1),
            "recipe 'temperature-lstm' (recurrent) does not fit d's features of shape "
            "(6, 6, 1) per row: a recurrent net takes sequences, x of shape (n, steps, features)",
        ),
        (
            "reverse-digits",
            (60, 8, 1),
            "recipe 'reverse-digits' (transformer) does not fit d's features of shape (8, 1) "
            "per row: a transformer takes token ids, which a data file does not give",
        ),
    ],
)
def test_a_net_that_does_not_fit_the_features_is_one_line(recipe, shape, message, tmp_path, capsys):
    data = _npz(tmp_path / "d.npz", shape)
    _fails([recipe, "--data", str(data)], "jaxnet: error: " + message, tmp_path, capsys)


@pytest.mark.parametrize("shape", [(60, 6, 6), (60, 6, 6, 1)])
def test_the_cnn_recipe_fits_images_with_or_without_a_channel_axis(shape, tmp_path):
    data = _npz(tmp_path / "images.npz", shape)
    job = recipes.build(recipes.make_config("digits-cnn", width=4, depth=1) | {"data": str(data)})
    assert job.net.init(jax.random.key(0), (2, *shape[1:]))[0] == (2, 2)


def test_the_cnn_recipe_trains_on_images_and_its_model_predicts_raw_ones(tmp_path, capsys):
    data, out = _npz(tmp_path / "images.npz", (60, 6, 6, 1)), tmp_path / "run"
    status, text, _ = _main(
        ["train", "digits-cnn", "--data", str(data), "--out", str(out), *FAST], capsys
    )
    assert status == 0 and f"jaxnet train digits-cnn from {data}: " in text
    assert jn.train.load(out).predict(np.load(data)["x"][:3]).shape == (3,)


def test_whole_numbers_that_are_not_class_labels_are_refused(tmp_path, capsys):
    x, _ = _rows()
    years = 1990 + np.arange(len(x)) % 10  # few distinct whole numbers, but no labels 0, 1, ...
    data = _csv(tmp_path / "houses.csv", x, years, target="built")
    _fails(
        ["--data", str(data), "--target", "built"],
        "jaxnet: error: {tmp}/houses.csv: column 'built' holds whole numbers, read as class "
        f"labels 0 to {int(years.max())}, but only {len(np.unique(years))} of those "
        f"{int(years.max()) + 1} classes occur; number the classes 0, 1, 2, ..., or pass "
        "--task regression for a numeric target",
        tmp_path,
        capsys,
    )


def test_whole_numbers_of_many_values_train_as_regression_and_say_so(tmp_path, capsys):
    x, _ = _rows()
    prices = np.round(1000 + 100 * x[:, 1])  # whole numbers, nearly one value per row
    data = _csv(tmp_path / "houses.csv", x, prices, target="price")
    status, out, _ = _main(
        ["train", "--data", str(data), "--target", "price", "--out", str(tmp_path / "run"), *FAST],
        capsys,
    )
    assert status == 0
    assert out.splitlines()[0] == f"{data}: regression on column 'price'"


def test_task_regression_trains_whole_numbers_as_values(tmp_path, capsys):
    x, _ = _rows()
    prices = np.round(1000 + 100 * x[:, 1])
    data = _csv(tmp_path / "houses.csv", x, prices, target="price")
    out = str(tmp_path / "run")
    args = ["train", "--data", str(data), "--target", "price", "--task", "regression"]
    status, text, _ = _main([*args, "--out", out, *FAST], capsys)
    assert status == 0 and "task='regression'" in text
    run = jn.train.load(out)
    assert (run.description["task"], run.description["loss"]) == ("regression", "mse")
    assert run.description["data"]["task"] == "regression"
    status, text, _ = _main(["evaluate", out], capsys)  # the same split, read as values again
    assert status == 0 and "test_loss" in text and "accuracy" not in text
    status, _, err = _main(["train", "--resume", out, "--task", "classification"], capsys)
    assert (status, err) == (
        2,
        ["jaxnet: error: --resume keeps the run's config; cannot change --task"],
    )


def test_task_needs_data(tmp_path, capsys):
    _fails(
        ["--task", "regression"],
        "jaxnet: error: --task says what the target of --data FILE is; give --data too",
        tmp_path,
        capsys,
    )


def test_labels_counted_from_one_are_still_classes(tmp_path):
    x, y = _rows()
    data = _csv(tmp_path / "p.csv", x, y + 1, target="label")  # 1 and 2: class 0 never occurs
    job = recipes.build(recipes.make_config("digits-mlp") | {"data": str(data)})
    assert (job.data.task, job.data.num_classes) == ("classification", 3)
    assert job.config["data"] == str(data)


@pytest.mark.parametrize(
    ("write", "flags", "message"),
    [
        (
            lambda p: np.savez(p / "d.npz", x=np.zeros((60, 3)), y=np.zeros(10, int)),
            [],
            "{tmp}/d.npz: x and y must have the same number of samples, got len(x)=60 and "
            "len(y)=10",
        ),
        (
            lambda p: np.savez(p / "d.npz", x=np.full((60, 3), "a"), y=np.zeros(60, int)),
            [],
            "{tmp}/d.npz: x must be a numeric (integer, bool or float) array, got dtype <U1",
        ),
        (
            lambda p: _csv(p / "d.csv", np.ones((60, 3)), [-1, 1] * 30, target="y"),
            [],
            "{tmp}/d.csv: classification labels y must be in [0, num_classes=2), got -1 at index 0",
        ),
        (
            lambda p: _csv(
                p / "d.csv", np.vstack([np.ones((59, 3)), [[1, np.inf, 1]]]), [0, 1] * 30
            ),
            ["--target", "kind"],
            "{tmp}/d.csv: line 61, column 2: 'inf' is not a finite number",
        ),
    ],
    ids=["lengths", "strings", "negative-label", "inf"],
)
def test_bad_values_in_the_file_are_one_line_naming_it(write, flags, message, tmp_path, capsys):
    write(tmp_path)
    (data,) = tmp_path.glob("d.*")
    _fails(["--data", str(data), *flags], "jaxnet: error: " + message, tmp_path, capsys)


def test_a_relative_path_is_named_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    np.savez("d.npz", x=np.zeros((60, 3)), y=np.zeros(10, int))
    config = recipes.make_config("digits-mlp") | {"data": "./d.npz"}
    with pytest.raises(ValueError, match=r"^d\.npz: x and y must have the same number"):
        recipes.build(config)
