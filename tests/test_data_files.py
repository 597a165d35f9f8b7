"""Data files: .npy, .npz and .csv read back exactly, and every way a file can be wrong."""

import os
import re
from pathlib import Path

import numpy as np
import pytest

from jaxnet.data import files


def _exactly(path: Path, text: str) -> str:
    """A ``match=`` pattern for the whole one-line message ``"{path}: {text}"``."""
    return f"^{re.escape(f'{path}: {text}')}$"


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- round trips


@pytest.mark.parametrize(
    "array",
    [np.random.default_rng(0).normal(size=(5, 3)), np.arange(12, dtype=np.int32).reshape(3, 2, 2)],
)
def test_npy_round_trip(tmp_path: Path, array: np.ndarray) -> None:
    np.save(tmp_path / "inputs.npy", array)
    for path in (tmp_path / "inputs.npy", str(tmp_path / "inputs.npy")):
        back = files.read_array(path)
        assert back.dtype == array.dtype and np.array_equal(back, array)
    assert list(files.read_arrays(tmp_path / "inputs.npy")) == ["x"]


def test_suffixes_are_case_insensitive(tmp_path: Path) -> None:
    np.save(tmp_path / "inputs.npy", np.ones(3))
    (tmp_path / "inputs.npy").rename(tmp_path / "INPUTS.NPY")
    assert np.array_equal(files.read_array(tmp_path / "INPUTS.NPY"), np.ones(3))


def test_npz_round_trip_reads_x_and_every_array_by_name(tmp_path: Path) -> None:
    x, y = np.random.default_rng(1).normal(size=(4, 2)), np.array([0, 1, 1, 0])
    np.savez_compressed(tmp_path / "data.npz", y=y, x=x)
    assert np.array_equal(files.read_array(tmp_path / "data.npz"), x)
    arrays = files.read_arrays(tmp_path / "data.npz")
    assert sorted(arrays) == ["x", "y"]
    assert np.array_equal(arrays["x"], x) and np.array_equal(arrays["y"], y)
    assert arrays["y"].dtype == y.dtype


def test_npz_with_one_array_not_named_x_reads_that_array(tmp_path: Path) -> None:
    np.savez(tmp_path / "data.npz", features=np.arange(6.0))
    assert np.array_equal(files.read_array(tmp_path / "data.npz"), np.arange(6.0))


def test_csv_round_trip_is_exact(tmp_path: Path) -> None:
    table = np.random.default_rng(2).normal(size=(6, 3)) * 1e3
    np.savetxt(tmp_path / "x.csv", table, delimiter=",", fmt="%.17g")
    back, names = files.read_csv(tmp_path / "x.csv")
    assert names is None and back.dtype == np.float64 and np.array_equal(back, table)
    assert np.array_equal(files.read_array(tmp_path / "x.csv"), table)


@pytest.mark.parametrize(
    ("text", "shape"), [("1\n2\n3\n", (3, 1)), ("1,2,3\n", (1, 3)), ("7", (1, 1))]
)
def test_csv_is_always_two_dimensional(tmp_path: Path, text: str, shape: tuple[int, int]) -> None:
    assert files.read_array(_write(tmp_path / "x.csv", text)).shape == shape


def test_csv_header_is_detected_and_skipped(tmp_path: Path) -> None:
    path = _write(tmp_path / "x.csv", ' a , "b" ,c\n1,2,3\n\n4,5.5,-6e-3\n')
    table, names = files.read_csv(path)
    assert names == ("a", "b", "c")
    assert np.array_equal(table, [[1, 2, 3], [4, 5.5, -6e-3]])
    assert np.array_equal(files.read_array(path), table)


def test_csv_header_from_savetxt_loses_its_hash(tmp_path: Path) -> None:
    np.savetxt(tmp_path / "x.csv", np.eye(2), delimiter=",", header="p,q")  # writes "# p,q"
    table, names = files.read_csv(tmp_path / "x.csv")
    assert names == ("p", "q") and np.array_equal(table, np.eye(2))


