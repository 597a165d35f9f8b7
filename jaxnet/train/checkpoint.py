"""Checkpoints for the training loop: atomic, verified, retained and bit-exact.

A `Checkpointer` keeps a series of checkpoints of one pytree (a `TrainState`) in a directory,
one folder per step::

    directory/
      100/
        arrays/         orbax PyTree checkpoint (tensorstore OCDBT): a flat dict {"0": leaf_0, ...}
        manifest.json   format, step, metric, the leaf table (path, shape, dtype) and the size
                        and sha256 of every other file in the folder
      200/ ...

- **Atomic.** `save` writes into a hidden temporary sibling folder (`.tmp-<step>-*`), verifies
  it against its manifest and only then renames it to `<step>`. An interrupted or failed save
  never touches an existing checkpoint, and a folder without a manifest is not a checkpoint.
- **Verified.** `restore` checks the folder against the manifest before orbax reads a byte:
  a truncated, modified, extra or missing file, a symbolic link or a manifest path that escapes
  the folder raises `CheckpointError` naming the folder and the file.
- **Never pickled.** Arrays go through orbax's standard tensorstore handlers; the manifest is
  JSON. Nothing in a checkpoint can run code.
- **By path.** Leaves are named by their tree path (`"params/dense_0/w"`, `"opt_state/0/mu/..."`).
  A restore target with other paths, shapes or dtypes raises `CheckpointMismatchError` listing
  each difference; `restore_partial` restores the matching paths only (transfer learning).
- **Several processes.** With :func:`jax.distributed.initialize`, every process calls
  `save` (and `restore`) on the same directory of a shared file system: orbax writes each
  process's shards, process 0 writes the manifest and renames the folder, so arrays sharded
  across hosts are saved whole and restored into their sharding.
- **Typed PRNG keys.** Orbax cannot store `jax.random.key` arrays, so a key leaf is stored as
  its `jax.random.key_data` (uint32) with its implementation name in the manifest, and is
  rebuilt with `jax.random.wrap_key_data` on restore.

Example:
    >>> import tempfile, jax, jax.numpy as jnp
    >>> tree = {"params": {"w": jnp.ones((2, 3))}, "step": jnp.int32(7), "key": jax.random.key(0)}
    >>> ckpt = Checkpointer(tempfile.mkdtemp())
    >>> folder = ckpt.save(7, tree)
    >>> ckpt.steps()
    [7]
    >>> restored = ckpt.restore(tree)
    >>> int(restored["step"])
    7
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import pathlib
import re
import shutil
import tempfile
import uuid
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import numpy as np
import orbax.checkpoint as ocp

PyTree = Any
Shape = tuple[int, ...]

FORMAT = "jaxnet.checkpoint/1"
_MANIFEST = "manifest.json"
_ARRAYS = "arrays"  # the orbax checkpoint inside a step folder
_STEP_NAME = re.compile(r"[0-9]+")
_BEST_MODES = ("max", "min")


class CheckpointError(ValueError):
    """A checkpoint folder is corrupt, truncated, tampered with, incomplete or unsafe to read."""


class CheckpointMismatchError(CheckpointError):
    """The restore target has other paths, shapes or dtypes than the saved checkpoint.

    Attributes:
        missing: paths in the target that the checkpoint does not have.
        unexpected: paths in the checkpoint that the target does not have.
        reshaped: paths in both whose shapes differ.
        retyped: paths in both with equal shapes whose dtypes differ.
    """

    def __init__(
        self,
        message: str,
        *,
        missing: Sequence[str] = (),
        unexpected: Sequence[str] = (),
        reshaped: Sequence[str] = (),
        retyped: Sequence[str] = (),
    ) -> None:
        super().__init__(message)
        self.missing = tuple(missing)
        self.unexpected = tuple(unexpected)
        self.reshaped = tuple(reshaped)
        self.retyped = tuple(retyped)


class PartialRestore(NamedTuple):
    """What `Checkpointer.restore_partial` did, by tree path.

    Attributes:
        restored: target paths whose values came from the checkpoint.
        skipped: target paths that kept the target's value (missing, reshaped or retyped).
        unused: checkpoint paths that the target does not have.
    """

    restored: tuple[str, ...]
    skipped: tuple[str, ...]
    unused: tuple[str, ...]


class _Leaf(NamedTuple):
    """One saved leaf as the manifest describes it."""

    shape: Shape
    dtype: str  # str(dtype): "float32", "int32", "key<fry>" for a typed PRNG key
    key_impl: str | None  # PRNG implementation of a typed key ("threefry2x32"), else None


class _FileEntry(NamedTuple):
    size: int
    sha256: str


class _Manifest(NamedTuple):
    step: int
    metric: float | None
    leaves: dict[str, _Leaf]  # in the order of the orbax keys "0", "1", ...
    files: dict[str, _FileEntry]  # posix paths relative to the step folder


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


def _is_key(dtype: Any) -> bool:
    return bool(jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key))


def _storable(dtype: Any) -> bool:
    return _is_key(dtype) or any(jax.dtypes.issubdtype(dtype, t) for t in (np.number, np.bool_))


def _shape_dtype(path: str, leaf: Any) -> tuple[Shape, Any]:
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


def _leaves_by_path(tree: PyTree) -> dict[str, Any]:
    """The leaves of ``tree`` keyed by their "a/b/c" path, in flattening order."""
    leaves: dict[str, Any] = {}
    for keypath, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        path = "/".join(_key_str(key) for key in keypath)
        if path in leaves:
            raise ValueError(f"two leaves share the tree path {path!r}; make the keys unique")
        leaves[path] = leaf
    return leaves


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
    return {path: _shape_dtype(path, leaf) for path, leaf in _leaves_by_path(tree).items()}


def _leaf_table(tree: PyTree) -> dict[str, _Leaf]:
    """The manifest's description of each leaf of ``tree``."""
    table = {}
    for path, leaf in _leaves_by_path(tree).items():
        shape, dtype = _shape_dtype(path, leaf)
        concrete_key = _is_key(dtype) and isinstance(leaf, jax.Array)
        key_impl = str(jax.random.key_impl(leaf)) if concrete_key else None
        table[path] = _Leaf(shape, str(dtype), key_impl)
    return table


