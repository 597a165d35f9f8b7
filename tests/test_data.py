"""Tests for ``jaxnet.data``: every named dataset, the split, standardization and every error."""

import dataclasses
import doctest
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from jaxnet import data
from jaxnet.data import dataset as dataset_module
from jaxnet.data import embedded, registry, synthetic

# name: (samples, feature_shape, num_classes)
EXPECTED = {
    "breast_cancer": (569, (30,), 2),
    "digits": (1797, (64,), 10),
    "iris": (150, (4,), 3),
    "spirals": (400, (2,), 2),
    "temperature": (1460, (1,), None),
    "xor": (400, (2,), 2),
}


def _same_arrays(a: data.Dataset, b: data.Dataset) -> bool:
    fields = ("x_train", "y_train", "x_test", "y_test", "feature_mean", "feature_std")
    return all(np.array_equal(getattr(a, f), getattr(b, f)) for f in fields)


def test_names_are_sorted_and_complete() -> None:
    sequences = ["reverse_digits", "sort_digits", "temperature_forecast"]
    assert data.names() == tuple(sorted([*EXPECTED, *sequences]))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_shapes_dtypes_and_metadata(name: str) -> None:
    ds = data.load(name)
    samples, feature_shape, num_classes = EXPECTED[name]
    assert ds.name == name
    assert ds.feature_shape == feature_shape
    assert ds.num_features == math.prod(feature_shape)
    assert ds.num_classes == num_classes
    assert ds.num_test == math.ceil(0.2 * samples)
    assert ds.num_train + ds.num_test == samples
    assert ds.x_train.shape == (ds.num_train, *feature_shape)
    assert ds.x_test.shape == (ds.num_test, *feature_shape)
    assert ds.x_train.dtype == ds.x_test.dtype == np.float32
    assert ds.feature_mean.shape == ds.feature_std.shape == feature_shape
    assert np.isfinite(ds.x_train).all() and np.isfinite(ds.x_test).all()
    if num_classes is None:
        assert ds.task == "regression"
        assert ds.y_train.shape == (ds.num_train, 1) and ds.y_test.shape == (ds.num_test, 1)
        assert ds.y_train.dtype == ds.y_test.dtype == np.float32
    else:
        assert ds.task == "classification"
        assert ds.y_train.shape == (ds.num_train,) and ds.y_test.shape == (ds.num_test,)
        assert ds.y_train.dtype == ds.y_test.dtype == np.int32
        labels = np.concatenate([ds.y_train, ds.y_test])
        assert set(np.unique(labels)) == set(range(num_classes))


def test_embedded_metadata() -> None:
    digits = data.load("digits")
    assert digits.image_shape == (8, 8, 1)
    assert digits.target_names == tuple(str(i) for i in range(10))
    assert digits.feature_names is not None and len(digits.feature_names) == 64
    assert data.load("iris").target_names == ("setosa", "versicolor", "virginica")
    assert data.load("breast_cancer").target_names == ("malignant", "benign")
    assert data.load("temperature").target_names == ("temperature_celsius",)


def test_breast_cancer_accepts_the_dashed_alias() -> None:
    ds = data.load("breast-cancer")
    assert ds.name == "breast_cancer"
    assert _same_arrays(ds, data.load("breast_cancer"))


@pytest.mark.parametrize("name", ["iris", "xor", "temperature"])
def test_same_seed_gives_identical_arrays(name: str) -> None:
    assert _same_arrays(data.load(name, seed=3), data.load(name, seed=3))


@pytest.mark.parametrize("name", ["iris", "xor", "temperature"])
def test_different_seed_gives_a_different_split(name: str) -> None:
    assert not np.array_equal(data.load(name, seed=0).x_test, data.load(name, seed=1).x_test)


def test_classification_split_is_stratified() -> None:
    ds = data.load("iris")  # 50 of each class; 30 test samples
    assert np.bincount(ds.y_test).tolist() == [10, 10, 10]
    assert np.bincount(ds.y_train).tolist() == [40, 40, 40]


def test_test_fraction_sets_the_test_size() -> None:
    ds = data.load("iris", test_fraction=0.5)
    assert (ds.num_train, ds.num_test) == (75, 75)


def test_split_partitions_the_samples() -> None:
    x = np.arange(20.0)[:, None]  # (20, 1): each sample is its own index
    ds = data.from_arrays(x, x[:, 0], standardize=False)
    seen = np.concatenate([ds.x_train[:, 0], ds.x_test[:, 0]])
    assert sorted(seen.tolist()) == list(range(20))
    assert np.array_equal(ds.x_train[:, 0], ds.y_train[:, 0])  # pairs stay together


