"""Read arrays from data files: ``.npy``, ``.npz`` and numeric ``.csv``.

``jaxnet predict RUN_DIR INPUT`` and ``jaxnet evaluate --data FILE`` take their data from a file
the user wrote; this module turns it into NumPy arrays, or into one clear, one-line ``ValueError``
that starts with the file's path (``FileNotFoundError`` when there is no file). Nothing is ever
unpickled: NumPy files are read with ``allow_pickle=False`` and object arrays are refused.

Example:
  >>> _ = Path("points.csv").write_text("a,b,label\\n0.5,1,0\\n2,3.25,1\\n")
  >>> read_csv("points.csv")
  (array([[0.5 , 1.  , 0.  ],
         [2.  , 3.25, 1.  ]]), ('a', 'b', 'label'))
  >>> arrays = read_arrays("points.csv")
  >>> arrays["x"].shape, arrays["y"]
  ((2, 2), array([0., 1.]))
"""

import os
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import numpy as np

SUFFIXES = (".npy", ".npz", ".csv")
"""The file types ``read_array`` and ``read_arrays`` understand, by suffix (case-insensitive)."""

LABEL_COLUMNS = ("y", "label", "target")
"""CSV header names (case-insensitive) that ``read_arrays`` takes as the label column ``y``."""

_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # a zip archive with members; an empty one


def read_array(path: str | os.PathLike[str]) -> np.ndarray:
    """Read the one input array of a data file.

    Args:
      path: a ``.npy`` file; a ``.npz`` file (its array named ``x``, else its only array); or a
        ``.csv`` file of numbers (all its columns, an optional header line skipped).

    Returns:
      The array as stored; a CSV gives float64 of shape ``(rows, columns)``, even for one column.

    Raises:
      FileNotFoundError: if there is no file at ``path``.
      ValueError: if the suffix is unknown, the file is damaged or holds Python objects, a
        ``.npz`` holds several arrays and none named ``x``, or a CSV is not a table of numbers.
    """
    path = _existing(path)
    suffix = _suffix(path)
    if suffix == ".csv":
        return _read_csv(path)[0]
    arrays = _read_numpy(path)
    if "x" in arrays:
        return arrays["x"]
    if len(arrays) == 1:
        (array,) = arrays.values()
        return array
    names = ", ".join(arrays)
    raise ValueError(f"{path}: holds several arrays ({names}) and none named 'x'")


