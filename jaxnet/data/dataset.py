"""The ``Dataset`` type and ``from_arrays``: validate, split and standardize in-memory arrays.

Every dataset in ``jaxnet.data`` goes through ``from_arrays``, so the same checks, the same seeded
train/validation/test split and the same standardization apply to the embedded sets and to user
arrays. The validation split is what model selection (the best checkpoint, early stopping) looks
at; the test split is only reported.
"""

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, overload

import numpy as np
import numpy.typing as npt

from jaxnet.data.ondisk import OnDisk, streaming_stats
from jaxnet.data.preprocessing import Preprocessing, TreePreprocessing
from jaxnet.data.trees import check_tree, is_tree, named_parts, num_rows, tree_map

TASKS = ("classification", "regression")
"""The task kinds a Dataset may have: integer class labels, or float regression targets."""

# A feature whose training standard deviation is below this is treated as constant (digits has
# pixels that are zero in every image): it is centred but divided by 1 instead of ~0.
_MIN_STD = 1e-6


@dataclasses.dataclass(frozen=True, eq=False)  # eq=False: ``==`` on arrays has no single answer
class Dataset:
    """A train/validation/test split of one supervised-learning dataset, as read-only NumPy
    arrays.

    Classification labels are integers in ``[0, num_classes)``; regression targets are floats of
    shape ``(n, n_targets)`` in their original units (targets are never standardized). Features
    are standardized with ``feature_mean`` and ``feature_std``, fitted on the training part only;
    apply the same map to new inputs with ``transform``.

    Attributes:
      name: the dataset's name, e.g. ``"digits"``.
      task: ``"classification"`` or ``"regression"``.
      x_train: float32 array of shape ``(n_train, *feature_shape)``.
      y_train: int32 labels of shape ``(n_train,)`` for classification; float32 targets of
        shape ``(n_train, n_targets)`` for regression.
      x_test: float32 array of shape ``(n_test, *feature_shape)``.
      y_test: like ``y_train``, with ``n_test`` rows.
      x_val: float32 array of shape ``(n_val, *feature_shape)``, standardized with the training
        statistics; ``n_val`` is 0 (the default) when the dataset has no validation split.
      y_val: like ``y_train``, with ``n_val`` rows.
      num_classes: the number of classes; ``None`` for regression.
      feature_shape: the shape of one sample, e.g. ``(64,)`` for digits (flattened 8×8 images).
      feature_mean: float32 array of shape ``feature_shape``, subtracted from raw features (zeros
        when the dataset was built with ``standardize=False``).
      feature_std: float32 array of shape ``feature_shape``, dividing centred features (ones when
        not standardized, and 1 for constant features).
      target_names: class names (classification) or target names (regression), if known.
      feature_names: one name per feature, if known.
      image_shape: the ``(height, width, channels)`` a flat sample reshapes to, for image data.
      origin: how :func:`jaxnet.data.load` made it (``name``, ``seed``, ``test_fraction``,
        ``val_fraction``, ``standardize``), so a run folder can load the same split again;
        ``None`` otherwise.

    Example:
      >>> ds = from_arrays([[0.0], [1.0], [2.0], [3.0], [4.0]], [0, 1, 0, 1, 0])
      >>> ds.num_train, ds.num_test, ds.num_features, ds.num_classes
      (4, 1, 1, 2)
    """

    name: str
    task: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int | None
    feature_shape: tuple[int, ...]
    feature_mean: np.ndarray
    feature_std: np.ndarray
    target_names: tuple[str, ...] | None = None
    feature_names: tuple[str, ...] | None = None
    image_shape: tuple[int, ...] | None = None
    origin: Mapping[str, Any] | None = None
    x_val: np.ndarray | None = None  # None: no validation split (stored as 0 rows)
    y_val: np.ndarray | None = None

    def __post_init__(self) -> None:
        if (self.x_val is None) != (self.y_val is None):
            raise ValueError("Dataset: give both x_val and y_val, or neither")
        if self.x_val is None:  # no validation split: 0 rows shaped like the training arrays
            x_val = tree_map(lambda a: _read_only(a[:0]), self.x_train)
            object.__setattr__(self, "x_val", x_val)
            object.__setattr__(self, "y_val", _read_only(self.y_train[:0]))

    @property
    def num_features(self) -> int:
        """The number of features per sample: the product of ``feature_shape`` (summed over
        the parts of tuple or dict features)."""
        if is_tree(self.x_train):
            return sum(math.prod(a.shape[1:]) for _, a in named_parts(self.x_train))
        return math.prod(self.feature_shape)

    @property
    def num_train(self) -> int:
        """The number of training samples."""
        return num_rows(self.x_train)

    @property
    def num_val(self) -> int:
        """The number of validation samples (0 when there is no validation split)."""
        return num_rows(self.x_val) if self.x_val is not None else 0

    @property
    def num_test(self) -> int:
        """The number of test samples."""
        return num_rows(self.x_test)

    @property
    def preprocessing(self) -> Preprocessing | TreePreprocessing:
        """The map from raw inputs to this dataset's features (its standardization and dtype),
        which a run folder stores with the model so that predictions on raw inputs are right."""
        return Preprocessing.of(self)

    def transform(self, x: npt.ArrayLike) -> np.ndarray:
        """Standardize raw inputs with the training-set statistics: ``(x - mean) / std``.

        Args:
          x: raw features of shape ``(..., *feature_shape)``.

        Returns:
          A float32 array of the same shape, on the scale of ``x_train``.

        Raises:
          ValueError: if the trailing axes of ``x`` are not ``feature_shape``.

        Example:
          >>> ds = from_arrays([[0.0], [2.0], [4.0], [6.0], [8.0]], [0.0, 1.0, 2.0, 3.0, 4.0])
          >>> ds.transform([[2.0]]).shape
          (1, 1)
        """
        if is_tree(self.x_train):
            return self.preprocessing.transform(x)
        arr = np.asarray(x, dtype=np.float32)
        k = len(self.feature_shape)
        if arr.shape[arr.ndim - k :] != self.feature_shape:
            raise ValueError(
                f"transform: expected x of shape (..., {_dims(self.feature_shape)}), "
                f"got {arr.shape}"
            )
        return ((arr - self.feature_mean) / self.feature_std).astype(np.float32)

    def __repr__(self) -> str:
        parts = [f"name={self.name!r}", f"task={self.task!r}"]
        if self.num_classes is not None:
            parts.append(f"num_classes={self.num_classes}")
        fields = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")
        for field in fields if self.num_val else (f for f in fields if "_val" not in f):
            value = getattr(self, field)
            shown = tree_map(lambda a: f"{a.dtype}{a.shape}", value)
            parts.append(
                f"{field}={shown}".replace("'", "") if is_tree(value) else f"{field}={shown}"
            )
        return f"Dataset({', '.join(parts)})"


