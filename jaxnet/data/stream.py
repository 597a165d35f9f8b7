"""``Stream``: batches from outside memory, for ``fit``'s streaming path.

A :class:`jaxnet.data.Dataset` lives in memory and ``fit`` puts it on the device whole. A
``Stream`` is for data that does not fit: any source of ``(x, y)`` NumPy batches, read one
batch at a time while the device trains. A source is one of

* an iterable (a list, a generator function's result, a Grain ``MapDataset`` /
  ``IterDataset`` / ``DataLoader``);
* a function ``epoch -> iterable``, for a source that shuffles differently each epoch (the
  function must give the same batches for the same epoch: that is what makes a resume exact).

An epoch is one pass over the source (``iter(source)`` or ``source(epoch)``), or, with
``steps_per_epoch=N``, the next ``N`` batches of one iterator that runs through the whole fit
(an endless source, or a Grain loader with ``num_epochs=None``). Such an iterator's position
is saved with each checkpoint when it has one (Grain's ``get_state()``), so a resume sets it
there; otherwise a resume reads the batches already trained on again and drops them.

A batch's ``x`` is one array, or a tuple or dict of arrays (the inputs of a net of several
inputs, :func:`jaxnet.graph`), each with the batch's examples as rows.

Every batch is checked on the host before it reaches the device: the same shapes and dtypes
as the first batch (and, for a tuple or dict, the same parts), finite features, labels in
range. A bad batch is one error naming the source, the epoch, the batch and the part.
"""

from __future__ import annotations

import base64
import dataclasses
import itertools
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np

from jaxnet.data.preprocessing import Preprocessing, TreePreprocessing
from jaxnet.data.trees import (
    check_tree,
    is_tree,
    named_parts,
    ordered_like,
    same_structure,
    tree_map,
)
from jaxnet.shapes import format_shape, map_shapes

Batch = tuple[Any, np.ndarray]
"""``(x, y)``: ``x`` one array, or a tuple or dict of arrays; ``y`` the labels or targets."""
Source = Iterable[Any] | Callable[[int], Iterable[Any]]
"""An iterable of ``(x, y)`` batches, or a function from the epoch number to one."""


class StreamError(ValueError):
    """A streamed batch is malformed, or a source raised or ran dry; the message names the
    source (``train``, ``val``, ``test``), the epoch and the batch.

    Attributes:
      args: the one-line message, as for any ``ValueError``.

    Example:
      >>> import numpy as np
      >>> try:
      ...     stream([(np.zeros((2, 3)), np.zeros(3))])
      ... except StreamError as error:
      ...     print(error)
      stream: train batch 0: x and y must hold the same number (> 0) of examples, got 2 and 3
    """


@dataclasses.dataclass(frozen=True, eq=False)
class BatchSpec:
    """What every batch of a stream looks like, read off its first training batch.

    Attributes:
      x_shape, y_shape: the shapes of a batch's features ``(B, *feature_shape)`` and labels;
        for features that are a tuple or dict of arrays, ``x_shape`` is a tuple or dict of
        such shapes.
      x_dtype, y_dtype: what they are cast to: float32 (or int32 ids) and int32 labels (or
        float32 targets); ``x_dtype`` is a tuple or dict like ``x_shape``'s for tree features.

    Example:
      >>> import numpy as np
      >>> spec_of((np.zeros((4, 3)), np.arange(4))).x_shape
      (4, 3)
    """

    x_shape: Any  # (B, *feature_shape), or a tuple or dict of them
    x_dtype: Any  # np.dtype, or a tuple or dict of them
    y_shape: tuple[int, ...]  # (B, ...)
    y_dtype: np.dtype[Any]

    @property
    def batch_size(self) -> int:
        return self.y_shape[0]

    @property
    def feature_shape(self) -> Any:
        """One example's shape: ``x_shape`` without the batch axis (for every part)."""
        return map_shapes(lambda shape: shape[1:], self.x_shape)

    @property
    def x_bytes(self) -> int:
        """The bytes of one batch's features (all parts)."""
        parts = zip(_shape_parts(self.x_shape), _dtype_parts(self.x_dtype), strict=True)
        return sum(int(np.prod(shape)) * dtype.itemsize for shape, dtype in parts)