@pytest.mark.parametrize("name", ["breast_cancer", "iris", "xor"])
def test_standardization_is_fitted_on_train_only(name: str) -> None:
    ds = data.load(name)
    np.testing.assert_allclose(ds.x_train.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(ds.x_train.std(axis=0), 1.0, atol=1e-4)
    assert np.abs(ds.x_test.mean(axis=0)).max() > 1e-3  # test statistics were not used
    raw = data.load(name, standardize=False)
    np.testing.assert_allclose(ds.transform(raw.x_test), ds.x_test, rtol=1e-6)
    np.testing.assert_allclose(ds.feature_mean, raw.x_train.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(ds.feature_std, raw.x_train.std(axis=0), rtol=1e-5)


def test_constant_features_are_divided_by_one() -> None:
    ds = data.load("digits")
    constant = ds.feature_std == 1.0
    assert constant.any()  # digits has pixels that are 0 in every training image
    assert np.all(ds.x_train[:, constant] == 0.0)
    std = ds.x_train[:, ~constant].std(axis=0)
    np.testing.assert_allclose(std, 1.0, atol=1e-4)


def test_standardize_false_keeps_raw_features() -> None:
    ds = data.load("digits", standardize=False)
    assert ds.x_train.min() == 0.0 and ds.x_train.max() == 16.0
    assert np.all(ds.feature_mean == 0.0) and np.all(ds.feature_std == 1.0)


def test_regression_targets_keep_their_units() -> None:
    ds = data.load("temperature")
    assert 8.0 < ds.y_train.mean() < 12.0  # °C, not standardized
    assert ds.y_train.min() < -2.0 and ds.y_train.max() > 20.0


def test_temperature_series_is_a_seasonal_curve() -> None:
    series = data.temperature_series(seed=0, years=3)
    assert series.shape == (3 * 365,) and series.dtype == np.float32
    assert np.array_equal(series, data.temperature_series(seed=0, years=3))
    assert not np.array_equal(series, data.temperature_series(seed=1, years=3))
    january, july = series[:31].mean(), series[181:212].mean()
    assert january < 2.0 and july > 18.0


def test_temperature_feature_is_the_day_of_year() -> None:
    source = synthetic.temperature(seed=0)
    assert np.array_equal(source.y[:, 0], data.temperature_series(seed=0))
    assert source.x[0, 0] == source.x[365, 0] == 0.0
    assert source.x.min() >= 0.0 and source.x.max() < 1.0


def _linear_least_squares_accuracy(x: np.ndarray, y: np.ndarray) -> float:
    design = np.concatenate([x, np.ones((len(x), 1))], axis=1)  # (n, features + 1)
    w, *_ = np.linalg.lstsq(design, 2.0 * y - 1.0, rcond=None)  # targets ±1
    return float(np.mean((design @ w > 0) == y))


@pytest.mark.parametrize("seed", range(3))
def test_xor_is_not_linearly_separable(seed: int) -> None:
    ds = data.load("xor", seed=seed)
    x = np.concatenate([ds.x_train, ds.x_test])
    y = np.concatenate([ds.y_train, ds.y_test])
    assert _linear_least_squares_accuracy(x, y) <= 0.75


@pytest.mark.parametrize("seed", range(3))
def test_xor_is_solved_by_one_hidden_layer(seed: int) -> None:
    ds = data.load("xor", seed=seed, standardize=False)
    x = np.concatenate([ds.x_train, ds.x_test])
    y = np.concatenate([ds.y_train, ds.y_test])
    hidden = (x @ np.ones((2, 2)) + np.array([-0.5, -1.5]) > 0).astype(float)  # (n, 2) steps
    predicted = hidden @ np.array([1.0, -1.0]) > 0.5  # "a or b" and not "a and b"
    assert np.all(predicted == y)


def test_spirals_are_point_symmetric() -> None:
    source = synthetic.spirals(seed=0, noise=0.0)
    radius = np.linalg.norm(source.x, axis=1)
    assert radius.min() >= 0.1 and radius.max() <= 1.0
    assert np.bincount(source.y).tolist() == [200, 200]


def test_from_arrays_infers_classification_from_integer_labels() -> None:
    ds = data.from_arrays(np.zeros((10, 3)), np.array([0, 4] * 5))
    assert ds.task == "classification" and ds.num_classes == 5
    assert ds.feature_shape == (3,) and ds.name == "arrays"


def test_from_arrays_infers_regression_from_float_targets() -> None:
    ds = data.from_arrays(np.arange(10.0), np.arange(10.0), name="line")
    assert ds.task == "regression" and ds.num_classes is None and ds.name == "line"
    assert ds.feature_shape == (1,)  # 1-D x: one feature per sample
    assert ds.y_train.shape == (8, 1) and ds.y_train.dtype == np.float32


def test_from_arrays_accepts_integer_valued_float_labels_and_more_classes() -> None:
    ds = data.from_arrays(np.zeros((4, 2)), [0.0, 1.0, 1.0, 0.0], task="classification")
    assert ds.y_train.dtype == np.int32 and ds.num_classes == 2
    ds = data.from_arrays(np.zeros((4, 2)), [0, 1, 1, 0], num_classes=7, test_fraction=0.5)
    assert ds.num_classes == 7


def test_from_arrays_keeps_image_feature_shape() -> None:
    ds = data.from_arrays(np.ones((10, 8, 8, 1)), np.arange(10) % 2)
    assert ds.feature_shape == (8, 8, 1) and ds.num_features == 64
    assert ds.x_train.shape == (8, 8, 8, 1)


def test_arrays_are_read_only_and_dataset_is_frozen() -> None:
    ds = data.load("iris")
    with pytest.raises(ValueError, match="read-only"):
        ds.x_train[0, 0] = 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        ds.name = "other"  # type: ignore[misc]


def test_repr_shows_shapes_not_values() -> None:
    text = repr(data.load("iris"))
    assert text == (
        "Dataset(name='iris', task='classification', num_classes=3, x_train=float32(120, 4), "
        "y_train=int32(120,), x_test=float32(30, 4), y_test=int32(30,))"
    )


def _nan_x() -> data.Dataset:
    x = np.zeros((6, 2))
    x[2, 1] = x[4, 0] = np.nan
    return data.from_arrays(x, np.arange(6) % 2)


def _inf_y() -> data.Dataset:
    y = np.zeros(6)
    y[3] = np.inf
    return data.from_arrays(np.zeros((6, 2)), y)


X6 = np.zeros((6, 2))
Y6 = np.arange(6) % 2

# (id, call, exception, message pattern)
ERRORS: list[tuple[str, Callable[[], Any], type[Exception], str]] = [
    (
        "unknown_name",
        lambda: data.load("digit"),
        ValueError,
        r"unknown dataset name 'digit'; known names: breast_cancer, digits, iris, reverse_digits, "
        r"sort_digits, spirals, temperature, temperature_forecast, xor; did you mean 'digits'\?",
    ),
    ("name_type", lambda: data.load(3), TypeError, r"name must be a str, got 3 of type int"),
    (
        "length_mismatch",
        lambda: data.from_arrays(X6, np.arange(5)),
        ValueError,
        r"same number of samples, got len\(x\)=6 and len\(y\)=5",
    ),
    (
        "nan_features",
        _nan_x,
        ValueError,
        r"x contains 2 non-finite values \(NaN or Inf.*\); the first is in row 2",
    ),
    (
        "inf_targets",
        _inf_y,
        ValueError,
        r"y contains 1 non-finite values \(NaN or Inf.*\); the first is in row 3",
    ),
    (
        "label_too_large",
        lambda: data.from_arrays(X6, [0, 1, 2, 0, 5, 1], num_classes=3),
        ValueError,
        r"labels y must be in \[0, num_classes=3\), got 5 at index 4",
    ),
    (
        "negative_label",
        lambda: data.from_arrays(X6, [0, 1, -1, 0, 1, 1]),
        ValueError,
        r"labels y must be in \[0, num_classes=2\), got -1 at index 2",
    ),
    (
        "non_integer_label",
        lambda: data.from_arrays(X6, [0.0, 1.0, 0.5, 0.0, 1.0, 1.0], task="classification"),
        ValueError,
        r"labels y must be integers, got 0.5 at index 2 \(1 non-integer labels in all\)",
    ),
    (
        "string_labels",
        lambda: data.from_arrays(X6, list("abcabc"), task="classification"),
        TypeError,
        r"labels y must be integers, got dtype <U1",
    ),
    (
        "one_hot_labels",
        lambda: data.from_arrays(X6, np.eye(2, dtype=int)[Y6]),
        ValueError,
        r"labels y must have shape \(n,\), got \(6, 2\); pass integer class indices",
    ),
    (
        "string_targets",
        lambda: data.from_arrays(X6, list("abcabc")),
        TypeError,
        r"y must be a numeric \(integer, bool or float\) array, got dtype <U1",
    ),
    (
        "targets_3d",
        lambda: data.from_arrays(X6, np.zeros((6, 2, 2))),
        ValueError,
        r"targets y must have shape \(n,\) or \(n, n_targets\), got \(6, 2, 2\)",
    ),
    (
        "empty",
        lambda: data.from_arrays(np.zeros((0, 2)), np.zeros(0, int)),
        ValueError,
        r"x is empty: got shape \(0, 2\)",
    ),
    (
        "scalar_x",
        lambda: data.from_arrays(1.0, [1]),
        ValueError,
        r"x must have a leading sample axis, got a scalar",
    ),
    (
        "scalar_y",
        lambda: data.from_arrays(X6, 1),
        ValueError,
        r"y must have a leading sample axis, got a scalar",
    ),
    (
        "string_features",
        lambda: data.from_arrays(np.array(["a"] * 6), Y6),
        TypeError,
        r"x must be a numeric \(integer, bool or float\) array, got dtype <U1",
    ),
    (
        "test_fraction_zero",
        lambda: data.load("iris", test_fraction=0.0),
        ValueError,
        r"test_fraction must be in the open interval \(0, 1\), got 0.0",
    ),
    (
        "test_fraction_one",
        lambda: data.from_arrays(X6, Y6, test_fraction=1),
        ValueError,
        r"test_fraction must be in the open interval \(0, 1\), got 1",
    ),
    (
        "empty_train_part",
        lambda: data.from_arrays(X6[:2], Y6[:2], test_fraction=0.9),
        ValueError,
        r"test_fraction=0.9 with 2 samples gives 0 training and 2 test samples; "
        r"both parts need at least one",
    ),
    (
        "unknown_task",
        lambda: data.from_arrays(X6, Y6, task="clasification"),
        ValueError,
        r"task must be one of 'classification', 'regression', got 'clasification'",
    ),
    (
        "num_classes_for_regression",
        lambda: data.from_arrays(X6, np.zeros(6), num_classes=3),
        ValueError,
        r"num_classes must be None for task='regression', got 3",
    ),
    (
        "num_classes_zero",
        lambda: data.from_arrays(X6, Y6, num_classes=0),
        ValueError,
        r"num_classes must be a positive integer, got 0",
    ),
    (
        "num_classes_float",
        lambda: data.from_arrays(X6, Y6, num_classes=2.0),
        TypeError,
        r"num_classes must be an int, got 2.0 of type float",
    ),
    (
        "transform_shape",
        lambda: data.load("iris").transform(np.zeros((2, 5))),
        ValueError,
        r"transform: expected x of shape \(\.\.\., 4\), got \(2, 5\)",
    ),
    (
        "temperature_years",
        lambda: data.temperature_series(years=0),
        ValueError,
        r"years must be a positive integer, got 0",
    ),
    (
        "temperature_noise",
        lambda: data.temperature_series(noise=-1.0),
        ValueError,
        r"noise must be a non-negative number, got -1.0",
    ),
]


@pytest.mark.parametrize(
    ("call", "exception", "match"),
    [case[1:] for case in ERRORS],
    ids=[case[0] for case in ERRORS],
)
def test_errors_name_the_argument_and_the_values(
    call: Callable[[], Any], exception: type[Exception], match: str
) -> None:
    with pytest.raises(exception, match=match):
        call()


@pytest.mark.parametrize(
    "module", [data, dataset_module, embedded, registry, synthetic], ids=lambda m: m.__name__
)
def test_docstring_examples_run(module: Any) -> None:
    failed, attempted = doctest.testmod(module, verbose=False)
    assert attempted > 0 and failed == 0


@pytest.mark.parametrize("name", [n for n in data.__all__ if callable(getattr(data, n))])
def test_public_names_are_documented(name: str) -> None:
    value = getattr(data, name)
    doc = value.__doc__ or ""
    assert "Example:" in doc
    if isinstance(value, type):  # a class (Dataset, Preprocessing) documents its attributes
        assert "Attributes:" in doc
        return
    if name != "names":  # a function without arguments
        assert "Args:" in doc
    assert "Returns:" in doc


def test_digits_read_without_importing_sklearn_equal_load_digits():
    """The digits come from scikit-learn's own CSV file, without importing scikit-learn (about
    1.8 s of every `jaxnet train`); they equal what `sklearn.datasets.load_digits` returns."""
    import subprocess
    import sys

    from sklearn.datasets import load_digits

    from jaxnet.data import embedded

    source, reference = embedded.digits(), load_digits()
    np.testing.assert_array_equal(source.x, reference.data)
    np.testing.assert_array_equal(source.y, reference.target)
    assert source.feature_names == tuple(reference.feature_names)
    assert source.target_names == tuple(str(name) for name in reference.target_names)
    check = "import sys, jaxnet.data.embedded as e; e.digits(); print('sklearn' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


# ------------------------------------------------------------------------- validation split


def test_val_fraction_splits_off_validation_and_leaves_the_test_split_unchanged() -> None:
    plain = data.load("digits", standardize=False)
    split = data.load("digits", standardize=False, val_fraction=0.1)
    assert (split.num_train, split.num_val, split.num_test) == (1257, 180, 360)  # 1797 in all
    np.testing.assert_array_equal(split.x_test, plain.x_test)  # the same test rows
    together = np.concatenate([split.x_train, split.x_val])
    assert sorted(map(bytes, together)) == sorted(map(bytes, plain.x_train))  # train = train + val
    shares = np.bincount(split.y_val, minlength=10) / split.num_val
    overall = np.bincount(plain.y_train, minlength=10) / plain.num_train
    assert np.abs(shares - overall).max() < 2 / split.num_val  # stratified
    assert split.origin["val_fraction"] == 0.1 and "val_fraction" not in plain.origin


def test_standardization_is_fitted_on_the_training_part_only() -> None:
    raw = data.load("iris", standardize=False, val_fraction=0.2)
    split = data.load("iris", val_fraction=0.2)
    np.testing.assert_allclose(split.feature_mean, raw.x_train.mean(0), rtol=1e-6)
    np.testing.assert_allclose(
        split.x_val, (raw.x_val - split.feature_mean) / split.feature_std, rtol=1e-6
    )


def test_explicit_validation_arrays_are_standardized_with_the_training_statistics() -> None:
    x = np.arange(40, dtype=np.float64).reshape(20, 2)
    y = np.arange(20) % 2
    ds = data.from_arrays(x, y, validation=(x[:3] + 100, [1, 0, 1]))
    assert ds.num_val == 3 and ds.y_val.dtype == np.int32
    np.testing.assert_allclose(
        ds.x_val, (x[:3] + 100 - ds.feature_mean) / ds.feature_std, rtol=1e-6
    )
    assert "x_val=float32(3, 2)" in repr(ds)
    assert "x_val" not in repr(data.from_arrays(x, y))  # no validation split: not shown


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"val_fraction": 0.8},
            ValueError,
            r"val_fraction must be in \[0, 1 - test_fraction\) = \[0, 0.8\), got 0.8",
        ),
        ({"val_fraction": -0.1}, ValueError, r"val_fraction must be in \[0, 1 - test_fraction\)"),
        (
            {"val_fraction": 0.1, "validation": (np.zeros((2, 2)), [0, 1])},
            ValueError,
            r"give either val_fraction or validation=\(x_val, y_val\), not both",
        ),
        (
            {"validation": np.zeros((2, 2))},
            TypeError,
            r"validation must be a pair \(x_val, y_val\), got ndarray",
        ),
        (
            {"validation": (np.zeros((2, 3)), [0, 1])},
            ValueError,
            r"validation: x_val has samples of shape \(3,\), but x has \(2,\)",
        ),
        (
            {"validation": (np.zeros((2, 2)), [0, 5])},
            ValueError,
            r"labels y must be in \[0, num_classes=2\), got 5 at index 1",
        ),
        (
            {"val_fraction": 0.79},
            ValueError,
            r"test_fraction=0.2 and val_fraction=0.79 with 20 samples gives 0 training",
        ),
    ],
)
def test_validation_errors_name_the_argument(kwargs, error, message) -> None:
    x = np.arange(40, dtype=np.float64).reshape(20, 2)
    with pytest.raises(error, match=message):
        data.from_arrays(x, np.arange(20) % 2, **kwargs)


def test_a_dataset_needs_both_validation_arrays() -> None:
    ds = data.load("iris")
    with pytest.raises(ValueError, match=r"^Dataset: give both x_val and y_val, or neither$"):
        dataclasses.replace(ds, x_val=ds.x_train[:2], y_val=None)


def test_sequence_sets_hold_out_validation_in_time_order() -> None:
    ds = data.load("temperature_forecast", val_fraction=0.1)
    plain = data.load("temperature_forecast")
    assert ds.num_test == plain.num_test and ds.num_val == 144
    # train, then validation, then test, in time order: together the same series of targets
    np.testing.assert_array_equal(
        np.concatenate([ds.y_train, ds.y_val, ds.y_test]),
        np.concatenate([plain.y_train, plain.y_test]),
    )
    sort = data.load("sort_digits", val_fraction=0.1)
    assert (sort.num_train, sort.num_val, sort.num_test) == (2800, 400, 800)