class Source(NamedTuple):
    """The unsplit arrays and metadata that a named dataset's loader returns (internal)."""

    x: np.ndarray
    y: np.ndarray
    task: str
    num_classes: int | None = None
    target_names: tuple[str, ...] | None = None
    feature_names: tuple[str, ...] | None = None
    image_shape: tuple[int, ...] | None = None


@overload
def from_arrays(
    x: np.memmap,
    y: npt.ArrayLike,
    *,
    task: str | None = None,
    num_classes: int | None = None,
    name: str = "arrays",
    seed: int = 0,
    test_fraction: float = 0.2,
    val_fraction: float = 0.0,
    validation: tuple[npt.ArrayLike, npt.ArrayLike] | None = None,
    standardize: bool = True,
    feature_names: Sequence[str] | None = None,
) -> OnDisk: ...


@overload
def from_arrays(
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    task: str | None = None,
    num_classes: int | None = None,
    name: str = "arrays",
    seed: int = 0,
    test_fraction: float = 0.2,
    val_fraction: float = 0.0,
    validation: tuple[npt.ArrayLike, npt.ArrayLike] | None = None,
    standardize: bool = True,
    feature_names: Sequence[str] | None = None,
) -> Dataset: ...


def from_arrays(
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    task: str | None = None,
    num_classes: int | None = None,
    name: str = "arrays",
    seed: int = 0,
    test_fraction: float = 0.2,
    val_fraction: float = 0.0,
    validation: tuple[npt.ArrayLike, npt.ArrayLike] | None = None,
    standardize: bool = True,
    feature_names: Sequence[str] | None = None,
) -> Dataset | OnDisk:
    """Validate arrays, split them into train, validation and test by ``seed``, and standardize
    the features.

    The test part holds ``ceil(n * test_fraction)`` samples (scikit-learn's rounding) and the
    validation part ``ceil(n * val_fraction)`` of the rest; for classification the split is
    stratified, so each class keeps its share in every part. Each part keeps the original sample
    order, and the test part does not depend on ``val_fraction``. Standardization
    ``(x - mean) / std`` is fitted on the training part only; regression targets are never
    standardized.

    Args:
      x: features of shape ``(n, *feature_shape)``; a 1-D ``x`` is read as one feature per sample.
      y: integer labels of shape ``(n,)`` (classification), or float targets of shape ``(n,)`` or
        ``(n, n_targets)`` (regression; ``(n,)`` becomes ``(n, 1)``).
      task: ``"classification"`` or ``"regression"``; ``None`` infers it from ``y``'s dtype
        (integer or bool → classification, float → regression).
      num_classes: the number of classes; ``None`` infers ``max(y) + 1``. Must be ``None`` for
        regression.
      name: the dataset's name, kept on the result.
      seed: seeds the split; the same seed gives identical arrays.
      test_fraction: the share of samples held out for testing, in the open interval (0, 1).
      val_fraction: the share of all samples held out for validation (model selection), in
        [0, 1 - test_fraction); 0 gives no validation split.
      validation: your own validation arrays ``(x_val, y_val)`` in raw units instead of
        ``val_fraction``; they are checked like ``x`` and ``y`` and standardized with the
        training statistics.
      standardize: whether to standardize the features (``False`` keeps raw values and stores a
        zero mean and unit std).
      feature_names: one name per column of a 2-D ``x``; a run folder records them, so that
        ``jaxnet predict`` reads a CSV's columns by name.

    A memory-mapped ``x`` (``np.memmap``, ``np.load(path, mmap_mode="r")``) is not read into
    memory: the result is a :class:`jaxnet.data.OnDisk` split by index, its statistics from
    one streaming pass over the training rows, which ``fit`` streams batch by batch (``y`` is
    read into memory; the ``grain`` extra is needed to train on it).

    Returns:
      A ``Dataset`` with float32 features and int32 labels or float32 targets (an ``OnDisk``
      for a memory-mapped ``x``).

    Raises:
      TypeError: if ``x`` or ``y`` is not numeric, or ``num_classes`` is not an integer.
      ValueError: if the data are empty or non-finite, the lengths of ``x`` and ``y`` differ, a
        label is not an integer in ``[0, num_classes)``, ``task`` is unknown, ``test_fraction`` is
        not in (0, 1), ``val_fraction`` is out of range or given with ``validation``, or the
        split would leave the train or test part empty.

    Example:
      >>> ds = from_arrays([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]], [1, 1, 0, 0],
      ...                  test_fraction=0.5)
      >>> ds.x_train.shape, ds.y_test.dtype, ds.num_classes
      ((2, 2), dtype('int32'), 2)
    """
    _check_fractions(test_fraction, val_fraction, validation)
    if isinstance(x, np.memmap):
        if feature_names is not None:
            raise ValueError("feature_names is for in-memory x")
        if validation is not None:
            raise ValueError("validation=(x_val, y_val) is for in-memory x; use val_fraction")
        return _on_disk(
            x, y, task, num_classes, name, seed, test_fraction, val_fraction, standardize
        )
    features = _as_feature_tree(x)
    targets = np.asarray(y)
    _check_lengths(features, targets)
    names = _check_feature_names(feature_names, features)
    task = _infer_task(targets) if task is None else _check_task(task)
    targets, num_classes = _as_task_targets(targets, task, num_classes)
    train, val, test = _split_indices(targets, task, test_fraction, val_fraction, seed)
    mean = tree_map(lambda f: _fit_standardizer(f[train], standardize)[0], features)
    std = tree_map(lambda f: _fit_standardizer(f[train], standardize)[1], features)
    x_val, y_val = tree_map(lambda f: f[val], features), targets[val]
    if validation is not None:
        x_val, y_val = _as_validation(validation, features, task, num_classes)

    def scaled(part: Any) -> Any:  # the rows of ``part`` (a tree like x), standardized
        return tree_map(lambda f, m, s: _read_only((f - m) / s), part, mean, std)

    return Dataset(
        name=name,
        task=task,
        feature_names=names,
        x_train=scaled(tree_map(lambda f: f[train], features)),
        y_train=_read_only(targets[train]),
        x_test=scaled(tree_map(lambda f: f[test], features)),
        y_test=_read_only(targets[test]),
        num_classes=num_classes,
        feature_shape=tree_map(lambda f: f.shape[1:], features),
        feature_mean=tree_map(_read_only, mean),
        feature_std=tree_map(_read_only, std),
        x_val=scaled(x_val),
        y_val=_read_only(y_val),
    )


