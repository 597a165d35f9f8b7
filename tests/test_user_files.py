"""A user's own CSV is understood, not guessed (issue 25, items 1 and 2).

The task of a file's target is decided openly and said on the first line of ``jaxnet train``;
text labels are classes whose names come back from ``predict``; ``predict`` reads a CSV's
columns by name, so reordered columns or the training file itself give the same predictions.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import jaxnet as jn
from jaxnet import cli
from jaxnet.data.user_file import MAX_INFERRED_CLASSES, decide_task

FEATURES = ("mass", "width", "height", "score")
NAMES = ("apple", "lemon", "orange")


def _write(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    path.write_text(",".join(header) + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return path


def _fruit(n: int = 150, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three well-separated classes of four features: a net learns them in a few epochs."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    x = rng.normal(size=(n, 4)) + 3.0 * np.eye(3, 4)[labels]
    return np.round(x, 4), labels


def _main(args: list[object], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize(
    ("y", "task"),
    [
        (np.array([0, 1, 1, 0]), "classification"),
        (np.arange(MAX_INFERRED_CLASSES).repeat(2), "classification"),
        (np.arange(MAX_INFERRED_CLASSES + 1).repeat(2), "regression"),  # too many values
        (np.array([0, 1, 2, 3, 4, 5, 0]), "regression"),  # a value per row: not labels
        (np.array([0.5, 1.0, 0.5, 1.0]), "regression"),  # not whole numbers
    ],
    ids=["two", "at-the-limit", "above-the-limit", "one-per-row", "fractions"],
)
def test_decide_task_by_its_documented_rule(y: np.ndarray, task: str) -> None:
    assert decide_task(y.astype(np.float64)) == task


def test_a_diabetes_shaped_file_trains_as_regression_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """442 rows of integer targets 25..346 (214 distinct): once a 347-class classifier."""
    rng = np.random.default_rng(0)
    x = np.round(rng.normal(size=(442, 3)), 4)
    y = rng.integers(25, 347, 442)
    assert 150 < len(np.unique(y)) < 347
    file = _write(
        tmp_path / "diabetes.csv",
        ["a", "b", "c", "progression"],
        [[*row, t] for row, t in zip(x, y, strict=True)],
    )
    data = jn.data.from_file(file, target="progression")
    assert data.task == "regression" and data.num_classes is None
    status, out, _ = _main(
        [
            "train",
            "--data",
            file,
            "--target",
            "progression",
            "--epochs",
            "1",
            "--no-progress",
            "--out",
            tmp_path / "run",
        ],
        capsys,
    )
    assert status == 0
    assert out.splitlines()[0] == f"{file}: regression on column 'progression'"
    assert json.loads((tmp_path / "run" / "model.json").read_text())["task"] == "regression"


def test_text_labels_are_classes_whose_names_predict_gives_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    x, labels = _fruit()
    file = _write(
        tmp_path / "fruit.csv",
        [*FEATURES, "kind"],
        [[*row, NAMES[k]] for row, k in zip(x, labels, strict=True)],
    )
    data = jn.data.from_file(file, target="kind")
    assert (data.task, data.num_classes, data.target_names) == ("classification", 3, NAMES)
    assert data.feature_names == FEATURES
    run = tmp_path / "run"
    status, out, _ = _main(
        [
            "train",
            "--data",
            file,
            "--target",
            "kind",
            "--epochs",
            "20",
            "--no-progress",
            "--out",
            run,
        ],
        capsys,
    )
    assert status == 0
    assert out.splitlines()[0] == (
        f"{file}: classification: 3 classes from column 'kind' (apple, lemon, orange)"
    )
    status, out, _ = _main(["predict", run, file], capsys)  # the training file, target and all
    lines = out.splitlines()
    assert status == 0 and lines[0] == "label" and len(lines) == 1 + len(x)
    predicted = np.array([NAMES.index(name) for name in lines[1:]])
    assert np.mean(predicted == labels) > 0.9  # names, in the file's own words, and right


def test_a_regression_task_refuses_a_text_target(tmp_path: Path) -> None:
    x, labels = _fruit(20)
    file = _write(
        tmp_path / "fruit.csv",
        [*FEATURES, "kind"],
        [[*row, NAMES[k]] for row, k in zip(x, labels, strict=True)],
    )
    with pytest.raises(
        ValueError, match=r"column 'kind' holds text such as '(apple|lemon|orange)'"
    ):
        jn.data.from_file(file, target="kind", task="regression")


@pytest.fixture(scope="module")
def numbered_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, np.ndarray]:
    """A run trained on a CSV whose target column is named 'class' (not y/label/target)."""
    folder = tmp_path_factory.mktemp("by_name")
    x, labels = _fruit()
    file = _write(
        folder / "fruit.csv",
        [*FEATURES, "class"],
        [[*row, k] for row, k in zip(x, labels, strict=True)],
    )
    run = folder / "run"
    assert (
        cli.main(
            [
                "train",
                "--data",
                str(file),
                "--target",
                "class",
                "--epochs",
                "5",
                "--no-progress",
                "--out",
                str(run),
            ]
        )
        == 0
    )
    return run, file, x


def _proba(run: Path, file: Path, capsys: pytest.CaptureFixture[str]) -> np.ndarray:
    status, out, err = _main(["predict", run, file, "--proba"], capsys)
    assert (status, err) == (0, ""), err
    return np.loadtxt(out.splitlines()[1:], delimiter=",")


def test_predict_reads_columns_by_name(
    numbered_run: tuple[Path, Path, np.ndarray],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run, file, x = numbered_run
    assert json.loads((run / "model.json").read_text())["feature_names"] == list(FEATURES)
    reference = _proba(run, _write(tmp_path / "plain.csv", list(FEATURES), x.tolist()), capsys)
    assert reference.shape == (len(x), 3)
    order = [3, 1, 0, 2]
    reordered = _write(
        tmp_path / "reordered.csv", [FEATURES[i] for i in order], x[:, order].tolist()
    )
    np.testing.assert_array_equal(_proba(run, reordered, capsys), reference)
    np.testing.assert_array_equal(_proba(run, file, capsys), reference)  # 'class' left out
    headless = tmp_path / "headless.csv"
    np.savetxt(headless, x, delimiter=",", fmt="%.4f")  # no header: by position
    np.testing.assert_array_equal(_proba(run, headless, capsys), reference)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (
            ["mass", "width", "height"],
            "no column 'score'; the model was trained on the columns mass, width, height, score",
        ),
        (
            [*FEATURES, "colour"],
            "column 'colour' is not one the model was trained on "
            "(mass, width, height, score); remove it",
        ),
    ],
    ids=["missing", "unknown"],
)
def test_a_missing_or_unknown_column_is_one_error_naming_it(
    numbered_run: tuple[Path, Path, np.ndarray],
    tmp_path: Path,
    header: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run, _, x = numbered_run
    rows = np.concatenate([x, x[:, :1]], axis=1)[:, : len(header)]
    file = _write(tmp_path / "bad.csv", header, rows.tolist())
    status, out, err = _main(["predict", run, file], capsys)
    assert (status, out) == (2, "")
    assert err == f"jaxnet: error: {file}: {message}\n"


@pytest.mark.parametrize(
    ("rows", "where"),
    [
        (["1,2,0", "3,nan,1", "4,5,1"], "line 3, column 2: 'nan'"),
        (["1,2,0", "", "3,4,inf"], "line 4, column 3: 'inf'"),  # a blank line still counts
        (["-inf,2,0", "3,4,1"], "line 2, column 1: '-inf'"),
    ],
    ids=["feature", "target-after-a-blank-line", "first-row"],
)
def test_a_nan_or_inf_in_a_training_file_is_named_by_line_and_column(
    tmp_path: Path, rows: list[str], where: str
) -> None:
    file = tmp_path / "gaps.csv"
    file.write_text("a,b,y\n" + "\n".join(rows) + "\n")
    with pytest.raises(ValueError, match=rf"^{file}: {where} is not a finite number$"):
        jn.data.from_file(file)


def test_from_arrays_feature_names_let_predict_read_columns_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    x, labels = _fruit(90)
    data = jn.data.from_arrays(x, labels, feature_names=FEATURES)
    assert data.feature_names == FEATURES
    run = tmp_path / "run"
    jn.train.fit(
        jn.serial(jn.nn.Dense(8), jn.nn.Relu, jn.nn.Dense(3)),
        data,
        optimizer=jn.train.optimizer("adam", learning_rate=0.01),
        loss=jn.losses.softmax_cross_entropy,
        epochs=1,
        batch_size=16,
        run_dir=run,
        progress=False,
    )
    assert json.loads((run / "model.json").read_text())["feature_names"] == list(FEATURES)
    plain = _write(tmp_path / "plain.csv", list(FEATURES), x.tolist())
    order = [2, 0, 3, 1]
    shuffled = _write(tmp_path / "shuffled.csv", [FEATURES[i] for i in order], x[:, order].tolist())
    np.testing.assert_array_equal(_proba(run, shuffled, capsys), _proba(run, plain, capsys))
    with pytest.raises(ValueError, match=r"^feature_names must be 4 distinct names, one per"):
        jn.data.from_arrays(x, labels, feature_names=("a", "a", "b", "c"))
    with pytest.raises(ValueError, match=r"^feature_names names the columns of a 2-D x"):
        jn.data.from_arrays(x.reshape(90, 2, 2), labels, feature_names=FEATURES)


def test_an_embedded_set_records_no_column_names(tmp_path: Path) -> None:
    """Its names document the data; a user's CSV of iris rows is read by position."""
    data = jn.data.load("iris")
    assert data.feature_names is not None
    from jaxnet.runs.description import _feature_names

    assert _feature_names(data) is None