def read_arrays(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read the named arrays of a data file, such as features ``x`` and labels ``y``.

    Args:
      path: a ``.npz`` file (every array, by name); a ``.npy`` file (``{"x": array}``); or a
        ``.csv`` file: a header column named as in ``LABEL_COLUMNS`` becomes ``y`` of shape
        ``(rows,)`` and the other columns ``x``; without one, ``{"x": every column}``.

    Returns:
      A dict from array name to array; CSV arrays are float64.

    Raises:
      FileNotFoundError: if there is no file at ``path``.
      ValueError: as ``read_array``; also if a CSV header names several label columns, or
        names a label column and no other.
    """
    path = _existing(path)
    if _suffix(path) != ".csv":
        return _read_numpy(path)
    return _split_label(path, *_read_csv(path))


def read_csv(path: str | os.PathLike[str]) -> tuple[np.ndarray, tuple[str, ...] | None]:
    """Read a comma-separated table of numbers and its header names, whatever the suffix.

    The first line is a header when one of its fields is not a number (a leading ``#``, as
    ``np.savetxt(header=...)`` writes, is dropped from the names). Blank lines are skipped.

    Args:
      path: the text file (UTF-8, an optional byte-order mark), one row per line.

    Returns:
      A float64 array of shape ``(rows, columns)``, and the header names or ``None``.

    Raises:
      FileNotFoundError: if there is no file at ``path``.
      ValueError: if the file is not UTF-8, is empty, has a header and no rows, has a row
        whose number of fields differs (naming the line), or a field that is not a number
        (naming line and column).
    """
    return _read_csv(_existing(path))


def read_csv_with_text(
    path: str | os.PathLike[str], column: str
) -> tuple[np.ndarray, list[str], tuple[str, ...]]:
    """Read a CSV with a header whose column ``column`` may hold text (class names such as
    ``setosa``) and whose other columns hold numbers.

    Returns:
      The other columns as a float64 array ``(rows, columns - 1)``, the fields of ``column``
      as written (stripped of spaces and quotes), and the header.

    Raises:
      FileNotFoundError, ValueError: as :func:`read_csv`; a field that is not a number outside
        ``column`` names its line and column.
    """
    path = _existing(path)
    lines = _lines(path)
    if not lines:
        raise ValueError(f"{path}: empty file; expected rows of numbers separated by commas")
    _check_widths(path, lines)
    header = _names(lines[0][1].split(","))
    rows = lines[1:]
    if not rows:
        raise ValueError(f"{path}: has a header line but no rows of numbers")
    if column not in header:
        raise ValueError(f"{path}: no column {column!r}; the columns are {', '.join(header)}")
    index = header.index(column)
    texts, others = [], []
    for number, line in rows:
        fields = line.split(",")
        texts.append(fields.pop(index).strip().strip('"'))
        others.append((number, ",".join(fields)))
    try:
        table = np.loadtxt(
            [line for _, line in others], dtype=np.float64, comments=None, delimiter=",", ndmin=2
        )
    except ValueError:
        _raise_for_bad_field(path, [(n, _with_column(line, index)) for n, line in others])
        raise
    table = table.reshape(len(rows), len(header) - 1)
    _refuse_non_finite(path, rows, table, texts, index)
    return table, texts, header


def _refuse_non_finite(
    path: Path, rows: list[tuple[int, str]], table: np.ndarray, texts: list[str], index: int
) -> None:
    """A NaN or Inf in a training file is named by its line and column, as every other bad
    field is (a net cannot train on it; ``from_arrays`` would only know the array's row)."""
    bad = [(row, col + (col >= index)) for row, col in np.argwhere(~np.isfinite(table))]
    bad += [
        (row, index)
        for row, text in enumerate(texts)
        if is_number(text) and not np.isfinite(float(text))
    ]
    if bad:
        row, column = min(bad)
        number, line = rows[row]
        field = line.split(",")[column].strip()
        raise ValueError(
            f"{path}: line {number}, column {column + 1}: {field!r} is not a finite number"
        )


def _with_column(line: str, index: int) -> str:
    """``line`` with a number put back at ``index``, so that a bad field's column is counted
    as in the file."""
    fields = line.split(",")
    fields.insert(index, "0")
    return ",".join(fields)


def read_features(
    path: str | os.PathLike[str], names: Sequence[str], *, target: str | None = None
) -> np.ndarray:
    """The features of a CSV, by name: its columns put in the order of ``names`` (the feature
    columns a model was trained on), its ``target`` column left out whatever it holds.

    A file without a header is read by position, as :func:`read_arrays` reads it.

    Raises:
      ValueError: a feature of ``names`` missing from the header, or a column that is neither
        a feature nor the target, naming it and the model's columns.
    """
    header = csv_header(path)
    if header is None:
        return read_arrays(path)["x"]
    if target is not None and target in header:
        table, _, _ = read_csv_with_text(path, target)
        columns = [name for name in header if name != target]
    else:
        table, _ = read_csv(path)
        columns = list(header)
    trained = ", ".join(names)
    missing = [name for name in names if name not in columns]
    if missing:
        raise ValueError(
            f"{path}: no column {missing[0]!r}; the model was trained on the columns {trained}"
        )
    unknown = [name for name in columns if name not in names]
    if unknown:
        raise ValueError(
            f"{path}: column {unknown[0]!r} is not one the model was trained on ({trained}); "
            "remove it"
        )
    return table[:, [columns.index(name) for name in names]]


def csv_header(path: str | os.PathLike[str]) -> tuple[str, ...] | None:
    """The header names of a CSV file, or None when its first line is all numbers.

    Raises:
      FileNotFoundError, ValueError: no file, not UTF-8, or empty.
    """
    path = _existing(path)
    lines = _lines(path)
    if not lines:
        raise ValueError(f"{path}: empty file; expected rows of numbers separated by commas")
    first = lines[0][1].split(",")
    return None if all(map(is_number, first)) else _names(first)


def _existing(path: str | os.PathLike[str]) -> Path:
    """``path`` as a ``Path``, after checking that a file is there."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    return path


def _suffix(path: Path) -> str:
    """The file's suffix in lower case, after checking that it is one of ``SUFFIXES``."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"{path}: unknown file type {suffix!r}; expected {', '.join(SUFFIXES)}")
    return suffix


def _split_label(
    path: Path, table: np.ndarray, names: tuple[str, ...] | None
) -> dict[str, np.ndarray]:
    """``{"x": features, "y": labels}`` by the header's label column; ``{"x": table}`` without."""
    header = names or ()
    labels = [i for i, name in enumerate(header) if name.lower() in LABEL_COLUMNS]
    if not labels:
        return {"x": table}
    if len(labels) > 1:
        found = ", ".join(header[i] for i in labels)
        raise ValueError(f"{path}: several label columns ({found}); keep one")
    if table.shape[1] == 1:
        raise ValueError(f"{path}: the label column is the only column; x would be empty")
    (label,) = labels
    return {"x": np.delete(table, label, axis=1), "y": table[:, label].copy()}


def _read_numpy(path: Path) -> dict[str, np.ndarray]:
    """Every array of a ``.npz`` file by name, or a ``.npy`` file's array as ``x``."""
    suffix = path.suffix.lower()
    with path.open("rb") as file:  # our own handle: np.load leaks its own when a zip is bad
        _check_magic(path, suffix, file)
        try:
            loaded = np.load(file, allow_pickle=False)
            if isinstance(loaded, np.ndarray):
                return {"x": loaded}
            with loaded:
                arrays = {name: loaded[name] for name in loaded.files}
        except ValueError as err:
            if "allow_pickle" in str(err):  # the header passed: numpy refused an object array
                raise ValueError(
                    f"{path}: holds Python objects, which jaxnet never unpickles; "
                    "save numeric arrays"
                ) from err
            raise _damaged(path, suffix, err) from err
        except (EOFError, OSError, zipfile.BadZipFile) as err:
            raise _damaged(path, suffix, err) from err
    if not arrays:
        raise ValueError(f"{path}: holds no arrays")
    return arrays


def _check_magic(path: Path, suffix: str, file: IO[bytes]) -> None:
    """Check that the file starts as a ``.npy`` or ``.npz`` file must; rewind it."""
    magic = file.read(len(_NPY_MAGIC))
    file.seek(0)
    if suffix == ".npy" and magic != _NPY_MAGIC:
        raise _damaged(path, suffix, "no NumPy header")
    if suffix == ".npz" and not magic.startswith(_ZIP_MAGICS):
        raise _damaged(path, suffix, "not a zip archive")


def _damaged(path: Path, suffix: str, reason: object) -> ValueError:
    """The one-line error for a NumPy file that cannot be read."""
    return ValueError(f"{path}: not a readable {suffix} file ({' '.join(str(reason).split())})")


def _read_csv(path: Path) -> tuple[np.ndarray, tuple[str, ...] | None]:
    """``read_csv`` for a path known to be a file."""
    lines = _lines(path)
    if not lines:
        raise ValueError(f"{path}: empty file; expected rows of numbers separated by commas")
    _check_widths(path, lines)
    first = lines[0][1].split(",")
    header = None if all(map(is_number, first)) else _names(first)
    rows = lines if header is None else lines[1:]
    if not rows:
        raise ValueError(f"{path}: has a header line but no rows of numbers")
    try:
        table = np.loadtxt(
            [line for _, line in rows], dtype=np.float64, comments=None, delimiter=",", ndmin=2
        )
    except ValueError:
        _raise_for_bad_field(path, rows)
        raise  # is_number accepted what numpy did not: let numpy's own message through
    return table, header


def _names(fields: list[str]) -> tuple[str, ...]:
    """Header names: fields without spaces or quotes, and without the ``#`` of ``np.savetxt``."""
    fields = [fields[0].removeprefix("#"), *fields[1:]]
    return tuple(field.strip().strip('"') for field in fields)


def _lines(path: Path) -> list[tuple[int, str]]:
    """The file's non-blank lines, stripped, with their 1-based line numbers."""
    try:
        with path.open(encoding="utf-8-sig") as file:
            numbered = [(number, line.strip()) for number, line in enumerate(file, start=1)]
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not a UTF-8 text file ({err.reason})") from err
    return [(number, line) for number, line in numbered if line]


def _check_widths(path: Path, lines: list[tuple[int, str]]) -> None:
    """Check that every line has as many comma-separated fields as the first."""
    first_number, first = lines[0]
    width = first.count(",") + 1
    for number, line in lines:
        if line.count(",") + 1 != width:
            raise ValueError(
                f"{path}: line {number} has {line.count(',') + 1} fields, "
                f"expected {width} as on line {first_number}"
            )


def _raise_for_bad_field(path: Path, rows: list[tuple[int, str]]) -> None:
    """Raise for the first field that is not a number, naming its line and column."""
    for number, line in rows:
        for column, field in enumerate(line.split(","), start=1):
            if not is_number(field):
                raise ValueError(
                    f"{path}: line {number}, column {column}: {field.strip()!r} is not a number"
                )


def is_number(field: str) -> bool:
    """Whether ``np.loadtxt`` reads ``field`` as a number.

    Python's ``float`` also takes underscores (``1_0``) and non-ASCII digits; numpy does not.
    """
    if not field.isascii() or "_" in field:
        return False
    try:
        float(field)
    except ValueError:
        return False
    return True