def _shape_parts(shapes: Any) -> list[tuple[int, ...]]:
    """The shapes of a shape tree, in order (a batch's shapes: no unknown sizes)."""
    out: list[tuple[int, ...]] = []
    map_shapes(lambda shape: out.append(tuple(int(d or 0) for d in shape)), shapes)
    return out


def _dtype_parts(dtypes: Any) -> list[np.dtype[Any]]:
    return [dtype for _, dtype in named_parts(dtypes)]


@dataclasses.dataclass(frozen=True, eq=False)
class Stream:
    """Training (and optionally validation and test) batches that ``fit`` streams.

    Build it with :func:`stream`, which checks the arguments and reads the first batch.

    Attributes:
      train: the training source (see the module docstring).
      val: the validation source, evaluated after every epoch (``val_*`` in the history,
        what the best checkpoint and early stopping look at), or None.
      test: the test source, evaluated after every epoch and only reported, or None.
      steps_per_epoch: None (an epoch is one pass of the source), or the number of batches of
        one running iterator that make an epoch.
      spec: the shapes and dtypes of the training batches (from the first one).
      task: ``"classification"`` (integer labels) or ``"regression"`` (float targets).
      num_classes: labels must lie in ``[0, num_classes)``; None: up to the net's outputs.
      preprocessing: the map from raw inputs to the batches' features, stored with the model
        (identity by default: the batches are what the net takes).
      name: a name for messages and the run folder.
      target_names: class or target names, if known.
      origin: how the stream was made, when it can be made again (see ``from_arrays``).

    Example:
      >>> import numpy as np
      >>> batches = [(np.zeros((4, 2), np.float32), np.array([0, 1, 0, 1]))] * 3
      >>> s = stream(batches)
      >>> [x.shape for x, _ in s.batches("train", epoch=0)]
      [(4, 2), (4, 2), (4, 2)]
    """

    train: Source
    val: Source | None
    test: Source | None
    steps_per_epoch: int | None
    spec: BatchSpec
    task: str
    num_classes: int | None
    preprocessing: Preprocessing | TreePreprocessing
    name: str = "stream"
    target_names: tuple[str, ...] | None = None
    origin: Mapping[str, Any] | None = None

    @property
    def feature_shape(self) -> Any:
        """The shape of one example's features (a tuple or dict of shapes for tree features)."""
        return self.spec.feature_shape

    @property
    def batch_size(self) -> int:
        """The examples per training batch."""
        return self.spec.batch_size

    def batches(self, split: str, epoch: int) -> Iterator[Batch]:
        """The checked batches of ``split`` for ``epoch`` (one pass). Raises
        :class:`StreamError` naming the batch for a malformed one."""
        source = {"train": self.train, "val": self.val, "test": self.test}[split]
        if source is None:
            return iter(())
        return self._checked(split, epoch, _open(source, epoch), start=0)

    def running(
        self,
        *,
        skip: int = 0,
        position: Mapping[str, Any] | None = None,
        saved_in: str = "the checkpoint",
    ) -> Running:
        """The one training iterator of a ``steps_per_epoch`` stream, from batch ``skip`` (the
        batches a resumed run has trained on are left out): set to ``position`` (what
        :func:`iterator_position` gave at that batch, e.g. Grain's iterator state) when the
        iterator can be, else by reading the first ``skip`` batches and dropping them.

        Raises:
          StreamError: the iterator refused ``position`` (its pipeline changed), naming
            ``saved_in``, the file it was read from.
        """
        source = _open(self.train, 0)
        if position is None or not _set_position(source, position, saved_in):
            source = _skipped(source, skip)
        return Running(self._checked("train", None, source, start=skip), source)

    def _checked(
        self, split: str, epoch: int | None, batches: Iterator[Any], *, start: int
    ) -> Iterator[Batch]:
        try:
            for index in itertools.count(start):
                where = _where(split, epoch, index)
                try:
                    batch = next(batches)
                except StopIteration:
                    return
                except Exception as error:
                    raise StreamError(
                        f"{where}: the source raised {type(error).__name__}: {error}"
                    ) from error
                yield check_batch(batch, self.spec, self, where=where, eval_split=split != "train")
        finally:  # stop a Grain pipeline's worker processes now, not at garbage collection
            close = getattr(batches, "close", None)
            if callable(close):
                close()


