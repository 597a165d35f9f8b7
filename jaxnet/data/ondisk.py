"""``OnDisk``: a dataset whose features stay in a memory-mapped file.

``from_arrays`` returns one when ``x`` is an ``np.memmap`` (``np.load(path, mmap_mode="r")``).
Nothing is read into memory up front: the split is by index, the standardization statistics
come from one streaming pass over the training rows (float64 sums, merged chunk by chunk),
and ``fit`` streams it: each epoch a Grain ``MapDataset`` shuffles the training indices and
each batch gathers its rows (sorted, for locality), standardizes them and hands them to the
prefetching thread. A ``.npy`` file's rows are read with positional reads (``os.preadv``), not
through the mapping: a mapped page, once touched, counts in the process's resident memory (and
the kernel maps whole large folios around it, up to 2 MB a row), while a read leaves it in the
page cache only. So the resident memory stays near a few batches however large the file is.
Other memmaps (a view into a file) are gathered through the mapping, whose pages are released
(``madvise``) after every 128 MB that may have been mapped.
"""

from __future__ import annotations

import dataclasses
import mmap
import os
import weakref
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from jaxnet.data.preprocessing import Preprocessing
from jaxnet.data.stream import Stream, stream

_STATS_BYTES = 1 << 25
"""Bytes of float64 per chunk of the statistics pass (32 MB: a few copies of it are alive)."""
_RELEASE_BYTES = 128 << 20
"""Mapped bytes gathered between two releases of the pages: a random row maps its own pages
and, by the kernel's fault-around, up to 64 KB about it, so that is what each row counts."""
_FAULT_AROUND = 64 << 10


def _mapping(x: np.memmap) -> mmap.mmap | None:
    """The ``mmap`` under ``x`` (views of a memmap share it), unless it is copy-on-write:
    releasing private pages would lose edits."""
    if getattr(x, "mode", "r") == "c":
        return None
    return getattr(x, "_mmap", None)


