"""scikit-learn's embedded datasets: digits, iris and breast cancer (shipped with it, no network).

scikit-learn is imported inside each loader: it takes about a second to import, and
``import jaxnet`` should not pay for it.
"""

from typing import Any

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
    from sklearn.datasets import load_digits

    return _classification(load_digits(), num_classes=10, image_shape=(8, 8, 1))


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
