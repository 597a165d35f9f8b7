"""``Preprocessing``: what raw inputs go through before the net sees them.

A net trained on standardized features gives plausible but wrong answers on raw ones, with no
error. So the map fitted on the training split (today the standardization of
:func:`jaxnet.data.from_arrays`) travels with the model: a run folder stores it in
``model.json``, ``predict`` applies it, and an exported artifact contains it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpy.typing as npt

from jaxnet.data.trees import (
    check_tree,
    is_tree,
    leaves,
    named_parts,
    same_structure,
    structure,
    tree_map,
)

DTYPES = ("float32", "int32")
"""What a net may take: float features, or integer ids (tokens, which are never standardized)."""


@dataclasses.dataclass(frozen=True, eq=False)  # eq=False: ``==`` on arrays has no single answer
class Preprocessing:
    """The map from raw inputs to what the net was trained on: ``(x − mean) / std``.

    Attributes:
      feature_shape: the shape of one raw example, e.g. ``(64,)``.
      dtype: ``"float32"`` or ``"int32"`` (ids), the dtype the net takes.
      mean: float32 array of shape ``feature_shape`` subtracted from raw features (finite);
        ``None`` for no standardization.
      std: float32 array of shape ``feature_shape`` dividing centred features (finite, > 0);
        ``None`` with ``mean``.

    Example:
      >>> import numpy as np
      >>> p = Preprocessing((2,), "float32", np.array([1.0, 2.0], np.float32),
      ...                   np.array([2.0, 4.0], np.float32))
      >>> p(np.array([[3.0, 6.0]]))
      Array([[1., 1.]], dtype=float32)
    """

    feature_shape: tuple[int, ...]
    dtype: str = "float32"
    mean: np.ndarray | None = None
    std: np.ndarray | None = None

    def __post_init__(self) -> None:
        shape = tuple(self.feature_shape)
        if not all(
            isinstance(d, int | np.integer) and not isinstance(d, bool) and d > 0 for d in shape
        ):
            raise ValueError(f"Preprocessing: feature_shape must be positive ints, got {shape!r}")
        object.__setattr__(self, "feature_shape", tuple(int(d) for d in shape))
        if self.dtype not in DTYPES:
            raise ValueError(f"Preprocessing: dtype must be one of {DTYPES}, got {self.dtype!r}")
        if (self.mean is None) != (self.std is None):
            raise ValueError("Preprocessing: give both mean and std, or neither")
        if self.mean is None or self.std is None:
            return
        for name in ("mean", "std"):
            value = np.asarray(getattr(self, name), np.float32)
            if value.shape != self.feature_shape:
                raise ValueError(
                    f"Preprocessing: {name} must have shape {self.feature_shape}, got {value.shape}"
                )
            if not np.isfinite(value).all() or (name == "std" and not (value > 0).all()):
                need = "finite and > 0" if name == "std" else "finite"
                raise ValueError(f"Preprocessing: every {name} must be {need}")
            object.__setattr__(self, name, value)

    @classmethod
    def of(cls, data: Any) -> Preprocessing | TreePreprocessing:
        """The preprocessing of a :class:`jaxnet.data.Dataset`: its dtype, and its
        standardization unless that is the identity (``standardize=False``, token ids); for
        tuple or dict features, a :class:`TreePreprocessing` of one per part."""
        if is_tree(data.x_train):
            return TreePreprocessing.of(data)
        return cls._of(data.x_train, data.feature_shape, data.feature_mean, data.feature_std)

    @classmethod
    def _of(cls, x_train: Any, feature_shape: Any, mean: Any, std: Any) -> Preprocessing:
        data = _Part(x_train, feature_shape, mean, std)
        dtype = "int32" if np.issubdtype(data.x_train.dtype, np.integer) else "float32"
        mean = np.asarray(data.feature_mean, np.float32)
        std = np.asarray(data.feature_std, np.float32)
        if not mean.any() and (std == 1).all():
            return cls(tuple(data.feature_shape), dtype)
        return cls(tuple(data.feature_shape), dtype, mean, std)

    def __call__(self, x: jax.typing.ArrayLike) -> jax.Array:
        """Raw inputs ``(batch, *feature_shape)`` as the net's inputs; pure, so it traces under
        ``jit`` and ``jax.export``."""
        x = jnp.asarray(x).astype(self.dtype)
        if self.mean is None or self.std is None:
            return x
        k = x.ndim - len(self.feature_shape)  # leading axes: (batch,)
        mean = jnp.asarray(self.mean).reshape((1,) * k + self.mean.shape)
        std = jnp.asarray(self.std).reshape((1,) * k + self.std.shape)
        return (x - mean) / std

    def check(self, x: npt.ArrayLike, *, what: str = "x") -> np.ndarray:
        """Raw inputs as a NumPy array of :attr:`dtype`, after checking rank, shape and dtype.

        Raises:
          ValueError: ``x: expected inputs of shape (n, 64), got (63,) ...``; or non-integer
            values for a net that takes ids; or non-finite values.
          TypeError: for a dtype that holds no numbers (strings, objects).
        """
        arr = np.asarray(x)
        expected = f"(n, {', '.join(map(str, self.feature_shape))})"
        if arr.ndim != 1 + len(self.feature_shape) or arr.shape[1:] != self.feature_shape:
            hint = (
                " (one example? add a batch axis: x[None])"
                if arr.shape == self.feature_shape
                else ""
            )
            raise ValueError(f"{what}: expected inputs of shape {expected}, got {arr.shape}{hint}")
        if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_) or np.iscomplexobj(
            arr
        ):
            raise TypeError(f"{what}: expected real numbers, got dtype {arr.dtype}")
        if self.dtype == "int32":
            return _as_ids(arr, what)
        if not np.isfinite(arr).all():
            raise ValueError(f"{what}: holds NaN or Inf (first in row {_first_bad_row(arr)})")
        if arr.dtype == np.float32:
            return arr
        with np.errstate(over="ignore"):
            arr = arr.astype(np.float32)
        if not np.isfinite(arr).all():
            row = _first_bad_row(arr)
            raise ValueError(f"{what}: a value beyond float32's range (first in row {row})")
        return arr

    def to_json(self) -> dict[str, Any]:
        """The preprocessing as JSON values (float32 values written exactly)."""
        entry: dict[str, Any] = {"feature_shape": list(self.feature_shape), "dtype": self.dtype}
        if self.mean is not None and self.std is not None:
            entry["standardize"] = {"mean": _floats(self.mean), "std": _floats(self.std)}
        return entry

    def transform(self, x: npt.ArrayLike) -> np.ndarray:
        """:meth:`check` then the map, in NumPy."""
        return np.asarray(self(self.check(x)))

    @classmethod
    def from_json(cls, entry: Mapping[str, Any]) -> Preprocessing | TreePreprocessing:
        """The inverse of :meth:`to_json` (and of :meth:`TreePreprocessing.to_json`).

        Raises:
          ValueError: for a malformed entry (naming the key).
        """
        if isinstance(entry, Mapping) and "parts" in entry:
            return TreePreprocessing.from_json(entry)
        try:
            shape = tuple(int(d) for d in entry["feature_shape"])
            standardize = entry.get("standardize")
            if standardize is None:
                return cls(shape, entry["dtype"])
            mean = np.asarray(standardize["mean"], np.float32).reshape(shape)
            std = np.asarray(standardize["std"], np.float32).reshape(shape)
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(
                f"preprocessing: malformed entry ({type(error).__name__}: {error})"
            ) from None
        return cls(shape, entry["dtype"], mean, std)


def _first_bad_row(arr: np.ndarray) -> int:
    return int(np.flatnonzero(~np.isfinite(arr).reshape(len(arr), -1).all(axis=1))[0])


def _as_ids(arr: np.ndarray, what: str) -> np.ndarray:
    """Integer ids as int32; floats only when they hold whole numbers."""
    if (
        np.issubdtype(arr.dtype, np.floating)
        and not (np.isfinite(arr) & (arr == np.round(arr))).all()
    ):
        raise ValueError(
            f"{what}: the net takes integer ids (int32), got dtype {arr.dtype} with fractions"
        )
    if arr.size and (arr.min() < np.iinfo(np.int32).min or arr.max() > np.iinfo(np.int32).max):
        raise ValueError(f"{what}: ids outside the int32 range")
    return arr.astype(np.int32)


def _floats(values: np.ndarray) -> list[Any]:
    """A float32 array as nested lists of Python floats (``repr`` round-trips float32)."""
    return np.asarray(values, np.float32).astype(np.float64).tolist()


@dataclasses.dataclass(frozen=True)
class _Part:
    """One part's arrays, shaped like a Dataset for :meth:`Preprocessing.of`."""

    x_train: Any
    feature_shape: Any
    feature_mean: Any
    feature_std: Any