def _where(split: str, epoch: int | None, index: int) -> str:
    at = f"{split} batch {index}" if epoch is None else f"{split} batch {index} of epoch {epoch}"
    return f"stream: {at}"


def _open(source: Source, epoch: int) -> Iterator[Any]:
    """A fresh iterator over ``source`` for ``epoch``."""
    if callable(source) and not hasattr(source, "__iter__"):
        source = source(epoch)
    if type(source).__module__.startswith("grain"):
        _absl_flags_for_grain()
    return iter(source)


def _absl_flags_for_grain() -> None:
    """Grain's worker processes read absl flags, which only an absl program parses: outside
    one they fail with ``UnparsedFlagAccessError``. Mark the flags parsed (at their defaults),
    once, unless the program parsed them itself."""
    from absl import flags

    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()


class _Peeked:
    """A one-shot iterator whose first item `stream` has read, with that item put back in
    front (and ``close`` passed through, to stop a Grain pipeline's workers)."""

    def __init__(self, first: Any, rest: Iterator[Any]) -> None:
        self._first, self._pending, self._rest = first, True, rest

    def __iter__(self) -> _Peeked:
        return self

    def __next__(self) -> Any:
        if self._pending:
            first, self._first, self._pending = self._first, None, False
            return first
        return next(self._rest)

    def close(self) -> None:
        close = getattr(self._rest, "close", None)
        if callable(close):
            close()


class _PeekedWithState(_Peeked):
    """`_Peeked` over an iterator with Grain's ``get_state`` / ``set_state``: its position is
    the iterator's once the item read ahead has been handed out; setting it drops that item."""

    def get_state(self) -> Any:
        return None if self._pending else self._rest.get_state()  # type: ignore[attr-defined]

    def set_state(self, state: Any) -> None:
        self._rest.set_state(state)  # type: ignore[attr-defined]
        self._first, self._pending = None, False


def _peeked(first: Any, rest: Iterator[Any]) -> _Peeked:
    stateful = all(callable(getattr(rest, name, None)) for name in ("get_state", "set_state"))
    return (_PeekedWithState if stateful else _Peeked)(first, rest)


class Running(NamedTuple):
    """A running training iterator: its checked ``batches``, and the ``source`` iterator
    beneath them, whose position :func:`iterator_position` reads."""

    batches: Iterator[Batch]
    source: Iterator[Any]


def iterator_position(iterator: Any) -> dict[str, Any] | None:
    """Where a resumable iterator stands, as a JSON object: Grain's ``get_state()`` (a dict
    for a dataset iterator, JSON bytes for a ``DataLoader``'s), or None for an iterator
    without one or a state that is not JSON."""
    get_state = getattr(iterator, "get_state", None)
    if not callable(get_state):
        return None
    state = get_state()
    if state is None:
        return None
    if isinstance(state, bytes):
        return {"bytes": base64.b64encode(state).decode("ascii")}
    try:  # a copy: an iterator may hand out its live state, which moves on with it
        return {"state": json.loads(json.dumps(state, allow_nan=False))}
    except (TypeError, ValueError):
        return None


def _set_position(iterator: Any, position: Mapping[str, Any], saved_in: str) -> bool:
    """Set ``iterator`` to an :func:`iterator_position` (read from ``saved_in``); False if it
    has no ``set_state``."""
    set_state = getattr(iterator, "set_state", None)
    if not callable(set_state) or not ("bytes" in position or "state" in position):
        return False
    state = base64.b64decode(position["bytes"]) if "bytes" in position else position["state"]
    try:
        set_state(state)
    except Exception as error:
        reason = (str(error).splitlines() or [""])[0]
        raise StreamError(
            f"stream: the train iterator refused the position saved in {saved_in} "
            f"({type(error).__name__}: {reason}); was the pipeline changed?"
        ) from error
    return True


def _skipped(batches: Iterator[Any], skip: int) -> Iterator[Any]:
    """``batches`` without their first ``skip``, which are read and dropped (a resume's
    ``steps_per_epoch`` iterator re-reads the batches already trained on)."""
    if skip:
        next(itertools.islice(batches, skip, skip), None)
    return batches


