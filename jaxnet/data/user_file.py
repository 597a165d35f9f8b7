"""``from_file``: a user's own data file as a :class:`jaxnet.data.Dataset`.

``jaxnet train --data FILE.npz`` (arrays ``x`` and ``y``) and ``--data FILE.csv --target COLUMN``
train a recipe's net on it. The file is read by :mod:`jaxnet.data.files` (never unpickled, one
line naming the file for anything wrong) and split and standardized by ``from_arrays``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

import numpy as np

from jaxnet.data.dataset import Dataset, from_arrays
from jaxnet.data.files import LABEL_COLUMNS, csv_header, is_number, read_arrays, read_csv_with_text


def from_file(
    path: str | os.PathLike[str],
    *,
    target: str | None = None,
    task: str | None = None,
    seed: int = 0,
    test_fraction: float = 0.2,
    val_fraction: float = 0.0,
) -> Dataset:
    """Read features and labels from ``path`` and split them as :func:`from_arrays` does.

    A ``.npz`` file holds arrays ``x`` and ``y``. A ``.csv`` file has a header; ``target``
    names the label or target column (default: the column named ``y``, ``label`` or
    ``target``) and every other column is a feature. Unless ``task`` says, the task of a CSV
    target is decided openly (:func:`decide_task`, and :func:`task_line` says it in words): a
    column of text (``setosa``, ``class_0``) holds class names, kept as the dataset's
    ``target_names`` for ``predict``; whole numbers with few distinct values (at most
    :data:`MAX_INFERRED_CLASSES`, and at most one per two rows) are class labels; any other
    numbers are regression targets. An ``.npz``'s ``y`` decides by its dtype.

    Args:
      path: the ``.npz`` or ``.csv`` file.
      target: the CSV column to predict.
      task: ``"classification"`` or ``"regression"``; None decides it as above (a count with
        few distinct values needs ``"regression"``).
      seed, test_fraction, val_fraction: as for :func:`from_arrays`.

    Returns:
      The ``Dataset``, named after the file's stem; its ``origin`` records the file (its
      absolute path and SHA-256) and the split, so a run folder can reload its test split.

    Raises:
      FileNotFoundError: ``data.csv: no such file``.
      ValueError: one line starting with the file: a missing column (listing the header's),
        a value that is not a number, an ``.npz`` without ``x`` or ``y``, ``target`` given for
        an ``.npz``, another suffix.

    Example:
      >>> _ = Path("flowers.csv").write_text("a,b,kind\\n0,1,0\\n1,0,1\\n1,1,1\\n0,0,0\\n2,2,1\\n")
      >>> ds = from_file("flowers.csv", target="kind")
      >>> ds.name, ds.task, ds.num_classes, ds.feature_shape
      ('flowers', 'classification', 2, (2,))
    """
    file = Path(path)
    suffix = file.suffix.lower()
    digest = file_sha256(file) if file.is_file() else None  # of the bytes about to be read
    names = features = None
    if suffix == ".csv":
        x, y, target, task, names, features = _csv_columns(file, target, task)
    elif suffix == ".npz":
        if target is not None:
            raise ValueError(f"{file}: --target is for a CSV file; an .npz holds arrays x and y")
        arrays = read_arrays(file)
        missing = [name for name in ("x", "y") if name not in arrays]
        if missing:
            raise ValueError(
                f"{file}: needs arrays named x and y, has {', '.join(arrays) or 'none'}"
            )
        x, y = arrays["x"], arrays["y"]
    else:
        raise ValueError(
            f"{file}: expected a .npz file (arrays x and y) or a .csv file with a header, "
            f"got {suffix or 'no suffix'!r}"
        )
    dataset = from_arrays(
        x,
        y,
        task=task,
        name=file.stem,
        seed=seed,
        test_fraction=test_fraction,
        val_fraction=val_fraction,
    )
    origin: dict[str, Any] = {"file": str(file.resolve()), "target": target, "task": task}
    origin["sha256"] = digest
    origin |= {"seed": seed, "test_fraction": test_fraction, "val_fraction": val_fraction}
    return dataclasses.replace(
        dataset,
        origin=MappingProxyType(origin),
        target_names=names or dataset.target_names,
        feature_names=features or dataset.feature_names,
    )


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of a file's bytes: what a run folder records of its data file, so that
    reloading its test split (``jaxnet evaluate``) or resuming it can tell the file changed."""
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def check_same_file(saved: Mapping[str, Any], now: Mapping[str, Any], what: str) -> None:
    """Refuse to resume a run on a data file other than the one it began on: both origins
    name a file, and their SHA-256 differ (``saved`` read from ``what``).

    Raises:
      ValueError: as :func:`check_unchanged`'s.
    """
    if "sha256" in saved and "sha256" in now and saved["sha256"] != now["sha256"]:
        raise ValueError(_changed(now.get("file", saved.get("file")), what))


def _changed(file: Any, what: str) -> str:
    return (
        f"{file}: changed since the run was trained (its SHA-256 differs from the one in "
        f"{what}), so its splits are not the run's"
    )


def check_unchanged(origin: Mapping[str, Any], what: str) -> None:
    """Refuse a data file whose bytes are not those ``origin`` (a run's) recorded.

    Raises:
      FileNotFoundError: the file is gone, naming it.
      ValueError: ``FILE: changed since the run was trained (its SHA-256 differs from the
        one in WHAT), so its splits are not the run's``.
    """
    file = Path(origin["file"])
    if not file.is_file():
        raise FileNotFoundError(f"{file}: no such file (the run's data file, named in {what})")
    if origin.get("sha256") not in (None, file_sha256(file)):
        raise ValueError(_changed(file, what))


MAX_INFERRED_CLASSES = 50
"""The most distinct whole numbers a CSV target may hold to be read as class labels when no
task is given (with at least two rows per distinct value); more, and it is a regression target."""


def decide_task(y: np.ndarray) -> str:
    """The task of a numeric CSV target when the user names none: ``"classification"`` when
    its values are whole numbers, at most :data:`MAX_INFERRED_CLASSES` distinct ones and at
    most one distinct value per two rows (labels repeat; a measurement rarely does);
    ``"regression"`` otherwise.

    >>> decide_task(np.array([0, 1, 1, 0, 2, 2]))
    'classification'
    >>> decide_task(np.array([151.0, 75, 141, 206, 135, 97]))  # diabetes' progression
    'regression'
    >>> decide_task(np.array([0.5, 1.5, 0.5, 1.5]))
    'regression'
    """
    if not np.all(y == np.round(y)):
        return "regression"
    distinct = len(np.unique(y))
    few = distinct <= MAX_INFERRED_CLASSES and 2 * distinct <= len(y)
    return "classification" if few else "regression"


def task_line(dataset: Dataset) -> str:
    """The task a file's dataset was read as, in words, for the first line of ``jaxnet train
    --data``: ``classification: 3 classes from column 'kind' (class_0, class_1, class_2)`` or
    ``regression on column 'progression'``."""
    target = (dataset.origin or {}).get("target")
    column = f"column {target!r}" if target else "y"
    if dataset.task == "regression":
        return f"regression on {column}"
    names = f" ({', '.join(dataset.target_names)})" if dataset.target_names else ""
    return f"classification: {dataset.num_classes} classes from {column}{names}"


class _Columns(NamedTuple):
    """A CSV read for training: features, target, and what was decided about them."""

    x: np.ndarray
    y: np.ndarray
    target: str  # the target column's name
    task: str  # as given, or decided by decide_task (a text target holds classes)
    class_names: tuple[str, ...] | None  # of a text target
    feature_names: tuple[str, ...]  # the header without the target


def _csv_columns(file: Path, target: str | None, task: str | None) -> _Columns:
    """The CSV's features and target, by the header's names."""
    header = csv_header(file)
    if header is None:
        raise ValueError(f"{file}: has no header line; name the columns and pass --target")
    if target is None:
        found = [name for name in header if name.lower() in LABEL_COLUMNS]
        if len(found) != 1:
            raise ValueError(
                f"{file}: pass --target COLUMN (no single column named y, label or target; "
                f"the columns are {', '.join(header)})"
            )
        target = found[0]
    if target not in header:
        raise ValueError(f"{file}: no column {target!r}; the columns are {', '.join(header)}")
    if len(header) == 1:
        raise ValueError(f"{file}: {target!r} is the only column; there are no features")
    x, texts, _ = read_csv_with_text(file, target)
    features = tuple(name for name in header if name != target)
    text = next((text for text in texts if not is_number(text)), None)
    if text is not None:  # names of classes
        if task == "regression":
            raise ValueError(
                f"{file}: column {target!r} holds text such as {text!r}; a regression target "
                "must be numbers (text targets are class names: leave --task out)"
            )
        names = tuple(sorted(set(texts)))
        y = np.searchsorted(np.array(names), np.array(texts)).astype(np.int64)
        return _Columns(x, y, target, "classification", names, features)
    y = np.array([float(text) for text in texts])
    task = task or decide_task(y)
    if task == "classification" and np.all(y == np.round(y)):  # whole numbers: class labels
        y = y.astype(np.int64)
    return _Columns(x, y, target, task, None, features)