def _on_disk(
    x: np.memmap,
    y: npt.ArrayLike,
    task: str | None,
    num_classes: int | None,
    name: str,
    seed: int,
    test_fraction: float,
    val_fraction: float,
    standardize: bool,
) -> OnDisk:
    """:func:`from_arrays` for memory-mapped features: the same checks of ``y``, the same
    split, and statistics from one streaming pass; ``x`` is not read into memory."""
    if x.ndim < 2 or len(x) == 0 or not _is_real(x):
        raise ValueError(
            f"a memory-mapped x must be numeric with shape (n, *feature_shape), got "
            f"{x.dtype}{x.shape}"
        )
    targets = np.asarray(y)
    _check_lengths(x, targets)
    task = _infer_task(targets) if task is None else _check_task(task)
    targets, num_classes = _as_task_targets(targets, task, num_classes)
    train, val, test = _split_indices(targets, task, test_fraction, val_fraction, seed)
    mean, std = streaming_stats(x, train, standardize=standardize)
    return OnDisk(
        name=name,
        task=task,
        x=x,
        y=_read_only(targets),
        train=train,
        val=val,
        test=test,
        num_classes=num_classes,
        feature_shape=tuple(x.shape[1:]),
        feature_mean=_read_only(mean),
        feature_std=_read_only(std),
    )


