"""Synthetic datasets generated from a seed: xor, two spirals and a seasonal temperature curve.

Each generator draws from ``np.random.default_rng(seed)`` only, so the same seed gives the same
arrays on every machine and nothing is downloaded.
"""

import numpy as np

from .dataset import Source

_DAYS_PER_YEAR = 365  # no leap years: the period of the seasonal curve is exactly one year


def xor(seed: int = 0, *, points_per_corner: int = 100, noise: float = 0.07) -> Source:
    """The XOR truth table: the corners of the unit square with Gaussian noise, 2 classes.

    A point near corner ``(a, b)`` has label ``a XOR b``. No line separates the classes (a linear
    model gets at most about 75% right), but one hidden layer gets all of them: the corners lie
    ``0.5 / √2 ≈ 0.35`` from the lines ``x0 + x1 = 0.5`` and ``x0 + x1 = 1.5``, five standard
    deviations of the default noise, so no point crosses them (checked for seeds 0 to 1999).

    Args:
      seed: seeds the noise.
      points_per_corner: the number of points around each of the four corners (100: a few
        hundred points in all, enough to train on and fast to test).
      noise: the standard deviation of the Gaussian noise on each coordinate (0.07: small enough
        that the classes stay separable, see above).

    Returns:
      A ``Source`` with ``x`` of shape ``(4 * points_per_corner, 2)`` and labels 0 and 1.

    Example:
      >>> source = xor(seed=0)
      >>> source.x.shape, int(source.y.sum())
      ((400, 2), 200)
    """
    rng = np.random.default_rng(seed)
    corners = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])  # (4, 2)
    labels = np.array([0, 1, 1, 0])  # a XOR b
    x = np.repeat(corners, points_per_corner, axis=0)  # (4 * points_per_corner, 2)
    x = x + noise * rng.standard_normal(x.shape)
    return Source(
        x=x,
        y=np.repeat(labels, points_per_corner),
        task="classification",
        num_classes=2,
        target_names=("false", "true"),
        feature_names=("a", "b"),
    )


def spirals(
    seed: int = 0, *, points_per_spiral: int = 200, turns: float = 1.5, noise: float = 0.04
) -> Source:
    """Two interleaved 2-D spirals, one per class.

    Spiral ``k`` (k = 0, 1) has the points ``r · (cos(θ + kπ), sin(θ + kπ))`` with radius ``r``
    uniform in [0.1, 1] and angle ``θ = 2π · turns · r``, plus Gaussian noise. Neighbouring arms
    of different classes are ``1 / (2 · turns)`` apart.

    Args:
      seed: seeds the radii and the noise.
      points_per_spiral: the number of points on each spiral.
      turns: how many times each spiral winds around the origin.
      noise: the standard deviation of the Gaussian noise on each coordinate.

    Returns:
      A ``Source`` with ``x`` of shape ``(2 * points_per_spiral, 2)`` and labels 0 and 1.

    Example:
      >>> spirals(seed=0).x.shape
      (400, 2)
    """
    rng = np.random.default_rng(seed)
    radius = rng.uniform(0.1, 1.0, size=(2, points_per_spiral))  # (2, P)
    angle = 2 * np.pi * turns * radius + np.pi * np.arange(2)[:, None]  # (2, P)
    x = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=-1)  # (2, P, 2)
    x = x.reshape(-1, 2) + noise * rng.standard_normal((2 * points_per_spiral, 2))  # (2P, 2)
    return Source(
        x=x,
        y=np.repeat(np.arange(2), points_per_spiral),
        task="classification",
        num_classes=2,
        feature_names=("x", "y"),
    )


def temperature_series(seed: int = 0, *, years: int = 4, noise: float = 2.0) -> np.ndarray:
    """A noisy daily temperature in °C, like a northern-hemisphere city's, in time order.

    ``t(day) = 10 - 12 · cos(2π · day / 365) + noise · ε``, with ``ε`` standard normal: about -2 °C
    in early January and 22 °C in early July. Meant for sequence forecasting.

    Args:
      seed: seeds the noise.
      years: the number of 365-day years (4: enough to see the cycle repeat several times).
      noise: the standard deviation of the day-to-day noise in °C.

    Returns:
      A float32 array of shape ``(365 * years,)``; entry ``d`` is the temperature on day ``d``.

    Raises:
      ValueError: if ``years`` is not a positive integer or ``noise`` is negative.

    Example:
      >>> temperature_series(seed=0, years=2).shape
      (730,)
    """
    if isinstance(years, bool) or not isinstance(years, int) or years < 1:
        raise ValueError(f"years must be a positive integer, got {years!r}")
    if not noise >= 0:
        raise ValueError(f"noise must be a non-negative number, got {noise!r}")
    rng = np.random.default_rng(seed)
    day = np.arange(_DAYS_PER_YEAR * years)  # (days,)
    season = 10.0 - 12.0 * np.cos(2 * np.pi * day / _DAYS_PER_YEAR)
    return (season + noise * rng.standard_normal(day.shape)).astype(np.float32)


def temperature(seed: int = 0) -> Source:
    """Regression: the day of the year, as a fraction in [0, 1), to the temperature in °C.

    The samples are the days of ``temperature_series(seed)`` (4 years, 1460 days); the single
    feature is ``(day % 365) / 365``, so the same day of different years shares a feature value
    and the target is a noisy function of it.

    Args:
      seed: seeds the noise.

    Returns:
      A ``Source`` with ``x`` of shape ``(1460, 1)`` and targets of shape ``(1460, 1)`` in °C.

    Example:
      >>> temperature(seed=0).y.shape
      (1460, 1)
    """
    series = temperature_series(seed)  # (days,)
    day = np.arange(len(series))
    return Source(
        x=((day % _DAYS_PER_YEAR) / _DAYS_PER_YEAR)[:, None],  # (days, 1)
        y=series[:, None],  # (days, 1)
        task="regression",
        target_names=("temperature_celsius",),
        feature_names=("day_of_year_fraction",),
    )
