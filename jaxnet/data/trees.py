"""Features that are a tuple or a dict of arrays (the inputs of a net shaped like a graph).

A feature tree is one array, or a tuple or dict (string keys) of feature trees; every part has
the same number of rows. These helpers keep a tree's order (a dict keeps its keys' order, which
``jax.tree`` would sort) and name parts the way a user indexes them: ``x['left']``, ``x[0]``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np


def is_tree(x: Any) -> bool:
    """Whether ``x`` is a tuple or dict of parts rather than one array (a tuple of plain numbers
    or lists is array-like, as before: a tuple is a tree when every part is an array or a
    tree)."""
    if isinstance(x, Mapping):
        return True
    return isinstance(x, tuple) and bool(x) and all(_is_part(p) for p in x)


def _is_part(x: Any) -> bool:
    """An array, a tree, or any other object (a per-part :class:`Preprocessing`), but not the
    numbers and lists of an array-like."""
    scalar = int | float | complex | str | bytes | list | np.generic
    return x is not None and (hasattr(x, "shape") or not isinstance(x, scalar))


def check_tree(x: Any, what: str = "x") -> None:
    """Raise for an empty tuple or dict, or a dict key that is not a string (recursively)."""
    if isinstance(x, Mapping):
        if not x:
            raise ValueError(f"{what} is an empty dict of arrays; give at least one part")
        bad = [key for key in x if not isinstance(key, str)]
        if bad:
            raise TypeError(f"{what}: the keys of a dict of arrays must be strings, got {bad[0]!r}")
        for key, part in x.items():
            check_tree(part, f"{what}[{key!r}]")
    elif isinstance(x, tuple) and (not x or is_tree(x)):
        if not x:
            raise ValueError(f"{what} is an empty tuple of arrays; give at least one part")
        for i, part in enumerate(x):
            check_tree(part, f"{what}[{i}]")


def tree_map(fn: Callable[..., Any], tree: Any, *rest: Any) -> Any:
    """``fn`` on every array of ``tree`` (and the matching parts of ``rest``), in order."""
    if isinstance(tree, Mapping):
        return {key: tree_map(fn, part, *(r[key] for r in rest)) for key, part in tree.items()}
    if isinstance(tree, tuple) and is_tree(tree):
        return tuple(tree_map(fn, part, *(r[i] for r in rest)) for i, part in enumerate(tree))
    return fn(tree, *rest)


def named_parts(tree: Any, what: str = "x") -> list[tuple[str, Any]]:
    """``(name, array)`` for every array of ``tree``: ``("x['left']", ...)``, ``("x[0]", ...)``."""
    if isinstance(tree, Mapping):
        return [p for key, part in tree.items() for p in named_parts(part, f"{what}[{key!r}]")]
    if isinstance(tree, tuple) and is_tree(tree):
        return [p for i, part in enumerate(tree) for p in named_parts(part, f"{what}[{i}]")]
    return [(what, tree)]


def leaves(tree: Any) -> list[Any]:
    """The arrays of ``tree``, in order."""
    return [part for _, part in named_parts(tree)]


def num_rows(tree: Any, what: str = "x") -> int:
    """The number of rows all parts share.

    Raises:
      ValueError: ``x: every part must have the same number of rows, got x['left'] with 10 and
        x['right'] with 9``.
    """
    parts = named_parts(tree, what)
    rows = [len(part) for _, part in parts]
    for (name, _), n in zip(parts, rows, strict=True):
        if n != rows[0]:
            raise ValueError(
                f"{what}: every part must have the same number of rows, got {parts[0][0]} with "
                f"{rows[0]} and {name} with {n}"
            )
    return rows[0]


def same_structure(tree: Any, like: Any) -> bool:
    """Whether ``tree`` has the tuple lengths and dict keys of ``like`` (keys in any order: a
    dict is looked up by key, and ``jax.jit`` hands dicts back with their keys sorted)."""
    if isinstance(like, Mapping):
        return (
            isinstance(tree, Mapping)
            and set(tree) == set(like)
            and all(same_structure(tree[k], like[k]) for k in like)
        )
    if isinstance(like, tuple) and is_tree(like):
        return (
            isinstance(tree, tuple | list)
            and len(tree) == len(like)
            and all(same_structure(t, part) for t, part in zip(tree, like, strict=True))
        )
    return not isinstance(tree, Mapping) and not (isinstance(tree, tuple) and is_tree(tree))


def ordered_like(tree: Any, like: Any) -> Any:
    """``tree``'s parts in ``like``'s structure: dict keys in ``like``'s order (jax sorts a
    dict's keys when it flattens it, so a tree whose keys came in another order is rebuilt
    as ``like``). ``tree`` must have ``like``'s structure (:func:`same_structure`)."""
    return tree_map(lambda _, part: part, like, tree)


def structure(tree: Any) -> str:
    """A tree's structure for messages: ``(array, array)``, ``{'left': array, 'right': array}``."""
    if isinstance(tree, Mapping):
        return "{" + ", ".join(f"{k!r}: {structure(v)}" for k, v in tree.items()) + "}"
    if isinstance(tree, tuple | list) and tree and all(_is_part(p) for p in tree):
        return "(" + ", ".join(structure(p) for p in tree) + ("," if len(tree) == 1 else "") + ")"
    return "array" if hasattr(tree, "shape") else type(tree).__name__


def as_numpy(tree: Any) -> Any:
    """Every part as a NumPy array (for jax arrays, read back)."""
    return tree_map(np.asarray, tree)


def batched_shape(feature_shape: Any, batch: int | None = None) -> Any:
    """The input shape (tree) of a batch: ``(batch, *feature_shape)`` for every part."""
    from jaxnet.shapes import map_shapes

    return map_shapes(lambda shape: (batch, *shape), feature_shape)


def batch_spec(x: Any, batch: int) -> Any:
    """``jax.ShapeDtypeStruct`` of a ``batch``-row batch shaped like the arrays of ``x``."""
    import jax

    return tree_map(lambda a: jax.ShapeDtypeStruct((batch, *a.shape[1:]), a.dtype), x)