def _check_fractions(test_fraction: float, val_fraction: float, validation: Any) -> None:
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in the open interval (0, 1), got {test_fraction}")
    if not 0 <= val_fraction < 1 - test_fraction:
        raise ValueError(
            f"val_fraction must be in [0, 1 - test_fraction) = [0, {1 - test_fraction:g}), "
            f"got {val_fraction}"
        )
    if validation is not None and val_fraction:
        raise ValueError(
            "give either val_fraction or validation=(x_val, y_val), not both "
            f"(got val_fraction={val_fraction})"
        )


def _as_task_targets(
    y: np.ndarray, task: str, num_classes: int | None
) -> tuple[np.ndarray, int | None]:
    """``y`` as int32 labels (and the number of classes) or float32 targets (and None)."""
    if task == "classification":
        return _as_labels(y, num_classes)
    return _as_targets(y, num_classes), None


def _as_validation(
    validation: Any, features: np.ndarray, task: str, num_classes: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """The user's own validation arrays, checked like the training ones."""
    if not isinstance(validation, tuple | list) or len(validation) != 2:
        kind = type(validation).__name__
        raise TypeError(f"validation must be a pair (x_val, y_val), got {kind}")
    x_val, y_val = _as_feature_tree(validation[0], "x_val"), np.asarray(validation[1])
    _check_lengths(x_val, y_val)
    if is_tree(features):
        x_val = _check_validation_tree(x_val, features)
    elif is_tree(x_val) or x_val.shape[1:] != features.shape[1:]:
        raise ValueError(
            f"validation: x_val has samples of shape {_sample_shape(x_val)}, but x has "
            f"{features.shape[1:]}"
        )
    y_val, _ = _as_task_targets(y_val, task, num_classes)
    return x_val, y_val


def _as_feature_tree(x: Any, what: str = "x") -> Any:
    """``x`` as :func:`_as_features` reads it, or for a tuple or dict of arrays, every part so
    (each named in errors: ``x['left']``), checked to have the same number of rows."""
    if not is_tree(x) and not (isinstance(x, tuple) and not x):
        return _as_features(x)
    check_tree(x, what)
    converted = iter([_as_features(part, name) for name, part in named_parts(x, what)])
    out = tree_map(lambda _: next(converted), x)
    num_rows(out, what)
    return out


def _sample_shape(x: Any) -> Any:
    return tree_map(lambda a: a.shape[1:], x) if is_tree(x) else x.shape[1:]


def _check_validation_tree(x_val: Any, features: Any) -> Any:
    """``x_val`` as a tree with the parts of ``x`` in their order (dict keys may come in any
    order), each of the same sample shape."""
    from jaxnet.data.trees import ordered_like, same_structure, structure

    if not same_structure(x_val, features):
        raise ValueError(f"validation: x_val is {structure(x_val)}, but x is {structure(features)}")
    x_val = ordered_like(x_val, features)
    for (name, val), (_, part) in zip(
        named_parts(x_val, "x_val"), named_parts(features), strict=True
    ):
        if val.shape[1:] != part.shape[1:]:
            raise ValueError(
                f"validation: {name} has samples of shape {val.shape[1:]}, but x has "
                f"{part.shape[1:]}"
            )
    return x_val


def _as_features(x: npt.ArrayLike, what: str = "x") -> np.ndarray:
    """``x`` as a finite float32 array of shape ``(n, *feature_shape)``."""
    arr = np.asarray(x)
    if arr.ndim == 0:
        raise ValueError(
            f"{what} must have a leading sample axis, got a scalar of shape {arr.shape}"
        )
    if not _is_real(arr):
        raise TypeError(
            f"{what} must be a numeric (integer, bool or float) array, got dtype {arr.dtype}"
        )
    if arr.size == 0:
        raise ValueError(f"{what} is empty: got shape {arr.shape}; need at least two samples")
    with np.errstate(over="ignore"):  # float64 beyond float32's range becomes inf, caught below
        arr = arr.astype(np.float32)
    if arr.ndim == 1:
        arr = arr[:, None]  # (n,) → (n, 1): one feature per sample
    _check_finite(arr, what)
    return arr


def _check_lengths(x: Any, y: np.ndarray) -> None:
    if y.ndim == 0:
        raise ValueError(f"y must have a leading sample axis, got a scalar of shape {y.shape}")
    n = num_rows(x)
    if n != len(y):
        raise ValueError(
            f"x and y must have the same number of samples, got len(x)={n} and len(y)={len(y)}"
        )


def _check_feature_names(names: Sequence[str] | None, features: Any) -> tuple[str, ...] | None:
    """``names`` as a tuple: distinct strings, one per column of a 2-D ``x``."""
    if names is None:
        return None
    if isinstance(names, str) or not all(isinstance(n, str) for n in names):
        raise TypeError(f"feature_names must be a list of strings, got {names!r}")
    names = tuple(names)
    if not isinstance(features, np.ndarray) or features.ndim != 2:
        raise ValueError("feature_names names the columns of a 2-D x (n, features)")
    if len(names) != features.shape[1] or len(set(names)) != len(names):
        raise ValueError(
            f"feature_names must be {features.shape[1]} distinct names, one per column of x, "
            f"got {len(names)}: {', '.join(names)}"
        )
    return names


def _infer_task(y: np.ndarray) -> str:
    if np.issubdtype(y.dtype, np.integer) or y.dtype == np.bool_:
        return "classification"
    if np.issubdtype(y.dtype, np.floating):
        return "regression"
    raise TypeError(f"y must be a numeric (integer, bool or float) array, got dtype {y.dtype}")


def _check_task(task: str) -> str:
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(map(repr, TASKS))}, got {task!r}")
    return task