def _as_pair(batch: Any, where: str) -> Batch:
    """A batch as ``(x, y)`` NumPy arrays (``x`` a tuple or dict of them for tree features):
    a pair, or a dict with ``"x"`` and ``"y"``."""
    if isinstance(batch, Mapping) and "x" in batch and "y" in batch:
        batch = (batch["x"], batch["y"])
    if not isinstance(batch, tuple | list) or len(batch) != 2:
        raise StreamError(
            f"{where}: a batch must be a pair (x, y) of arrays or a dict with 'x' and 'y', "
            f"got {type(batch).__name__}"
        )
    x = batch[0]
    if is_tree(x):
        try:
            check_tree(x, "x")
        except (TypeError, ValueError) as error:
            raise StreamError(f"{where}: {error}") from None
        x = tree_map(np.asarray, x)
        return x, _as_array(batch[1], "y", where)
    return _as_array(x, "x", where), _as_array(batch[1], "y", where)


def _as_array(value: Any, name: str, where: str) -> np.ndarray:
    """``value`` as a NumPy array, or a StreamError naming the batch (a list of arrays of
    different shapes, say: several inputs are a tuple or dict, not a list)."""
    try:
        return np.asarray(value)
    except (TypeError, ValueError) as error:
        reason = (str(error).splitlines() or [""])[0]
        raise StreamError(
            f"{where}: {name} is not one array ({reason}); give several inputs as a tuple or "
            "dict of arrays"
        ) from None