def _stored_value(leaf: Any) -> Any:
    """What orbax writes for a leaf: typed keys as their raw uint32 key data."""
    if isinstance(leaf, jax.Array):
        return jax.random.key_data(leaf) if _is_key(leaf.dtype) else leaf
    return np.asarray(leaf)


# ----------------------------------------------------------------------------- mismatches


def _mismatch(
    folder: pathlib.Path, saved: dict[str, _Leaf], wanted: dict[str, _Leaf]
) -> CheckpointMismatchError | None:
    """The error listing every difference between saved and wanted leaves, or None."""
    missing = [p for p in wanted if p not in saved]
    unexpected = [p for p in saved if p not in wanted]
    both = [p for p in wanted if p in saved]
    reshaped = [p for p in both if saved[p].shape != wanted[p].shape]
    retyped = [p for p in both if p not in reshaped and saved[p].dtype != wanted[p].dtype]
    lines = [f"missing: {p} expected {wanted[p].shape} {wanted[p].dtype}" for p in missing]
    lines += [f"unexpected: {p} saved {saved[p].shape} {saved[p].dtype}" for p in unexpected]
    lines += [f"reshaped: {p} saved {saved[p].shape}, expected {wanted[p].shape}" for p in reshaped]
    lines += [f"retyped: {p} saved {saved[p].dtype}, expected {wanted[p].dtype}" for p in retyped]
    if not lines:
        return None
    message = (
        f"checkpoint {folder} does not match the restore target:\n  "
        + "\n  ".join(lines)
        + "\nRestore into a target with the saved structure, or use restore_partial "
        "(strict=False) to take only the matching paths."
    )
    return CheckpointMismatchError(
        message, missing=missing, unexpected=unexpected, reshaped=reshaped, retyped=retyped
    )