def test_csv_with_windows_line_ends_and_a_byte_order_mark(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_bytes(b"\xef\xbb\xbfa,b\r\n1,2\r\n3,4\r\n")
    table, names = files.read_csv(tmp_path / "x.csv")
    assert names == ("a", "b") and np.array_equal(table, [[1, 2], [3, 4]])


@pytest.mark.parametrize("field", ["nan", "inf", "-Infinity", " 1.5 ", "+.5", "1E+05", "5."])
def test_csv_numbers_numpy_reads(tmp_path: Path, field: str) -> None:
    table, names = files.read_csv(_write(tmp_path / "x.csv", f"0,{field}\n"))
    assert names is None and np.array_equal(table, [[0, float(field)]], equal_nan=True)


def test_read_csv_takes_any_suffix(tmp_path: Path) -> None:
    table, _ = files.read_csv(_write(tmp_path / "x.txt", "1,2\n"))
    assert np.array_equal(table, [[1, 2]])


# ----------------------------------------------------------------------------- labelled CSV


@pytest.mark.parametrize("label", ["y", "label", "Target"])
def test_read_arrays_splits_off_the_label_column(tmp_path: Path, label: str) -> None:
    path = _write(tmp_path / "data.csv", f"a,{label},b\n1,0,2\n3,1,4\n5,2,6\n")
    arrays = files.read_arrays(path)
    assert sorted(arrays) == ["x", "y"]
    assert np.array_equal(arrays["x"], [[1, 2], [3, 4], [5, 6]])
    assert arrays["y"].shape == (3,) and np.array_equal(arrays["y"], [0, 1, 2])
    assert files.read_array(path).shape == (3, 3)  # read_array keeps every column


@pytest.mark.parametrize("text", ["1,2\n3,4\n", "a,b\n1,2\n3,4\n"])
def test_read_arrays_without_a_label_column_is_all_x(tmp_path: Path, text: str) -> None:
    arrays = files.read_arrays(_write(tmp_path / "data.csv", text))
    assert list(arrays) == ["x"] and np.array_equal(arrays["x"], [[1, 2], [3, 4]])


def test_several_label_columns_are_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "data.csv", "a,y,label\n1,2,3\n")
    with pytest.raises(
        ValueError, match=_exactly(path, "several label columns (y, label); keep one")
    ):
        files.read_arrays(path)


def test_a_label_column_alone_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "data.csv", "y\n1\n2\n")
    message = "the label column is the only column; x would be empty"
    with pytest.raises(ValueError, match=_exactly(path, message)):
        files.read_arrays(path)


# ----------------------------------------------------------------------------- any file


@pytest.mark.parametrize("read", [files.read_array, files.read_arrays, files.read_csv])
def test_missing_file(tmp_path: Path, read) -> None:
    for path in (tmp_path / "nothing.npy", tmp_path):  # a folder is no file either
        with pytest.raises(FileNotFoundError, match=_exactly(path, "no such file")):
            read(path)


@pytest.mark.parametrize("name", ["inputs.json", "inputs"])
def test_unknown_suffix(tmp_path: Path, name: str) -> None:
    path = _write(tmp_path / name, "[1, 2]")
    suffix = repr(Path(name).suffix)
    message = f"unknown file type {suffix}; expected .npy, .npz, .csv"
    for read in (files.read_array, files.read_arrays):
        with pytest.raises(ValueError, match=_exactly(path, message)):
            read(path)


# ----------------------------------------------------------------------------- damaged NumPy files


def _truncated(tmp_path: Path, keep: int) -> Path:
    np.save(tmp_path / "inputs.npy", np.arange(10.0))
    path = tmp_path / "inputs.npy"
    path.write_bytes(path.read_bytes()[:keep])
    return path


@pytest.mark.parametrize(
    ("keep", "reason"),
    [
        (3, "no NumPy header"),
        (20, "EOF: reading array header"),
        (-8, "Failed to read all data for array"),
    ],
)
def test_truncated_npy(tmp_path: Path, keep: int, reason: str) -> None:
    path = _truncated(tmp_path, keep)
    with pytest.raises(ValueError, match=f"^{re.escape(f'{path}: not a readable .npy file (')}"):
        files.read_array(path)
    with pytest.raises(ValueError) as raised:
        files.read_arrays(path)
    assert reason in str(raised.value) and "\n" not in str(raised.value)


def test_text_named_npy(tmp_path: Path) -> None:
    path = _write(tmp_path / "inputs.npy", "1,2,3\n")
    with pytest.raises(
        ValueError, match=_exactly(path, "not a readable .npy file (no NumPy header)")
    ):
        files.read_array(path)


def test_not_a_zip_named_npz(tmp_path: Path) -> None:
    np.save(tmp_path / "inputs.npy", np.ones(2))
    path = (tmp_path / "inputs.npy").rename(tmp_path / "inputs.npz")
    message = "not a readable .npz file (not a zip archive)"
    with pytest.raises(ValueError, match=_exactly(path, message)):
        files.read_array(path)