@dataclasses.dataclass(frozen=True, eq=False)
class OnDisk:
    """A train/validation/test split of memory-mapped features, read batch by batch.

    Attributes:
      name, task, num_classes, feature_shape, feature_mean, feature_std, target_names,
      origin: as on :class:`jaxnet.data.Dataset`.
      x: the memory-mapped features, shape ``(n, *feature_shape)``, raw units.
      y: the labels or targets of every row, in memory (int32 ``(n,)`` or float32 ``(n, t)``).
      train, val, test: sorted row indices of each part.

    Example:
      >>> import numpy as np, pathlib, tempfile
      >>> path = pathlib.Path(tempfile.mkdtemp()) / "x.npy"
      >>> np.save(path, np.arange(40, dtype=np.float32).reshape(20, 2))
      >>> from jaxnet.data import from_arrays
      >>> on_disk = from_arrays(np.load(path, mmap_mode="r"), np.arange(20) % 2, val_fraction=0.2)
      >>> on_disk.num_train, on_disk.num_val, on_disk.num_test, type(on_disk.x).__name__
      (12, 4, 4, 'memmap')
    """

    name: str
    task: str
    x: np.memmap
    y: np.ndarray
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    num_classes: int | None
    feature_shape: tuple[int, ...]
    feature_mean: np.ndarray
    feature_std: np.ndarray
    target_names: tuple[str, ...] | None = None
    origin: Mapping[str, Any] | None = None

    @property
    def num_train(self) -> int:
        """The number of training rows."""
        return len(self.train)

    @property
    def num_val(self) -> int:
        """The number of validation rows."""
        return len(self.val)

    @property
    def num_test(self) -> int:
        """The number of test rows."""
        return len(self.test)

    @property
    def preprocessing(self) -> Preprocessing:
        """The standardization fitted on the training rows, for the run folder."""
        return Preprocessing(self.feature_shape, "float32", self.feature_mean, self.feature_std)

    def rows(
        self, index: np.ndarray, reader: RowReader | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rows ``index`` (sorted first, for locality) as standardized float32 features and
        their labels or targets, read by ``reader`` (a new one by default)."""
        index = np.sort(np.asarray(index))
        x = (reader or RowReader(self.x))(index).astype(np.float32, copy=False)  # a new array
        x -= self.feature_mean  # in place: a batch of a wide file is megabytes
        x /= self.feature_std
        return x, self.y[index]

    def stream(
        self,
        batch_size: int,
        *,
        seed: int = 0,
        eval_batch_size: int = 1024,
        shard: tuple[int, int] = (0, 1),
    ) -> Stream:
        """The :class:`Stream` ``fit`` trains on: each epoch the training rows in a new order
        (a Grain ``MapDataset`` shuffled by ``seed`` and the epoch), ``batch_size`` rows a
        batch, the rest of the shuffle left out; validation and test rows in order.

        Args:
          batch_size: rows per training batch (per process with several).
          seed: seeds the shuffles.
          eval_batch_size: rows per evaluation batch.
          shard: ``(index, count)``: read only every ``count``-th row from ``index`` of each
            split (one shard per process).

        Raises:
          ImportError: without the ``grain`` extra.
          ValueError: if the (sharded) training split holds fewer than ``batch_size`` rows.
        """
        grain = _grain()
        index, count = shard
        train, val, test = (part[index::count] for part in (self.train, self.val, self.test))
        if len(train) < batch_size:
            raise ValueError(
                f"batch_size={batch_size} is larger than the {len(train)} training rows "
                f"{'of this process' if count > 1 else ''}".rstrip()
            )
        reader = RowReader(self.x)

        def gather(positions: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return self.rows(rows[positions], reader)

        def epoch_order(epoch: int) -> Any:
            order = grain.MapDataset.range(len(train)).shuffle(seed=_epoch_seed(seed, epoch))
            batches = order.batch(batch_size, drop_remainder=True)
            return batches.map(lambda positions: gather(positions, train))

        def in_order(rows: np.ndarray) -> _Batches | None:
            if not len(rows):
                return None
            batches = grain.MapDataset.range(len(rows)).batch(eval_batch_size)
            order = batches.map(lambda positions: gather(positions, rows))
            return _Batches(lambda epoch: order, len(order))

        epoch_batches = _Batches(epoch_order, len(train) // batch_size)
        return stream(
            epoch_batches,
            val=in_order(val),
            test=in_order(test),
            task=self.task,
            num_classes=self.num_classes,
            preprocessing=self.preprocessing,
            name=self.name,
        )


class _Batches:
    """One pass of a ``MapDataset`` of batches per epoch, read in order by index: no reading
    ahead beyond ``fit``'s own prefetching (iterating a ``MapDataset`` directly would buffer
    hundreds of batches in threads), and ``len()`` tells ``fit`` the pass's length."""

    def __init__(self, make: Callable[[int], Any], length: int) -> None:
        self.make, self.length = make, length

    def __len__(self) -> int:
        return self.length

    def __call__(self, epoch: int) -> Iterator[Any]:
        batches = self.make(epoch)
        return (batches[i] for i in range(len(batches)))