def _matching(saved: dict[str, _Leaf], wanted: dict[str, _Leaf]) -> list[str]:
    """Target paths that the checkpoint holds with the same shape and dtype."""
    return [p for p, w in wanted.items() if p in saved and saved[p][:2] == w[:2]]


# ----------------------------------------------------------------------------- integrity


def _sha256(file: pathlib.Path) -> str:
    with open(file, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _files_on_disk(folder: pathlib.Path) -> set[str]:
    """Relative posix paths of the regular files in ``folder``; refuses links and devices."""
    files = set()
    for root, dirs, names in os.walk(folder):  # does not follow links: they are refused
        for path in (pathlib.Path(root, name) for name in dirs + names):
            if path.is_symlink():
                raise CheckpointError(f"checkpoint {folder}: {path} is a symbolic link; refused")
        for path in (pathlib.Path(root, name) for name in names):
            if not path.is_file():
                raise CheckpointError(f"checkpoint {folder}: {path} is not a regular file")
            files.add(path.relative_to(folder).as_posix())
    return files


def _file_table(folder: pathlib.Path) -> dict[str, _FileEntry]:
    """Size and sha256 of every file in ``folder`` except the manifest."""
    files = sorted(_files_on_disk(folder) - {_MANIFEST})
    return {rel: _FileEntry((folder / rel).stat().st_size, _sha256(folder / rel)) for rel in files}


def _check_relative(folder: pathlib.Path, rel: str) -> None:
    parts = rel.split("/")
    if rel.startswith("/") or "\\" in rel or any(part in ("", ".", "..") for part in parts):
        raise CheckpointError(f"checkpoint {folder}: manifest path {rel!r} leaves the folder")


def _verify(folder: pathlib.Path) -> _Manifest:
    """Checks every file of ``folder`` against its manifest; returns the manifest.

    Raises:
        CheckpointError: a link, a special file, a bad manifest or a missing, extra,
            resized or modified file.
    """
    if folder.is_symlink():
        raise CheckpointError(f"checkpoint {folder} is a symbolic link; refused")
    on_disk = _files_on_disk(folder) - {_MANIFEST}
    manifest = _read_manifest(folder)
    for rel in manifest.files:
        _check_relative(folder, rel)
    for rel in sorted(set(manifest.files) - on_disk):
        raise CheckpointError(f"checkpoint {folder}: file {rel} is missing")
    for rel in sorted(on_disk - set(manifest.files)):
        raise CheckpointError(f"checkpoint {folder}: file {rel} is not in the manifest")
    for rel, entry in manifest.files.items():
        size = (folder / rel).stat().st_size
        if size != entry.size:
            raise CheckpointError(
                f"checkpoint {folder}: file {rel} has {size} bytes, the manifest says {entry.size}"
            )
        if _sha256(folder / rel) != entry.sha256:
            raise CheckpointError(f"checkpoint {folder}: file {rel} was modified (sha256 differs)")
    return manifest


# ----------------------------------------------------------------------------- manifest


def _write_manifest(folder: pathlib.Path, step: int, metric: float | None, leaves: dict) -> None:
    """Writes manifest.json, the last file of a checkpoint: its presence marks completeness."""
    manifest = {
        "format": FORMAT,
        "step": step,
        "metric": metric,
        "leaves": [{"path": p, **leaf._asdict()} for p, leaf in leaves.items()],
        "files": {rel: entry._asdict() for rel, entry in _file_table(folder).items()},
    }
    (folder / _MANIFEST).write_text(json.dumps(manifest, indent=1))


def _parse_leaf(leaf: dict) -> _Leaf:
    key_impl = None if leaf["key_impl"] is None else str(leaf["key_impl"])
    return _Leaf(tuple(int(n) for n in leaf["shape"]), str(leaf["dtype"]), key_impl)


def _parse_manifest(raw: dict) -> _Manifest:
    """The manifest from its JSON form; any malformation raises KeyError/TypeError/ValueError."""
    if raw["format"] != FORMAT:
        raise ValueError(f"format {raw['format']!r}, expected {FORMAT!r}")
    leaves = {str(leaf["path"]): _parse_leaf(leaf) for leaf in raw["leaves"]}
    if len(leaves) != len(raw["leaves"]):
        raise ValueError("a leaf path appears twice")
    files = {
        str(rel): _FileEntry(int(entry["size"]), str(entry["sha256"]))
        for rel, entry in raw["files"].items()
    }
    metric = None if raw["metric"] is None else float(raw["metric"])
    return _Manifest(int(raw["step"]), metric, leaves, files)


def _read_manifest(folder: pathlib.Path) -> _Manifest:
    """Parses manifest.json of ``folder`` (files are not checked; see `_verify`)."""
    file = folder / _MANIFEST
    if not file.is_file():
        raise CheckpointError(f"checkpoint {folder} has no {_MANIFEST}: incomplete write?")
    try:
        manifest = _parse_manifest(json.loads(file.read_text()))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"checkpoint {folder}: {_MANIFEST} is malformed ({exc})") from exc
    return manifest