def _parts(x: Any, y: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """``(name, array)`` for every part of ``x`` (``x``, ``x['left']``, ``x[0]``), then ``y``."""
    return [*named_parts(x, "x"), ("y", y)]


def _names(x: Any, what: str = "x") -> Any:
    """A tree like ``x`` holding each part's name: ``"x"``, ``{"left": "x['left']", ...}``."""
    if isinstance(x, Mapping):
        return {key: _names(part, f"{what}[{key!r}]") for key, part in x.items()}
    if isinstance(x, tuple) and is_tree(x):
        return tuple(_names(part, f"{what}[{i}]") for i, part in enumerate(x))
    return what


def _shapes(x: Any) -> Any:
    return tree_map(lambda a: a.shape, x)


def spec_of(batch: Any, *, where: str = "stream: train batch 0") -> BatchSpec:
    """The :class:`BatchSpec` of a first batch, after checking it holds numbers."""
    x, y = _as_pair(batch, where)
    for name, arr in _parts(x, y):
        if arr.ndim == 0:
            raise StreamError(f"{where}: {name} must have a batch axis, got a scalar")
        if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
            raise StreamError(f"{where}: {name} must hold numbers, got dtype {arr.dtype}")
    for name, arr in named_parts(x, "x"):
        if len(arr) != len(y) or len(arr) == 0:
            raise StreamError(
                f"{where}: {name} and y must hold the same number (> 0) of examples, got "
                f"{len(arr)} and {len(y)}"
            )
    x_shape = _shapes(x)
    x_dtype = tree_map(lambda a: _feature_dtype(a.dtype), x)
    return BatchSpec(x_shape, x_dtype, y.shape, _target_dtype(y.dtype))


def _feature_dtype(dtype: np.dtype[Any]) -> np.dtype[Any]:
    return np.dtype(np.int32) if np.issubdtype(dtype, np.integer) else np.dtype(np.float32)


def _target_dtype(dtype: np.dtype[Any]) -> np.dtype[Any]:
    integer = np.issubdtype(dtype, np.integer) or dtype == np.bool_
    return np.dtype(np.int32) if integer else np.dtype(np.float32)


def check_batch(
    batch: Any, spec: BatchSpec, stream: Stream, *, where: str, eval_split: bool = False
) -> Batch:
    """``batch`` as ``(x, y)`` in the stream's dtypes, after checking it: the shapes of the
    first batch (evaluation batches may have fewer examples), finite features, and labels in
    ``[0, num_classes)``.

    Raises:
      StreamError: ``stream: train batch 7 of epoch 2: x has shape (64, 63), but the first
        batch had (64, 64)``, and the like.
    """
    x, y = _as_pair(batch, where)
    if not same_structure(x, spec.x_dtype):
        raise StreamError(
            f"{where}: x has shape {format_shape(_shapes(x))}, but the first training batch "
            f"had {format_shape(spec.x_shape)}; every batch must have the same parts"
        )
    x = ordered_like(x, spec.x_dtype)  # dict keys in the first batch's order
    x_shapes = _shape_parts(_shapes(x))
    first = (_shape_parts(spec.x_shape), spec.y_shape)
    same = (x_shapes, y.shape) == first
    if not same and eval_split:  # a smaller last batch is fine for evaluation
        same = [s[1:] for s in x_shapes] == [s[1:] for s in first[0]]
        same = same and y.shape[1:] == spec.y_shape[1:] and len(y) > 0
        same = same and all(s[0] == len(y) for s in x_shapes)
    if not same:
        smaller = len(y) < spec.batch_size or min(s[0] for s in x_shapes) < spec.batch_size
        hint = " (drop a smaller last batch: drop_remainder=True)" if smaller else ""
        raise StreamError(
            f"{where}: x has shape {format_shape(_shapes(x))} and y {y.shape}, but the first "
            f"training batch had {format_shape(spec.x_shape)} and {spec.y_shape}; every "
            f"training batch must have the same shapes{hint}"
        )
    x = tree_map(lambda a, dtype, name: _cast(a, dtype, name, where), x, spec.x_dtype, _names(x))
    y = _cast(y, spec.y_dtype, "y", where)
    if stream.num_classes is not None and stream.task == "classification":
        outside = np.flatnonzero((y < 0) | (y >= stream.num_classes))
        if outside.size:
            i = outside[0]
            raise StreamError(
                f"{where}: label {y.reshape(-1)[i]} at position {i} is outside "
                f"[0, num_classes={stream.num_classes})"
            )
    return x, y


def _cast(arr: np.ndarray, dtype: np.dtype[Any], name: str, where: str) -> np.ndarray:
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise StreamError(f"{where}: {name} must hold numbers, got dtype {arr.dtype}")
    if np.issubdtype(dtype, np.integer) and not (
        np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_
    ):
        raise StreamError(
            f"{where}: {name} has dtype {arr.dtype}, but the first batch had integers"
        )
    with np.errstate(over="ignore", invalid="ignore"):
        out = arr.astype(dtype, copy=False)
    if dtype == np.float32 and not np.isfinite(out).all():
        row = int(np.flatnonzero(~np.isfinite(out.reshape(len(out), -1)).all(axis=1))[0])
        raise StreamError(f"{where}: {name} holds NaN or Inf (first in example {row})")
    return out


def _first(source: Source, *, one_shot: bool) -> Any:
    """The first training batch, read from a fresh iterator, which is then closed (but for a
    one-shot iterator, which is the source itself)."""
    batches = _open(source, 0)
    try:
        return next(batches)
    except StopIteration:
        raise StreamError("stream: the train source yielded no batches") from None
    except Exception as error:
        raise StreamError(
            f"stream: train batch 0 of epoch 0: the source raised {type(error).__name__}: {error}"
        ) from error
    finally:
        close = getattr(batches, "close", None)
        if not one_shot and callable(close):
            close()


def stream(
    train: Source,
    *,
    val: Source | None = None,
    test: Source | None = None,
    steps_per_epoch: int | None = None,
    task: str | None = None,
    num_classes: int | None = None,
    preprocessing: Preprocessing | TreePreprocessing | None = None,
    name: str = "stream",
) -> Stream:
    """A :class:`Stream` of ``(x, y)`` NumPy batches for :func:`jaxnet.train.fit`.

    Args:
      train: an iterable of batches (a list, a Grain ``MapDataset`` / ``IterDataset`` /
        ``DataLoader`` that yields ``(x, y)`` or ``{"x": ..., "y": ...}``), or a function
        ``epoch -> iterable``. It is iterated once here, for its first batch: a one-shot
        iterator (a generator) is only allowed with ``steps_per_epoch``, and must be made
        again by the caller on resume.
      val: validation batches, the same kinds; evaluated after every epoch.
      test: test batches; evaluated after every epoch, only reported.
      steps_per_epoch: None (an epoch is one pass over ``train``) or a positive int: an
        epoch is the next that many batches of one iterator running through the fit.
      task: ``"classification"`` or ``"regression"``; None infers it from the labels' dtype.
      num_classes: for classification, the labels' range ``[0, num_classes)``, checked in
        every batch; None leaves it to the net's output width.
      preprocessing: the map from raw inputs to the batches' features, which a run folder
        stores so predictions on raw inputs are right (a :class:`TreePreprocessing` for tuple
        or dict features); None: the batches are raw inputs.
      name: the stream's name.

    Returns:
      The ``Stream``.

    Raises:
      StreamError: if ``train`` is empty, raises, or its first batch is not a pair of numeric
        arrays with the same number of examples.
      TypeError, ValueError: for bad arguments.

    Example:
      >>> import numpy as np
      >>> x, y = np.zeros((8, 3), np.float32), np.arange(8) % 2
      >>> s = stream([(x[:4], y[:4]), (x[4:], y[4:])], num_classes=2)
      >>> s.batch_size, s.feature_shape, s.task
      (4, (3,), 'classification')
    """
    for arg, value in (("train", train), ("val", val), ("test", test)):
        if value is not None and not (callable(value) or hasattr(value, "__iter__")):
            raise TypeError(
                f"stream: {arg} must be an iterable of (x, y) batches or a function "
                f"epoch -> iterable, got {type(value).__name__}"
            )
    if train is None:
        raise TypeError("stream: train must be an iterable of (x, y) batches, got None")
    one_shot = iter(train) is train if hasattr(train, "__iter__") else False
    if one_shot and steps_per_epoch is None:
        raise ValueError(
            "stream: train is a one-shot iterator (a generator), so it cannot be passed over "
            "once per epoch; give steps_per_epoch=N, or a list, a Grain dataset or a "
            "function epoch -> iterable"
        )
    if steps_per_epoch is not None and (
        isinstance(steps_per_epoch, bool)
        or not isinstance(steps_per_epoch, int | np.integer)
        or steps_per_epoch < 1
    ):
        raise ValueError(f"stream: steps_per_epoch must be a positive int, got {steps_per_epoch!r}")
    first = _first(train, one_shot=one_shot)
    if one_shot:  # keep the batch read, in front of the rest
        train = _peeked(first, train)  # type: ignore[arg-type]
    spec = spec_of(first)
    task = task or ("classification" if spec.y_dtype == np.int32 else "regression")
    if task not in ("classification", "regression"):
        raise ValueError(f"stream: task must be 'classification' or 'regression', got {task!r}")
    if num_classes is not None and (
        isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1
    ):
        raise ValueError(f"stream: num_classes must be a positive int, got {num_classes!r}")
    preprocessing = _preprocessing(preprocessing, spec)
    return Stream(
        train=train,
        val=val,
        test=test,
        steps_per_epoch=None if steps_per_epoch is None else int(steps_per_epoch),
        spec=spec,
        task=task,
        num_classes=num_classes,
        preprocessing=preprocessing,
        name=name,
    )


def _preprocessing(
    preprocessing: Preprocessing | TreePreprocessing | None, spec: BatchSpec
) -> Preprocessing | TreePreprocessing:
    """The stream's preprocessing: as given, after checking it takes the batches' features, or
    the identity on them (one per part for tuple or dict features)."""
    if preprocessing is None:
        identity = tree_map(
            lambda shape, dtype: Preprocessing(shape, str(dtype)), spec.feature_shape, spec.x_dtype
        )
        return TreePreprocessing(identity) if is_tree(spec.x_dtype) else identity
    if not isinstance(preprocessing, Preprocessing | TreePreprocessing):
        raise TypeError(
            "stream: preprocessing must be a jn.data.Preprocessing (or TreePreprocessing), got "
            f"{type(preprocessing).__name__}"
        )
    if preprocessing.feature_shape != spec.feature_shape:
        raise ValueError(
            f"stream: preprocessing takes features of shape "
            f"{format_shape(preprocessing.feature_shape)}, but the batches' features have "
            f"{format_shape(spec.feature_shape)}"
        )
    dtypes = tree_map(str, spec.x_dtype)
    if preprocessing.dtype != dtypes:
        raise ValueError(
            f"stream: preprocessing gives features of dtype {preprocessing.dtype}, but the "
            f"batches' features are {dtypes}"
        )
    return preprocessing