def test_truncated_npz(tmp_path: Path) -> None:
    path = tmp_path / "data.npz"
    np.savez(path, x=np.arange(100.0), y=np.arange(100))
    path.write_bytes(path.read_bytes()[:-30])  # the zip's central directory is gone
    message = "not a readable .npz file (File is not a zip file)"
    with pytest.raises(ValueError, match=_exactly(path, message)):
        files.read_arrays(path)


def test_npz_without_arrays(tmp_path: Path) -> None:
    np.savez(tmp_path / "empty.npz")
    path = tmp_path / "empty.npz"
    with pytest.raises(ValueError, match=_exactly(path, "holds no arrays")):
        files.read_array(path)


def test_npz_with_several_arrays_and_no_x(tmp_path: Path) -> None:
    np.savez(tmp_path / "data.npz", a=np.ones(2), b=np.zeros(2), c=np.ones(1))
    path = tmp_path / "data.npz"
    message = "holds several arrays (a, b, c) and none named 'x'"
    with pytest.raises(ValueError, match=_exactly(path, message)):
        files.read_array(path)
    assert sorted(files.read_arrays(path)) == ["a", "b", "c"]


class _Tripwire:
    """Unpickling this makes the folder ``self.marker``, so a test sees whether it happened."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


_OBJECTS = "holds Python objects, which jaxnet never unpickles; save numeric arrays"


def test_object_npy_is_refused_without_unpickling(tmp_path: Path) -> None:
    marker = tmp_path / "unpickled"
    path = tmp_path / "inputs.npy"
    np.save(path, np.array([_Tripwire(marker), 1], dtype=object), allow_pickle=True)
    for read in (files.read_array, files.read_arrays):
        with pytest.raises(ValueError, match=_exactly(path, _OBJECTS)):
            read(path)
    assert not marker.exists()
    np.load(path, allow_pickle=True)  # the tripwire is armed: unpickling does make the folder
    assert marker.is_dir()


def test_object_array_in_npz_is_refused_without_unpickling(tmp_path: Path) -> None:
    marker = tmp_path / "unpickled"
    path = tmp_path / "data.npz"
    np.savez(path, x=np.ones(2), y=np.array([_Tripwire(marker)], dtype=object))
    for read in (files.read_array, files.read_arrays):
        with pytest.raises(ValueError, match=_exactly(path, _OBJECTS)):
            read(path)
    assert not marker.exists()


# ----------------------------------------------------------------------------- broken CSV


@pytest.mark.parametrize("text", ["", "\n  \n\n"])
def test_empty_csv(tmp_path: Path, text: str) -> None:
    path = _write(tmp_path / "x.csv", text)
    message = "empty file; expected rows of numbers separated by commas"
    with pytest.raises(ValueError, match=_exactly(path, message)):
        files.read_csv(path)


def test_csv_with_a_header_and_no_rows(tmp_path: Path) -> None:
    path = _write(tmp_path / "x.csv", "a,b\n\n")
    with pytest.raises(
        ValueError, match=_exactly(path, "has a header line but no rows of numbers")
    ):
        files.read_array(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1,2,3\n4,5,6\n\n7,8\n", "line 4 has 2 fields, expected 3 as on line 1"),
        ("\na,b\n1,2,3\n", "line 3 has 3 fields, expected 2 as on line 2"),
        ("1,2\n3,4,\n", "line 2 has 3 fields, expected 2 as on line 1"),
    ],
)
def test_ragged_csv(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path / "x.csv", text)
    with pytest.raises(ValueError, match=_exactly(path, message)):
        files.read_csv(path)


@pytest.mark.parametrize("field", ["abc", "", "1_0", "١", "1d5", '"1"', "0x10"])
def test_non_numeric_field_below_the_header(tmp_path: Path, field: str) -> None:
    path = _write(tmp_path / "x.csv", f"a,b,c\n1,2,3\n4,5,{field}\n")
    message = f"line 3, column 3: {field.strip()!r} is not a number"
    with pytest.raises(ValueError, match=_exactly(path, message)):
        files.read_csv(path)


def test_csv_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(b"1,2\n\xff\xfe,3\n")
    with pytest.raises(
        ValueError, match=_exactly(path, "not a UTF-8 text file (invalid start byte)")
    ):
        files.read_csv(path)