def _as_labels(y: np.ndarray, num_classes: int | None) -> tuple[np.ndarray, int]:
    """``y`` as int32 labels of shape ``(n,)`` in ``[0, num_classes)``, and ``num_classes``."""
    if y.ndim != 1:
        raise ValueError(
            f"classification labels y must have shape (n,), got {y.shape}; "
            "pass integer class indices, not one-hot vectors"
        )
    if not _is_real(y):
        raise TypeError(f"classification labels y must be integers, got dtype {y.dtype}")
    if np.issubdtype(y.dtype, np.floating):
        non_integer = np.flatnonzero(~np.isfinite(y) | (y != np.round(y)))
        if non_integer.size:
            i = non_integer[0]
            raise ValueError(
                f"classification labels y must be integers, got {y[i]} at index {i} "
                f"({non_integer.size} non-integer labels in all)"
            )
    num_classes = int(y.max()) + 1 if num_classes is None else _check_num_classes(num_classes)
    outside = np.flatnonzero((y < 0) | (y >= num_classes))
    if outside.size:
        i = outside[0]
        raise ValueError(
            f"classification labels y must be in [0, num_classes={num_classes}), "
            f"got {y[i]} at index {i}"
        )
    return y.astype(np.int32), num_classes


def _check_num_classes(num_classes: int) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int | np.integer):
        raise TypeError(
            f"num_classes must be an int, got {num_classes!r} of type {type(num_classes).__name__}"
        )
    if num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes}")
    return int(num_classes)