@dataclasses.dataclass(frozen=True, eq=False)
class TreePreprocessing:
    """The preprocessing of features that are a tuple or dict of arrays: one
    :class:`Preprocessing` per part, applied part by part.

    Attributes:
      parts: a tuple or dict (string keys) of :class:`Preprocessing` (or of such trees).

    Example:
      >>> import numpy as np
      >>> p = TreePreprocessing({"a": Preprocessing((1,)), "b": Preprocessing((2,), "int32")})
      >>> p.feature_shape, p.dtype
      ({'a': (1,), 'b': (2,)}, {'a': 'float32', 'b': 'int32'})
    """

    parts: Any

    def __post_init__(self) -> None:
        check_tree(self.parts, "TreePreprocessing: parts")
        if not is_tree(self.parts) or not all(
            isinstance(p, Preprocessing) for p in leaves(self.parts)
        ):
            raise TypeError(
                "TreePreprocessing: parts must be a tuple or dict of Preprocessing, got "
                f"{type(self.parts).__name__}"
            )

    @classmethod
    def of(cls, data: Any) -> TreePreprocessing:
        """One :class:`Preprocessing` per part of a Dataset with tuple or dict features."""
        return cls(
            tree_map(
                Preprocessing._of,
                data.x_train,
                data.feature_shape,
                data.feature_mean,
                data.feature_std,
            )
        )

    @property
    def feature_shape(self) -> Any:
        """The tree of the parts' ``feature_shape``."""
        return tree_map(lambda p: p.feature_shape, self.parts)

    @property
    def dtype(self) -> Any:
        """The tree of the parts' dtypes."""
        return tree_map(lambda p: p.dtype, self.parts)

    def __call__(self, x: Any) -> Any:
        """Raw inputs (a tree like :attr:`parts`) as the net's inputs, part by part; pure."""
        self._check_structure(x, "x")
        return tree_map(lambda p, part: p(part), self.parts, x)

    def _check_structure(self, x: Any, what: str) -> None:
        if not same_structure(x, self.parts):
            from jaxnet.data.trees import batched_shape
            from jaxnet.shapes import format_shape

            shapes = format_shape(batched_shape(self.feature_shape))
            hint = ""
            if isinstance(self.parts, dict) and isinstance(x, tuple | list):
                keys = ", ".join(f"{key!r}: ..." for key in self.parts)
                hint = f"; this model takes its inputs by name: pass a dict {{{keys}}}"
            raise ValueError(f"{what}: expected inputs shaped {shapes}, got {structure(x)}{hint}")

    def check(self, x: Any, *, what: str = "x") -> Any:
        """Raw inputs as a tree of NumPy arrays, each part checked by its
        :meth:`Preprocessing.check` (named ``x['left']``), all with the same number of rows.

        Raises:
          ValueError: for a different structure, or as :meth:`Preprocessing.check`, or parts
            with different numbers of rows.
        """
        from jaxnet.data.trees import num_rows

        if isinstance(x, list):
            x = tuple(x)
        self._check_structure(x, what)
        names = iter(name for name, _ in named_parts(self.parts, what))
        out = tree_map(lambda p, part: p.check(part, what=next(names)), self.parts, x)
        num_rows(out, what)
        return out

    def transform(self, x: Any) -> Any:
        """:meth:`check` then the map, in NumPy."""
        return tree_map(np.asarray, self(self.check(x)))

    def to_json(self) -> dict[str, Any]:
        """``{"parts": [...]}`` for a tuple, ``{"parts": {key: ...}}`` for a dict."""
        if isinstance(self.parts, Mapping):
            return {"parts": {k: _part_json(p) for k, p in self.parts.items()}}
        return {"parts": [_part_json(p) for p in self.parts]}

    @classmethod
    def from_json(cls, entry: Mapping[str, Any]) -> TreePreprocessing:
        """The inverse of :meth:`to_json`."""
        parts = entry["parts"]
        if isinstance(parts, Mapping):
            return cls({str(k): _part_from_json(v) for k, v in parts.items()})
        if isinstance(parts, list) and parts:
            return cls(tuple(_part_from_json(v) for v in parts))
        raise ValueError(
            f"preprocessing: malformed entry (parts must be a list or object, got {parts!r})"
        )


def _part_json(part: Any) -> dict[str, Any]:
    return part.to_json() if isinstance(part, Preprocessing | TreePreprocessing) else {}


def _part_from_json(entry: Any) -> Any:
    if not isinstance(entry, Mapping):
        raise ValueError(
            f"preprocessing: malformed entry (a part must be an object, got {entry!r})"
        )
    found = Preprocessing.from_json(entry)
    return found.parts if isinstance(found, TreePreprocessing) else found
