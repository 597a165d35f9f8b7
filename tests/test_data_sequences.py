"""Sequence datasets: time-ordered forecasting windows and digit strings."""

import re

import numpy as np
import pytest

from jaxnet import data


def test_forecast_windows_are_the_series_in_time_order():
    ds = data.temperature_forecast(window=7)
    series = data.temperature_series()
    raw = ds.x_train * ds.feature_std + ds.feature_mean  # undo the standardization
    np.testing.assert_allclose(raw[0, :, 0], series[:7], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(raw[5, :, 0], series[5:12], rtol=1e-5, atol=1e-5)
    assert ds.y_train[0, 0] == series[7]
    assert ds.y_test[-1, 0] == series[-1]  # the test part is the end of the series
    assert ds.num_train + ds.num_test == len(series) - 7
    assert ds.x_train.dtype == np.float32 and ds.y_train.shape == (ds.num_train, 1)


def test_persistence_baseline_is_the_last_value_forecast():
    ds = data.temperature_forecast(window=5)
    series = data.temperature_series()
    first_test_day = 5 + ds.num_train
    expected = np.mean((series[first_test_day - 1 : -1] - series[first_test_day:]) ** 2)
    assert data.persistence_mse(ds) == pytest.approx(float(expected), rel=1e-5)


@pytest.mark.parametrize("task", ["reverse", "sort"])
def test_digit_sequences(task):
    ds = data.load(f"{task}_digits", seed=3)
    assert ds.x_train.shape == ds.y_train.shape == (3200, 8) and ds.x_train.dtype == np.int32
    expected = ds.x_train[:, ::-1] if task == "reverse" else np.sort(ds.x_train, axis=1)
    np.testing.assert_array_equal(ds.y_train, expected)
    assert ds.num_classes == 10 and ds.x_train.min() >= 0 and ds.x_train.max() <= 9
    np.testing.assert_array_equal(data.load(f"{task}_digits", seed=3).x_test, ds.x_test)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: data.temperature_forecast(window=0), "window must be an int in [1, 1458], got 0"),
        (
            lambda: data.temperature_forecast(test_fraction=1.0),
            "test_fraction must be in the open interval (0, 1), got 1.0",
        ),
        (
            lambda: data.digit_sequences(task="shuffle"),
            "task must be 'reverse' or 'sort', got 'shuffle'",
        ),
        (lambda: data.digit_sequences(length=1), "length must be an int >= 2, got 1"),
    ],
)
def test_sequence_errors(call, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        call()