# ----------------------------------------------------------------------------- orbax


def _finish(tmp: pathlib.Path, step: int, metric: float | None, table: Any, final: Any) -> None:
    """Manifest, verification and the atomic rename of a written temporary folder."""
    _write_manifest(tmp, step, metric, table)
    _verify(tmp)
    os.rename(tmp, final)


def _sync_processes(name: str) -> None:
    """A barrier across every process of a multi-process run."""
    from jax.experimental import multihost_utils

    multihost_utils.sync_global_devices(name)


def _write_arrays(folder: pathlib.Path, values: list[Any]) -> None:
    """Saves the leaves with orbax as a flat dict {"0": leaf_0, ...}; blocks until written."""
    if values:  # orbax refuses an empty tree; a tree without leaves needs no arrays
        with ocp.Checkpointer(ocp.PyTreeCheckpointHandler()) as ckptr:
            item = {str(i): value for i, value in enumerate(values)}
            ckptr.save(folder / _ARRAYS, args=ocp.args.PyTreeSave(item))


def _read_spec(leaf: Any) -> tuple[jax.ShapeDtypeStruct, Any]:
    """How orbax reads the stored array for a target leaf: NumPy stays NumPy, jax goes to
    the target's sharding (or the default device), a typed key is read as its key data.

    Returns:
        The stored array's shape and dtype, and its orbax restore arguments.
    """
    if not isinstance(leaf, jax.Array | jax.ShapeDtypeStruct):
        shape, dtype = _shape_dtype("", leaf)
        return jax.ShapeDtypeStruct(shape, dtype), ocp.RestoreArgs(
            restore_type=np.ndarray, dtype=dtype
        )
    data = jax.eval_shape(jax.random.key_data, leaf) if _is_key(leaf.dtype) else leaf
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    sharding = getattr(leaf, "sharding", None) or device
    args = ocp.ArrayRestoreArgs(
        restore_type=jax.Array, sharding=sharding, global_shape=data.shape, dtype=data.dtype
    )
    return jax.ShapeDtypeStruct(data.shape, data.dtype), args