def _as_targets(y: np.ndarray, num_classes: int | None) -> np.ndarray:
    """``y`` as finite float32 regression targets of shape ``(n, n_targets)``."""
    if num_classes is not None:
        raise ValueError(f"num_classes must be None for task='regression', got {num_classes}")
    if not _is_real(y):
        raise TypeError(f"regression targets y must be numeric, got dtype {y.dtype}")
    if y.ndim == 1:
        y = y[:, None]  # (n,) → (n, 1)
    if y.ndim != 2 or y.shape[1] == 0:
        raise ValueError(
            f"regression targets y must have shape (n,) or (n, n_targets), got {y.shape}"
        )
    with np.errstate(over="ignore"):  # out-of-range values become inf, caught below
        y = y.astype(np.float32)
    _check_finite(y, "y")
    return y


def _split_indices(
    y: np.ndarray, task: str, test_fraction: float, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted train, validation and test indices: ``ceil(n * test_fraction)`` test samples
    first, then ``ceil(n * val_fraction)`` validation samples, from one seeded (stratified)
    order, so the test part is the same whatever ``val_fraction`` is."""
    n = len(y)
    n_test = math.ceil(n * test_fraction)
    n_val = math.ceil(n * val_fraction)
    if n_test == 0 or n_test + n_val >= n:
        fractions = f"test_fraction={test_fraction}"
        fractions += f" and val_fraction={val_fraction}" if val_fraction else ""
        raise ValueError(
            f"{fractions} with {n} samples gives {n - n_test - n_val} training and {n_test} "
            "test samples; both parts need at least one"
        )
    order = np.random.default_rng(seed).permutation(n)
    if task == "classification":
        order = order[_stratified_order(y[order])]
    test, rest = order[:n_test], order[n_test:]
    if task == "classification" and n_val:  # stratify the validation part within the rest
        rest = rest[_stratified_order(y[rest])]
    return np.sort(rest[n_val:]), np.sort(rest[:n_val]), np.sort(test)


def _stratified_order(labels: np.ndarray) -> np.ndarray:
    """An order in which every prefix keeps each class's share (to within one sample).

    The k-th of a class's ``m`` samples gets the key ``(k + 0.5) / m``; sorting by key interleaves
    the classes in proportion. Ties keep the incoming (random) order.
    """
    keys = np.empty(len(labels))
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        keys[members] = (np.arange(len(members)) + 0.5) / len(members)
    return np.argsort(keys, kind="stable")


def _fit_standardizer(x_train: np.ndarray, standardize: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature float32 mean and std of ``x_train`` (or zeros and ones if not standardizing)."""
    if not standardize:
        return np.zeros(x_train.shape[1:], np.float32), np.ones(x_train.shape[1:], np.float32)
    mean = x_train.mean(axis=0, dtype=np.float64)
    std = x_train.std(axis=0, dtype=np.float64)
    std = np.where(std < _MIN_STD, 1.0, std)  # constant features: divide by 1, not 0
    return mean.astype(np.float32), std.astype(np.float32)


def _check_finite(arr: np.ndarray, arg: str) -> None:
    bad = ~np.isfinite(arr)
    if bad.any():
        rows = np.flatnonzero(bad.reshape(len(arr), -1).any(axis=1))
        raise ValueError(
            f"{arg} contains {int(bad.sum())} non-finite values (NaN or Inf, after conversion "
            f"to float32); the first is in row {rows[0]}"
        )


def _is_real(arr: np.ndarray) -> bool:
    """Whether ``arr`` holds integers, bools or real floats (not complex, strings or objects)."""
    return bool(
        np.issubdtype(arr.dtype, np.integer)
        or np.issubdtype(arr.dtype, np.floating)
        or arr.dtype == np.bool_
    )


def _read_only(arr: np.ndarray) -> np.ndarray:
    arr = np.ascontiguousarray(arr)
    arr.flags.writeable = False
    return arr


def _dims(shape: tuple[int, ...]) -> str:
    return ", ".join(map(str, shape))
