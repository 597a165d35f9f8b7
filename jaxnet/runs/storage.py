"""How a checkpoint's arrays are stored: leaves by tree path, in orbax's PyTree format.

A pytree (a `TrainState`) is flattened into its leaves, each named by its tree path
(``"params/dense_0/w"``, ``"opt_state/0/mu/dense_0/w"``, ``"key"``). Orbax stores them as the
nested dict of those paths, so orbax's own restore and metadata tools show the real names::

    >>> import orbax.checkpoint as ocp                                  # doctest: +SKIP
    >>> ocp.PyTreeCheckpointer().metadata("run/checkpoints/3/arrays")   # doctest: +SKIP
    {'params': {'dense_0': {'w': ArrayMetadata(shape=(64, 128), ...)}}, ...}

Checkpoints of the first format (``jaxnet.checkpoint/1``) stored the leaves as a flat dict
``{"0": leaf_0, "1": leaf_1, ...}`` in the manifest's order; they are still read.

Orbax cannot store typed PRNG keys, so a key leaf is stored as its `jax.random.key_data`
(uint32) and its implementation name goes into the manifest (see `Leaf`).
"""

from __future__ import annotations

import pathlib
from typing import Any, NamedTuple

import jax
import numpy as np

PyTree = Any
Shape = tuple[int, ...]

ARRAYS = "arrays"  # the orbax checkpoint inside a step folder


class Leaf(NamedTuple):
    """One saved leaf as the manifest describes it."""

    shape: Shape
    dtype: str  # str(dtype): "float32", "int32", "key<fry>" for a typed PRNG key
    key_impl: str | None  # PRNG implementation of a typed key ("threefry2x32"), else None


class HostCopy(NamedTuple):
    """A tree's leaves copied to host memory, ready to be written while training goes on.

    Attributes:
        leaves: the manifest's description of each leaf, by path.
        values: the stored value of each leaf (NumPy; a typed key as its key data), by path.
        parts: each path's entries (``("params", "dense_0", "w")``), by path.
    """

    leaves: dict[str, Leaf]
    values: dict[str, Any]
    parts: dict[str, tuple[str, ...]]


# ----------------------------------------------------------------------------- tree paths


def _key_str(key: Any) -> str:
    """One tree path entry as text: a dict key, a sequence index or an attribute name."""
    if isinstance(key, jax.tree_util.DictKey | jax.tree_util.FlattenedIndexKey):
        return str(key.key)
    if isinstance(key, jax.tree_util.SequenceKey):
        return str(key.idx)
    if isinstance(key, jax.tree_util.GetAttrKey):
        return key.name
    return str(key)


def is_key(dtype: Any) -> bool:
    """Whether ``dtype`` is a typed PRNG key dtype."""
    return bool(jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key))


def _storable(dtype: Any) -> bool:
    return is_key(dtype) or any(jax.dtypes.issubdtype(dtype, t) for t in (np.number, np.bool_))


def shape_dtype(path: str, leaf: Any) -> tuple[Shape, Any]:
    """Shape and dtype of an array leaf; Python scalars count as NumPy scalars."""
    if isinstance(leaf, bool | int | float | complex):
        leaf = np.asarray(leaf)
    if not isinstance(leaf, jax.Array | jax.ShapeDtypeStruct | np.ndarray | np.generic):
        raise TypeError(
            f"checkpoint leaf {path}: expected an array, got {type(leaf).__name__}; "
            "checkpoints hold arrays (jax, NumPy, typed PRNG keys) and Python numbers only"
        )
    if not _storable(leaf.dtype):
        raise TypeError(f"checkpoint leaf {path}: dtype {leaf.dtype} cannot be stored")
    return tuple(leaf.shape), leaf.dtype


def path_parts(tree: PyTree) -> dict[str, tuple[str, ...]]:
    """Each leaf's path entries, keyed by the "a/b/c" path, in flattening order.

    Raises:
        ValueError: two leaves share a path, or two paths would share one orbax name (orbax
            joins the entries with "."; ``{"a.b": x, "a": {"b": y}}`` cannot be stored).
    """
    parts: dict[str, tuple[str, ...]] = {}
    names: dict[str, str] = {}
    for keypath, _ in jax.tree_util.tree_flatten_with_path(tree)[0]:
        entries = tuple(_key_str(key) for key in keypath)
        path = "/".join(entries)
        if path in parts:
            raise ValueError(f"two leaves share the tree path {path!r}; make the keys unique")
        name = ".".join(entries)
        if name in names:
            raise ValueError(
                f"the tree paths {names[name]!r} and {path!r} have the same orbax name "
                f"{name!r}; rename a key so that the paths differ once '.' joins them"
            )
        parts[path], names[name] = entries, path
    return parts


def leaves_by_path(tree: PyTree) -> dict[str, Any]:
    """The leaves of ``tree`` keyed by their "a/b/c" path, in flattening order."""
    paths = path_parts(tree)
    return dict(zip(paths, jax.tree_util.tree_leaves(tree), strict=True))