def _read_arrays(folder: pathlib.Path, manifest: _Manifest, targets: dict[str, Any]) -> dict:
    """Reads the saved leaves at the paths of ``targets`` with orbax; returns them by path."""
    if not targets:
        return {}
    index = {path: str(i) for i, path in enumerate(manifest.leaves)}
    specs = {index[path]: _read_spec(leaf) for path, leaf in targets.items()}
    restore = ocp.args.PyTreeRestore(
        item={key: spec[0] for key, spec in specs.items()},
        restore_args={key: spec[1] for key, spec in specs.items()},
        partial_restore=True,
    )
    with ocp.Checkpointer(ocp.PyTreeCheckpointHandler()) as ckptr:
        arrays = ckptr.restore(folder / _ARRAYS, args=restore)
    return {path: _unstored(arrays[index[path]], manifest.leaves[path]) for path in targets}


def _unstored(value: Any, stored: _Leaf) -> Any:
    if stored.key_impl is None:
        return value
    return jax.random.wrap_key_data(value, impl=stored.key_impl)


# ----------------------------------------------------------------------------- Checkpointer


def _remove(folder: pathlib.Path) -> None:
    """Deletes a checkpoint folder, first renaming it so that it stops counting at once."""
    trash = folder.with_name(f".deleting-{folder.name}-{uuid.uuid4().hex}")
    os.rename(folder, trash)
    shutil.rmtree(trash)


def _check_step(step: int) -> None:
    if isinstance(step, bool) or not isinstance(step, int | np.integer) or step < 0:
        raise ValueError(f"step must be a non-negative int, got {step!r}")


def _check_metric(metric: float | None) -> None:
    if metric is not None and not math.isfinite(metric):
        raise ValueError(f"metric must be a finite number or None, got {metric!r}")


