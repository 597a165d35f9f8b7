"""Sequence datasets: windows of the temperature series to forecast, and digit strings to
reverse or sort (a task for attention).

They are built directly as ``Dataset`` objects rather than through ``from_arrays``: a time
series must be split in time order (a shuffled split would let the model peek at the future),
and token sequences are integer ids with one label per position, which ``from_arrays`` does not
take.
"""

import math

import numpy as np

from .dataset import Dataset
from .synthetic import temperature_series

DIGITS = 10
"""The vocabulary of the digit-sequence tasks: the ids 0-9."""


def _read_only(*arrays: np.ndarray) -> list[np.ndarray]:
    for array in arrays:
        array.setflags(write=False)
    return list(arrays)


def _check_fraction(test_fraction: float, val_fraction: float = 0.0) -> None:
    if not 0 < test_fraction < 1:
        raise ValueError(
            f"test_fraction must be in the open interval (0, 1), got {test_fraction!r}"
        )
    if not 0 <= val_fraction < 1 - test_fraction:
        raise ValueError(
            f"val_fraction must be in [0, 1 - test_fraction) = [0, {1 - test_fraction:g}), "
            f"got {val_fraction!r}"
        )


def _sizes(n: int, test_fraction: float, val_fraction: float) -> tuple[int, int, int]:
    """``(n_train, n_val, n_test)``, rounded up as ``from_arrays`` does; train non-empty."""
    n_test, n_val = math.ceil(n * test_fraction), math.ceil(n * val_fraction)
    if n_test + n_val >= n:
        raise ValueError(
            f"test_fraction={test_fraction} and val_fraction={val_fraction} with {n} samples "
            "leave no training samples"
        )
    return n - n_test - n_val, n_val, n_test


def temperature_forecast(
    seed: int = 0,
    *,
    test_fraction: float = 0.2,
    val_fraction: float = 0.0,
    window: int = 28,
    years: int = 4,
) -> Dataset:
    """Forecast tomorrow's temperature from the last ``window`` days.

    Inputs are windows ``(n, window, 1)`` of :func:`temperature_series`, standardized with the
    mean and std of the training days; targets ``(n, 1)`` are the next day's temperature in °C.
    The split is in time order: the last ``test_fraction`` of the windows is the test part,
    the ``val_fraction`` before it the validation part.
    The naive *persistence* forecast (tomorrow = today) is the baseline a model must beat:
    :func:`persistence_mse`.

    Args:
      seed: seeds the series' noise.
      test_fraction: the share of windows (the latest ones) held out for testing.
      val_fraction: the share of windows (just before the test ones) held out for validation.
      window: the number of past days each input holds.
      years: the length of the series in 365-day years.

    Returns:
      A regression ``Dataset`` with ``feature_shape == (window, 1)``.

    Raises:
      ValueError: if ``window`` is not a positive int or leaves no windows, or ``test_fraction``
        is not in (0, 1).

    Example:
      >>> ds = temperature_forecast(window=14)
      >>> ds.x_train.shape[1:], ds.y_train.shape[1:]
      ((14, 1), (1,))
    """
    _check_fraction(test_fraction, val_fraction)
    series = temperature_series(seed, years=years)
    if isinstance(window, bool) or not isinstance(window, int) or not 0 < window < len(series) - 1:
        raise ValueError(f"window must be an int in [1, {len(series) - 2}], got {window!r}")
    starts = np.arange(len(series) - window)  # window i covers days i .. i + window - 1
    x = series[starts[:, None] + np.arange(window)[None, :]]  # (n, window)
    y = series[starts + window][:, None]  # (n, 1): the day after each window
    n_train, n_val, _ = _sizes(len(x), test_fraction, val_fraction)
    mean = np.float32(series[: n_train + window].mean())
    std = np.float32(series[: n_train + window].std())
    x = ((x - mean) / std)[..., None].astype(np.float32)  # (n, window, 1)
    end = n_train + n_val
    x_train, x_val, x_test, y_train, y_val, y_test = _read_only(
        x[:n_train], x[n_train:end], x[end:], y[:n_train], y[n_train:end], y[end:]
    )
    return Dataset(
        name="temperature_forecast",
        task="regression",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        num_classes=None,
        feature_shape=(window, 1),
        feature_mean=np.full((window, 1), mean, np.float32),
        feature_std=np.full((window, 1), std, np.float32),
        target_names=("temperature_tomorrow_celsius",),
        x_val=x_val,
        y_val=y_val,
    )


def persistence_mse(dataset: Dataset) -> float:
    """The test MSE of forecasting each next value as the window's last value (in °C).

    Args:
      dataset: a :func:`temperature_forecast` dataset.

    Returns:
      The mean squared error of the persistence forecast on the test part.

    Example:
      >>> round(persistence_mse(temperature_forecast()), 1) > 4.0
      True
    """
    last = dataset.x_test[:, -1, :] * dataset.feature_std[-1] + dataset.feature_mean[-1]  # (n, 1)
    return float(np.mean((last - dataset.y_test) ** 2))


def digit_sequences(
    seed: int = 0,
    *,
    task: str = "reverse",
    length: int = 8,
    size: int = 4000,
    test_fraction: float = 0.2,
    val_fraction: float = 0.0,
) -> Dataset:
    """Strings of random digits and their reversed (or sorted) versions, position by position.

    ``x`` and ``y`` are int32 arrays of shape ``(n, length)``; ``y[i, t]`` is the digit the
    output should hold at position ``t``. A model sees the whole input at once (no decoder), so
    this measures whether it can route information between positions: attention can, a
    position-wise MLP cannot. Token accuracy is the metric (``jn.metrics.accuracy`` on logits
    ``(n, length, 10)``).

    Args:
      seed: seeds the digits.
      task: ``"reverse"`` or ``"sort"``.
      length: digits per sequence.
      size: the number of sequences (train and test together).
      test_fraction: the share held out for testing (the first sequences).
      val_fraction: the share held out for validation (the ones after the test part).

    Returns:
      A classification ``Dataset`` with int32 ``x`` and ``y`` of shape ``(n, length)``.

    Raises:
      ValueError: for an unknown task or a non-positive length or size.

    Example:
      >>> ds = digit_sequences(task="sort", length=5, size=10)
      >>> bool((ds.y_train[0] == sorted(ds.x_train[0])).all())
      True
    """
    if task not in ("reverse", "sort"):
        raise ValueError(f"task must be 'reverse' or 'sort', got {task!r}")
    for name, value in (("length", length), ("size", size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 2:
            raise ValueError(f"{name} must be an int >= 2, got {value!r}")
    _check_fraction(test_fraction, val_fraction)
    x = np.random.default_rng(seed).integers(0, DIGITS, size=(size, length), dtype=np.int32)
    y = x[:, ::-1].copy() if task == "reverse" else np.sort(x, axis=1)
    _, n_val, n_test = _sizes(size, test_fraction, val_fraction)
    v = n_test + n_val
    x_train, x_val, x_test, y_train, y_val, y_test = _read_only(
        x[v:], x[n_test:v], x[:n_test], y[v:], y[n_test:v], y[:n_test]
    )
    return Dataset(
        name=f"{task}_digits",
        task="classification",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        num_classes=DIGITS,
        feature_shape=(length,),
        feature_mean=np.zeros(length, np.float32),
        feature_std=np.ones(length, np.float32),
        x_val=x_val,
        y_val=y_val,
    )