def _epoch_seed(seed: int, epoch: int) -> int:
    """One shuffle seed per (seed, epoch), well apart for nearby seeds."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


class RowReader:
    """Reads rows of a memory-mapped array by index: with ``os.preadv`` from its file when it
    is a whole ``.npy`` array (C order, starting at its header's offset), else through the
    mapping, released every ``_RELEASE_BYTES`` that may have been mapped."""

    def __init__(self, x: np.memmap) -> None:
        self.x, self.mapped = x, 0
        self.row_bytes = int(np.prod(x.shape[1:])) * x.dtype.itemsize
        self.mapping = _mapping(x)
        self.fd: int | None = None
        layout = _file_layout(x)
        if layout is not None:
            self.fd, self.offset = os.open(layout[0], os.O_RDONLY), layout[1]
            weakref.finalize(self, os.close, self.fd)  # closed with the reader

    def __call__(self, index: np.ndarray) -> np.ndarray:
        """``x[index]`` for a sorted ``index``, as a new array."""
        if self.fd is None:
            self.mapped += len(index) * (self.row_bytes + _FAULT_AROUND)
            out = np.asarray(self.x[index])
            if self.mapped >= _RELEASE_BYTES:
                release(self.mapping)
                self.mapped = 0
            return out
        out = np.empty((len(index), *self.x.shape[1:]), self.x.dtype)
        flat = out.reshape(len(index), -1).view(np.uint8)  # (rows, row_bytes)
        runs = np.flatnonzero(np.diff(index) != 1) + 1  # consecutive rows: one read each run
        for start, stop in zip(np.r_[0, runs], np.r_[runs, len(index)], strict=True):
            view = flat[start:stop].data.cast("B")
            position = self.offset + int(index[start]) * self.row_bytes
            if os.preadv(self.fd, [view], position) != len(view):
                raise OSError(f"{self.x.filename}: file ends before row {index[stop - 1]}")
        return out


def _file_layout(x: np.memmap) -> tuple[str, int] | None:
    """``(path, offset)`` of the rows of a whole C-order memmap, or None (a view, Fortran
    order, no file name): then it is read through the mapping."""
    filename, offset = getattr(x, "filename", None), getattr(x, "offset", None)
    if filename is None or offset is None or not x.flags.c_contiguous or x.base is None:
        return None
    start = offset - offset % mmap.ALLOCATIONGRANULARITY  # where numpy's mapping begins
    mapping = _mapping(x)
    if mapping is None:
        return None
    base = np.frombuffer(mapping, np.uint8).ctypes.data
    if x.ctypes.data != base + (offset - start) or len(mapping) < x.nbytes + offset - start:
        return None  # a view that starts elsewhere in the file
    return str(filename), int(offset)


def release(mapping: mmap.mmap | None) -> None:
    """Drop the mapping's pages from this process's resident set (``MADV_DONTNEED``)."""
    if mapping is not None and hasattr(mmap, "MADV_DONTNEED"):
        mapping.madvise(mmap.MADV_DONTNEED)


def _grain() -> Any:
    try:
        import grain
    except ImportError:
        raise ImportError(
            "memory-mapped data streams through Grain, which is not installed: "
            "pip install 'jaxnet-functional[grain]'"
        ) from None
    return grain


def streaming_stats(
    x: np.memmap, rows: np.ndarray, *, standardize: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature float32 mean and std of ``x[rows]`` (sorted) in one pass of 32 MB chunks
    (Chan's merge of float64 means and sums of squares), checking every value is finite.

    Raises:
      ValueError: ``x contains non-finite values (NaN or Inf); the first is in row 17``.
    """
    shape = x.shape[1:]
    if not standardize:
        return np.zeros(shape, np.float32), np.ones(shape, np.float32)
    count, mean, m2 = 0, np.zeros(shape), np.zeros(shape)
    reader = RowReader(x)
    step = max(1, _STATS_BYTES // (8 * max(1, int(np.prod(shape)))))
    for start in range(0, len(rows), step):
        part = rows[start : start + step]
        chunk = np.asarray(reader(part), np.float64)
        bad = ~np.isfinite(chunk.reshape(len(chunk), -1)).all(axis=1)
        if bad.any():
            raise ValueError(
                "x contains non-finite values (NaN or Inf); the first is in row "
                f"{int(part[np.argmax(bad)])}"
            )
        n, chunk_mean = len(chunk), chunk.mean(axis=0)
        chunk_m2 = ((chunk - chunk_mean) ** 2).sum(axis=0)
        delta, total = chunk_mean - mean, count + n
        mean = mean + delta * n / total
        m2 = m2 + chunk_m2 + delta**2 * count * n / total
        count = total
    std = np.sqrt(m2 / count)
    std = np.where(std < 1e-6, 1.0, std)  # constant features: divide by 1, as from_arrays does
    return mean.astype(np.float32), std.astype(np.float32)