class Checkpointer:
    """Saves, retains and restores the checkpoints of one training run in ``directory``.

    Retention: after each save, keep the ``max_to_keep`` checkpoints with the highest steps
    and the best one by ``metric`` (highest for ``best_mode="max"``, lowest for ``"min"``;
    on ties the earlier step); delete the others. Saves without a metric never count as best.

    The object holds only its settings; the directory is the state. It is for one process:
    multi-host saving is not supported yet.

    Args:
        directory: folder of the checkpoints; created on the first save.
        max_to_keep: number of most recent checkpoints kept, at least 1.
        best_mode: "max" if a higher metric is better (accuracy), "min" if lower (loss).

    Raises:
        ValueError: ``max_to_keep`` < 1 or ``best_mode`` not "max"/"min".

    Example:
        >>> import tempfile, jax.numpy as jnp
        >>> ckpt = Checkpointer(tempfile.mkdtemp(), max_to_keep=1, best_mode="min")
        >>> for step, loss in [(1, 0.5), (2, 0.9), (3, 0.7)]:
        ...     _ = ckpt.save(step, {"w": jnp.full(2, step)}, metric=loss)
        >>> ckpt.steps(), ckpt.best_step(), ckpt.latest_step()
        ([1, 3], 1, 3)
    """

    def __init__(
        self, directory: str | os.PathLike, *, max_to_keep: int = 3, best_mode: str = "max"
    ) -> None:
        if isinstance(max_to_keep, bool) or not isinstance(max_to_keep, int) or max_to_keep < 1:
            raise ValueError(f"max_to_keep must be an int >= 1, got {max_to_keep!r}")
        if best_mode not in _BEST_MODES:
            raise ValueError(f"best_mode must be 'max' or 'min', got {best_mode!r}")
        self.directory = pathlib.Path(directory).absolute()
        self.max_to_keep = max_to_keep
        self.best_mode = best_mode

    def __repr__(self) -> str:
        return (
            f"Checkpointer({str(self.directory)!r}, max_to_keep={self.max_to_keep}, "
            f"best_mode={self.best_mode!r})"
        )

    def save(self, step: int, tree: PyTree, *, metric: float | None = None) -> pathlib.Path:
        """Writes ``tree`` as the checkpoint of ``step``, atomically, then applies retention.

        Blocks until the checkpoint is on disk and verified. If anything fails, the temporary
        folder is removed and earlier checkpoints are untouched. With several processes, every
        process must call it (each writes its shards; process 0 finishes the folder).

        Args:
            step: training step, a non-negative int; names the folder ``directory/<step>``.
            tree: pytree of jax arrays, NumPy arrays, typed PRNG keys or Python numbers.
            metric: finite number used to pick the best checkpoint, or None.

        Returns:
            The checkpoint folder.

        Raises:
            ValueError: bad ``step`` or ``metric``, the step exists already, or two leaves
                share a path.
            TypeError: a leaf is not an array (e.g. a string).
            CheckpointError: an older checkpoint's manifest is unreadable, so retention cannot
                read its metric (the new checkpoint is saved all the same).
        """
        _check_step(step)
        _check_metric(metric)
        leaves = _leaves_by_path(tree)
        table = _leaf_table(tree)
        final = self.directory / str(step)
        if final.exists() or final.is_symlink():
            raise ValueError(f"a checkpoint for step {step} exists already: {final}")
        self.directory.mkdir(parents=True, exist_ok=True)
        values = [_stored_value(leaf) for leaf in leaves.values()]
        metric = None if metric is None else float(metric)
        if jax.process_count() > 1:
            return self._save_from_every_process(int(step), values, table, metric, final)
        tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".tmp-{step}-", dir=self.directory))
        try:
            _write_arrays(tmp, values)
            _finish(tmp, int(step), metric, table, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self._apply_retention()
        return final

    def _save_from_every_process(
        self,
        step: int,
        values: list[Any],
        table: dict[str, _Leaf],
        metric: float | None,
        final: pathlib.Path,
    ) -> pathlib.Path:
        """``save`` with several processes (:func:`jax.distributed.initialize`): every process
        calls it, orbax writes each process's shards of the arrays into one temporary folder on
        the shared file system, then process 0 alone writes the manifest, verifies the folder
        and renames it. Parameters sharded across hosts are saved whole this way."""
        main = jax.process_index() == 0
        tmp = self.directory / f".tmp-{step}-processes"
        if main:
            shutil.rmtree(tmp, ignore_errors=True)  # left by a crashed save of the same step
            tmp.mkdir()
        _sync_processes(f"jaxnet checkpoint {step}: folder")
        _write_arrays(tmp, values)  # orbax synchronizes the processes itself
        failure: BaseException | None = None
        if main:
            try:
                _finish(tmp, step, metric, table, final)
            except BaseException as error:  # re-raised once the other processes know
                shutil.rmtree(tmp, ignore_errors=True)
                failure = error
        _sync_processes(f"jaxnet checkpoint {step}: finished")
        if failure is not None:
            raise failure
        if not (final / _MANIFEST).is_file():
            raise CheckpointError(
                f"checkpoint {final}: process 0 could not finish it (see its log)"
            )
        if main:
            self._apply_retention()
        return final

    def steps(self) -> list[int]:
        """Steps of the complete checkpoints on disk (folders with a manifest), ascending."""
        if not self.directory.is_dir():
            return []
        return sorted(
            int(entry.name)
            for entry in self.directory.iterdir()
            if _STEP_NAME.fullmatch(entry.name)
            and not entry.is_symlink()
            and (entry / _MANIFEST).is_file()
        )

    def latest_step(self) -> int | None:
        """The highest saved step, or None if there is no checkpoint."""
        steps = self.steps()
        return steps[-1] if steps else None

    def best_step(self) -> int | None:
        """The step with the best metric (see ``best_mode``), or None if no save had a metric.

        Raises:
            CheckpointError: a manifest cannot be read.
        """
        metrics = {}
        for step in self.steps():
            metric = _read_manifest(self.directory / str(step)).metric
            if metric is not None:
                metrics[step] = metric
        if not metrics:
            return None
        sign = 1.0 if self.best_mode == "max" else -1.0
        return max(metrics, key=lambda step: (sign * metrics[step], -step))

    def restore(self, target: PyTree, step: int | None = None, *, strict: bool = True) -> PyTree:
        """Reads a checkpoint into the structure, shapes and dtypes of ``target``.

        Args:
            target: pytree like the saved one; leaves are arrays or `jax.ShapeDtypeStruct`s
                (e.g. from `jax.eval_shape`). Only structure, shape, dtype and sharding are
                used. jax leaves come back as jax arrays on the leaf's sharding (default
                device if none), NumPy leaves and Python numbers as NumPy arrays.
            step: the step to restore; None restores the latest.
            strict: if True, any difference raises. If False, see `restore_partial`; the
                report is dropped.

        Returns:
            A pytree with the treedef of ``target`` and the saved values, bit for bit.

        Raises:
            FileNotFoundError: there is no checkpoint for ``step``.
            CheckpointMismatchError: (strict) missing, unexpected, reshaped or retyped paths.
            CheckpointError: the checkpoint is corrupt, tampered with or unsafe.
            TypeError, ValueError: a target leaf is not an array, or two share a path.
        """
        folder, manifest = self._open(step)
        wanted = _leaf_table(target)
        error = _mismatch(folder, manifest.leaves, wanted)
        if strict and error is not None:
            raise error
        return self._fill(folder, manifest, target, _matching(manifest.leaves, wanted))

    def restore_partial(
        self, target: PyTree, step: int | None = None
    ) -> tuple[PyTree, PartialRestore]:
        """Restores the paths of ``target`` that the checkpoint holds with the same shape
        and dtype, and keeps the target's own leaves (arrays or `ShapeDtypeStruct`s) for the
        rest: fine-tuning from a pretrained model with a new head, for instance.

        Args:
            target: pytree giving structure, shapes and dtypes, and the fallback values.
            step: the step to restore; None restores the latest.

        Returns:
            ``(tree, report)``: the tree with the treedef of ``target``, and a
            `PartialRestore` naming the restored, skipped and unused paths.

        Raises:
            FileNotFoundError: there is no checkpoint for ``step``.
            CheckpointError: the checkpoint is corrupt, tampered with or unsafe.
            TypeError, ValueError: a target leaf is not an array, or two share a path.
        """
        folder, manifest = self._open(step)
        wanted = _leaf_table(target)
        restored = _matching(manifest.leaves, wanted)
        report = PartialRestore(
            restored=tuple(restored),
            skipped=tuple(p for p in wanted if p not in restored),
            unused=tuple(p for p in manifest.leaves if p not in wanted),
        )
        return self._fill(folder, manifest, target, restored), report

    def _open(self, step: int | None) -> tuple[pathlib.Path, _Manifest]:
        """The verified folder and manifest of ``step`` (None: the latest)."""
        if step is None:
            step = self.latest_step()
            if step is None:
                raise FileNotFoundError(f"no checkpoint in {self.directory}")
        _check_step(step)
        folder = self.directory / str(step)
        if not folder.is_dir() and not folder.is_symlink():
            raise FileNotFoundError(
                f"no checkpoint for step {step} in {self.directory}; saved steps: {self.steps()}"
            )
        manifest = _verify(folder)
        if manifest.step != step:
            raise CheckpointError(f"checkpoint {folder}: {_MANIFEST} says step {manifest.step}")
        return folder, manifest

    def _fill(
        self, folder: pathlib.Path, manifest: _Manifest, target: PyTree, paths: list[str]
    ) -> PyTree:
        """``target`` with the leaves at ``paths`` read from the checkpoint."""
        leaves = _leaves_by_path(target)
        arrays = _read_arrays(folder, manifest, {path: leaves[path] for path in paths})
        values = [arrays.get(path, leaf) for path, leaf in leaves.items()]
        return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(target), values)

    def _apply_retention(self) -> None:
        steps = self.steps()
        keep = set(steps[-self.max_to_keep :])
        best = self.best_step()
        if best is not None:
            keep.add(best)
        for step in steps:
            if step not in keep:
                _remove(self.directory / str(step))