def tree_paths(tree: PyTree) -> dict[str, tuple[Shape, Any]]:
    """Shape and dtype of every leaf of ``tree``, keyed by its path as checkpoints name it.

    Paths join dict keys, sequence indices and NamedTuple field names with "/":
    ``{"params": {"dense_0": {"w": ...}}}`` has the path ``"params/dense_0/w"`` and
    ``optax.adam(1e-3).init(params)`` has ``"0/mu/dense_0/w"``.

    Args:
        tree: a pytree of arrays, `jax.ShapeDtypeStruct`s, typed PRNG keys or Python numbers.

    Returns:
        ``{path: (shape, dtype)}`` in flattening order.

    Raises:
        TypeError: a leaf is not an array or has a dtype that cannot be stored (str, object).
        ValueError: two leaves have the same path (e.g. keys ``"a/b"`` and ``"a"`` → ``"b"``).

    Example:
        >>> import jax.numpy as jnp
        >>> tree_paths({"dense_0": {"w": jnp.zeros((8, 9))}})
        {'dense_0/w': ((8, 9), dtype('float32'))}
    """
    return {path: shape_dtype(path, leaf) for path, leaf in leaves_by_path(tree).items()}


def leaf_table(tree: PyTree) -> dict[str, Leaf]:
    """The manifest's description of each leaf of ``tree``."""
    table = {}
    for path, leaf in leaves_by_path(tree).items():
        shape, dtype = shape_dtype(path, leaf)
        concrete_key = is_key(dtype) and isinstance(leaf, jax.Array)
        key_impl = str(jax.random.key_impl(leaf)) if concrete_key else None
        table[path] = Leaf(shape, str(dtype), key_impl)
    return table


def _stored_value(leaf: Any) -> Any:
    """What orbax writes for a leaf: typed keys as their raw uint32 key data."""
    if isinstance(leaf, jax.Array):
        return jax.random.key_data(leaf) if is_key(leaf.dtype) else leaf
    return np.asarray(leaf)


def stored(tree: PyTree, *, to_host: bool) -> HostCopy:
    """What a checkpoint of ``tree`` writes. With ``to_host`` the values are copied to host
    memory in one transfer, so the device buffers may be donated or changed right after
    (asynchronous saving); without, jax arrays stay as they are (several processes, where
    each writes its own shards)."""
    parts = path_parts(tree)
    values = {p: _stored_value(leaf) for p, leaf in leaves_by_path(tree).items()}
    if to_host:
        values = jax.device_get(values)
    return HostCopy(leaf_table(tree), values, parts)


# ----------------------------------------------------------------------------- orbax


def _nested(copy: HostCopy) -> dict[str, Any]:
    """The stored values as the nested dict of their path entries (orbax's names)."""
    root: dict[str, Any] = {}
    for path, value in copy.values.items():
        *parents, last = copy.parts[path]
        node = root
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return root


def _pick(tree: dict[str, Any], parts: tuple[str, ...]) -> Any:
    for part in parts:
        tree = tree[part]
    return tree


def write_arrays(saver: Any, folder: pathlib.Path, copy: HostCopy) -> None:
    """Saves the leaves with the orbax checkpointer ``saver`` under their tree paths; blocks
    until written. A tree without leaves writes nothing (orbax refuses an empty tree)."""
    import orbax.checkpoint as ocp

    if copy.values:
        saver.save(folder / ARRAYS, args=ocp.args.PyTreeSave(_nested(copy)))


def _read_spec(leaf: Any) -> tuple[jax.ShapeDtypeStruct, Any]:
    """How orbax reads the stored array for a target leaf: NumPy stays NumPy, jax goes to
    the target's sharding (or the default device), a typed key is read as its key data.

    Returns:
        The stored array's shape and dtype, and its orbax restore arguments.
    """
    import orbax.checkpoint as ocp

    if not isinstance(leaf, jax.Array | jax.ShapeDtypeStruct):
        shape, dtype = shape_dtype("", leaf)
        return jax.ShapeDtypeStruct(shape, dtype), ocp.RestoreArgs(
            restore_type=np.ndarray, dtype=dtype
        )
    data = jax.eval_shape(jax.random.key_data, leaf) if is_key(leaf.dtype) else leaf
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    sharding = getattr(leaf, "sharding", None) or device
    args = ocp.ArrayRestoreArgs(
        restore_type=jax.Array, sharding=sharding, global_shape=data.shape, dtype=data.dtype
    )
    return jax.ShapeDtypeStruct(data.shape, data.dtype), args


def read_arrays(
    folder: pathlib.Path,
    saved: dict[str, Leaf],
    targets: dict[str, Any],
    parts: dict[str, tuple[str, ...]],
    *,
    by_path: bool,
) -> dict[str, Any]:
    """Reads the saved leaves at the paths of ``targets`` with orbax; returns them by path.

    Args:
        folder: the step folder.
        saved: the manifest's leaves, in their saved order (names the first format's keys).
        targets: the target leaves to read, by path.
        parts: each target path's entries.
        by_path: the arrays are stored under their tree paths (else the first format).
    """
    import orbax.checkpoint as ocp

    if not targets:
        return {}
    index = {path: str(i) for i, path in enumerate(saved)}
    keys = {p: parts[p] if by_path else (index[p],) for p in targets}
    specs = {p: _read_spec(leaf) for p, leaf in targets.items()}
    item: dict[str, Any] = {}
    restore_args: dict[str, Any] = {}
    for path, (shape, args) in specs.items():
        for tree, value in ((item, shape), (restore_args, args)):
            *parents, last = keys[path]
            for part in parents:
                tree = tree.setdefault(part, {})
            tree[last] = value
    restore = ocp.args.PyTreeRestore(item=item, restore_args=restore_args, partial_restore=True)
    with ocp.Checkpointer(ocp.PyTreeCheckpointHandler()) as reader:
        arrays = reader.restore(folder / ARRAYS, args=restore)
    return {p: _unstored(_pick(arrays, keys[p]), saved[p]) for p in targets}


def _unstored(value: Any, stored: Leaf) -> Any:
    if stored.key_impl is None:
        return value
    return jax.random.wrap_key_data(value, impl=stored.key_impl)
