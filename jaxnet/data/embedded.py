"""scikit-learn's embedded datasets: digits, iris and breast cancer (shipped with it, no network).

scikit-learn is imported inside each loader: it takes one to two seconds to import, and
``import jaxnet`` should not pay for it. The digits, which ``jaxnet train`` loads every time,
are read straight from the CSV file scikit-learn ships (``sklearn/datasets/data/digits.csv.gz``,
what its ``load_digits`` reads) without importing it.
"""

import gzip
import importlib.util
import pathlib
from typing import Any

import numpy as np

from .dataset import Source


def digits(seed: int = 0) -> Source:
    """The 1797 8×8 handwritten digits, flattened to 64 features in 0..16; 10 classes.

    Args:
      seed: unused (the data are fixed; only the split depends on the seed).

    Returns:
      A ``Source`` with ``x`` of shape ``(1797, 64)`` (each 8×8 image row by row), labels ``0..9``
      and ``image_shape=(8, 8, 1)``.

    Example:
      >>> digits().x.shape
      (1797, 64)
    """
    del seed
    table = _read_digits_csv()  # (1797, 65): 64 pixels, then the label
    return Source(
        x=table[:, :-1],
        y=table[:, -1].astype(int),
        task="classification",
        num_classes=10,
        target_names=tuple(str(digit) for digit in range(10)),
        feature_names=tuple(f"pixel_{row}_{col}" for row in range(8) for col in range(8)),
        image_shape=(8, 8, 1),
    )


def _read_digits_csv() -> np.ndarray:
    """scikit-learn's ``digits.csv.gz`` as a float array, found without importing sklearn."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the digits data set needs scikit-learn: pip install scikit-learn")
    file = pathlib.Path(spec.submodule_search_locations[0], "datasets", "data", "digits.csv.gz")
    with gzip.open(file, "rt") as text:
        return np.loadtxt(text, delimiter=",")


def iris(seed: int = 0) -> Source:
    """Fisher's 150 iris flowers: 4 measurements in cm, 3 species.

    Args:
      seed: unused (the data are fixed; only the split depends on the seed).

    Returns:
      A ``Source`` with ``x`` of shape ``(150, 4)`` and labels ``0..2``.

    Example:
      >>> iris().target_names
      ('setosa', 'versicolor', 'virginica')
    """
    del seed
    from sklearn.datasets import load_iris

    return _classification(load_iris(), num_classes=3)


def breast_cancer(seed: int = 0) -> Source:
    """The Wisconsin diagnostic breast cancer set: 569 samples, 30 features, 2 classes.

    Args:
      seed: unused (the data are fixed; only the split depends on the seed).

    Returns:
      A ``Source`` with ``x`` of shape ``(569, 30)`` and labels 0 (malignant) and 1 (benign).

    Example:
      >>> breast_cancer().target_names
      ('malignant', 'benign')
    """
    del seed
    from sklearn.datasets import load_breast_cancer

    return _classification(load_breast_cancer(), num_classes=2)


def _classification(
    bunch: Any, num_classes: int, image_shape: tuple[int, ...] | None = None
) -> Source:
    """A ``Source`` from a scikit-learn ``Bunch`` (which has data, target and their names)."""
    return Source(
        x=bunch.data,
        y=bunch.target,
        task="classification",
        num_classes=num_classes,
        target_names=tuple(str(name) for name in bunch.target_names),
        feature_names=tuple(str(name) for name in bunch.feature_names),
        image_shape=image_shape,
    )
