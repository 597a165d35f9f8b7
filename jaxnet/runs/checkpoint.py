"""Checkpoints for the training loop: atomic, verified, retained and bit-exact.

A `Checkpointer` keeps a series of checkpoints of one pytree (a `TrainState`) in a directory,
one folder per step::

    directory/
      100/
        arrays/         orbax PyTree checkpoint (tensorstore OCDBT), the leaves under their
                        tree paths: {"params": {"dense_0": {"w": ...}}, "opt_state": ...}
        manifest.json   format, step, metric, the leaf table (path, shape, dtype), the size
                        and sha256 of every other file, and a checksum of itself
        extra-0.json    (optional) JSON that belongs with the arrays, one file per process:
                        a stream's position (Grain's iterator state), covered by the manifest
      200/ ...

- **Atomic.** `save` writes into a hidden temporary sibling folder (`.tmp-<step>-*`), writes
  the manifest (size and sha256 of every file as read back), ``fsync``s every file and
  folder and only then renames it to `<step>`. An interrupted or failed save (kill -9, a
  full disk) never touches an existing checkpoint; what it leaves is a `.tmp-*` folder,
  never a step folder.
- **Verified.** `restore` checks the folder against the manifest before orbax reads a byte:
  a truncated, modified, extra or missing file, a missing, edited or cut-off manifest, a
  symbolic link or a manifest path that escapes the folder raises `CheckpointError` naming
  the folder and the file. The newest step folder is never skipped silently: if it is damaged,
  ``restore()`` refuses it by name (pass an older ``step`` explicitly). Saving a step whose
  folder is damaged replaces that folder.
- **Never pickled.** Arrays go through orbax's standard tensorstore handlers; the manifest is
  JSON. Nothing in a checkpoint can run code.
- **By path.** Leaves are named by their tree path (`"params/dense_0/w"`, `"opt_state/0/mu/..."`),
  in the manifest and in orbax's own tree (see :mod:`jaxnet.runs.storage`), so plain orbax
  shows the real names. A restore target with other paths, shapes or dtypes raises
  `CheckpointMismatchError` listing each difference; `restore_partial` restores the matching
  paths only (transfer learning). Checkpoints of the first format (leaves as ``{"0": ...}``)
  are still read.
- **Several processes.** With :func:`jax.distributed.initialize`, every process calls
  `save` (and `restore`) on the same directory of a shared file system: orbax writes each
  process's shards, process 0 writes the manifest and renames the folder, so arrays sharded
  across hosts are saved whole and restored into their sharding.
- **Typed PRNG keys.** Orbax cannot store `jax.random.key` arrays, so a key leaf is stored as
  its `jax.random.key_data` (uint32) with its implementation name in the manifest, and is
  rebuilt with `jax.random.wrap_key_data` on restore.
- **Off the training thread.** `host_copy` copies a tree to host memory in one transfer;
  `save` of that copy can then run in another thread while training goes on (``fit`` does
  this, see :class:`jaxnet.train.Checkpointing`).

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

import errno
import json
import math
import os
import pathlib
import re
import shutil
import threading
import uuid
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxnet import atomic
from jaxnet.distributed import sync_processes
from jaxnet.runs import manifest
from jaxnet.runs.manifest import CheckpointError, Manifest
from jaxnet.runs.storage import (
    HostCopy,
    Leaf,
    leaf_table,
    leaves_by_path,
    path_parts,
    read_arrays,
    stored,
    tree_paths,
    write_arrays,
)
from jaxnet.validate import at_least, one_of

__all__ = [
    "CheckpointError",
    "CheckpointMismatchError",
    "Checkpointer",
    "HostCopy",
    "PartialRestore",
    "host_copy",
    "tree_paths",
]

PyTree = Any

_STEP_NAME = re.compile(r"[0-9]+")
_BEST_MODES = ("max", "min")


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


def _mismatch(
    folder: pathlib.Path, saved: dict[str, Leaf], wanted: dict[str, Leaf]
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


def _matching(saved: dict[str, Leaf], wanted: dict[str, Leaf]) -> list[str]:
    """Target paths that the checkpoint holds with the same shape and dtype."""
    return [p for p, w in wanted.items() if p in saved and saved[p][:2] == w[:2]]


def host_copy(tree: PyTree) -> HostCopy:
    """``tree``'s leaves copied to host memory in one transfer, as `Checkpointer.save` stores
    them: save the copy later (or in another thread) while the device buffers go on changing.

    Raises:
        TypeError, ValueError: a leaf is not an array, or two leaves share a path.

    Example:
        >>> import tempfile, jax.numpy as jnp
        >>> copy = host_copy({"w": jnp.ones(3)})
        >>> Checkpointer(tempfile.mkdtemp()).save(1, copy).name
        '1'
    """
    return stored(tree, to_host=True)


# ----------------------------------------------------------------------------- Checkpointer


def _trash(folder: pathlib.Path) -> pathlib.Path:
    """Renames a folder to ``.deleting-<name>-*``, so that it stops counting at once; its
    deletion may then fail or be killed without harm (leftovers go at the next start)."""
    trash = folder.with_name(f".deleting-{folder.name}-{uuid.uuid4().hex}")
    os.rename(folder, trash)
    return trash


def _remove(folder: pathlib.Path) -> None:
    """Deletes a checkpoint folder: trashed first, then removed."""
    shutil.rmtree(_trash(folder), ignore_errors=True)


def _check_step(step: int) -> None:
    if isinstance(step, bool) or not isinstance(step, int | np.integer) or step < 0:
        raise ValueError(f"step must be a non-negative int, got {step!r}")


def _check_metric(metric: float | None) -> None:
    if metric is not None and not math.isfinite(metric):
        raise ValueError(f"metric must be a finite number or None, got {metric!r}")


def _finish(
    tmp: pathlib.Path, step: int, metric: float | None, leaves: dict[str, Leaf], final: Any
) -> None:
    """Manifest (the size and sha256 of every file as read back from the disk), fsync and
    the atomic rename of a written temporary folder; a damaged folder of the same step is
    swapped out and deleted after the rename."""
    manifest.write(tmp, step, metric, leaves)
    atomic.fsync_tree(tmp)
    trash = _trash(final) if final.exists() or final.is_symlink() else None
    os.rename(tmp, final)
    atomic.fsync_path(final.parent)
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True) if trash.is_dir() else trash.unlink()


_DISK_ERRORS = {  # how tensorstore words the OS errors it reports as a ValueError
    "No space left": errno.ENOSPC,
    "File too large": errno.EFBIG,
    "Disk quota": errno.EDQUOT,
}


def _write_error(error: BaseException, final: pathlib.Path) -> BaseException:
    """A failed write as the error to raise: an `OSError` whose ``filename`` is the checkpoint
    folder (orbax and tensorstore report a full disk or a file-size limit as a ValueError)."""
    if isinstance(error, OSError):
        if error.filename is not None:
            return error
        return OSError(error.errno or errno.EIO, error.strerror or str(error), str(final))
    text = str(error)
    reported = re.search(r"os_error_code='?([0-9]+)", text)  # tensorstore's own field
    if reported:
        code = int(reported.group(1))
        return OSError(code, os.strerror(code), str(final))
    for cause, code in _DISK_ERRORS.items():
        if cause in text:
            return OSError(code, os.strerror(code), str(final))
    return error


def _extra_name() -> str:
    """This process's file of JSON kept with a checkpoint's arrays."""
    return f"extra-{jax.process_index()}.json"


def _extra_text(extra: Any) -> str:
    """``extra`` as JSON text; a TypeError naming it if it is not a JSON object."""
    if not isinstance(extra, dict):
        raise TypeError(f"save: extra must be a dict (a JSON object), got {type(extra).__name__}")
    try:
        return json.dumps(extra, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise TypeError(f"save: extra must hold only JSON values ({error})") from None


def _write_extra(tmp: pathlib.Path, text: str | None) -> None:
    if text is not None:
        atomic.write_text(tmp / _extra_name(), text)


def _verified(folder: pathlib.Path, step: int) -> Manifest:
    """The manifest of a step folder that verifies and is the checkpoint of ``step``; what
    "damaged" means everywhere is that this raises `CheckpointError`."""
    saved = manifest.verify(folder)
    if saved.step != step:
        raise CheckpointError(f"checkpoint {folder}: {manifest.MANIFEST} says step {saved.step}")
    return saved


def _intact(folder: pathlib.Path, step: int) -> None:
    """Cheap checks that ``folder`` is a checkpoint jaxnet wrote for ``step`` (its manifest
    is read, no file is hashed): what `Checkpointer.pick_step` needs to choose it."""
    if folder.is_symlink() or not folder.is_dir():
        raise CheckpointError(f"checkpoint {folder} is a symbolic link or not a folder; refused")
    saved = manifest.read(folder)
    if saved.step != step:
        raise CheckpointError(f"checkpoint {folder}: {manifest.MANIFEST} says step {saved.step}")


class Checkpointer:
    """Saves, retains and restores the checkpoints of one training run in ``directory``.

    Retention: after each save, keep the ``max_to_keep`` checkpoints with the highest steps
    and the best one by ``metric`` (highest for ``best_mode="max"``, lowest for ``"min"``;
    on ties the earlier step); delete the others. Saves without a metric never count as best.

    The object holds its settings and one orbax writer (close it with `close`, or use it as
    a context manager); the directory is the state. With several processes
    (:func:`jax.distributed.initialize`), every process calls `save` and `restore` on the same
    directory of a shared file system (see the module docstring).

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
        at_least(max_to_keep, 1, "max_to_keep")
        one_of(best_mode, _BEST_MODES, "best_mode")
        self.directory = pathlib.Path(directory).absolute()
        self.max_to_keep = max_to_keep
        self.best_mode = best_mode
        self._writer: Any = None  # one orbax checkpointer, made at the first save
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"Checkpointer({str(self.directory)!r}, max_to_keep={self.max_to_keep}, "
            f"best_mode={self.best_mode!r})"
        )

    def __enter__(self) -> Checkpointer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the orbax writer's threads; the object can still save (it makes a new one)."""
        with self._lock:
            writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()

    def warm_up(self) -> None:
        """Import orbax and make its writer now (about a second the first time), so that the
        first `save` does not wait for it; ``fit`` does this while its first epoch compiles."""
        self._orbax()

    def _orbax(self) -> Any:
        """The orbax checkpointer that writes the arrays, made once: making one per save costs
        about 0.1 s of thread start-up."""
        import orbax.checkpoint as ocp

        with self._lock:
            if self._writer is None:
                self._writer = ocp.Checkpointer(ocp.PyTreeCheckpointHandler())
            return self._writer

    def save(
        self,
        step: int,
        tree: PyTree | HostCopy,
        *,
        metric: float | None = None,
        extra: dict[str, Any] | None = None,
    ) -> pathlib.Path:
        """Writes ``tree`` as the checkpoint of ``step``, atomically, then applies retention.

        Blocks until the checkpoint is on disk, hashed into its manifest and ``fsync``ed. If
        anything fails, the temporary folder is removed and earlier checkpoints are untouched.
        A damaged folder of the same step (no manifest, or files that fail verification) is
        replaced. With several processes, every process must call it (each writes its
        shards; process 0 finishes the folder).

        Args:
            step: training step, a non-negative int; names the folder ``directory/<step>``.
            tree: pytree of jax arrays, NumPy arrays, typed PRNG keys or Python numbers, or
                a `host_copy` of one (the device buffers may have changed since).
            metric: finite number used to pick the best checkpoint, or None.
            extra: a JSON object to keep with the arrays (this process's ``extra-<i>.json``,
                verified with the folder and read back by `extra`), or None.

        Returns:
            The checkpoint folder.

        Raises:
            ValueError: bad ``step`` or ``metric``, a verified checkpoint of the step exists
                already, or two leaves share a path.
            TypeError: a leaf is not an array (e.g. a string).
            OSError: the disk is full or a write failed; names the checkpoint folder.
        """
        _check_step(step)
        _check_metric(metric)
        copy = tree if isinstance(tree, HostCopy) else stored(tree, to_host=False)
        final = self.directory / str(step)
        self._refuse_existing(final)
        atomic.make_folder(self.directory)
        metric = None if metric is None else float(metric)
        text = None if extra is None else _extra_text(extra)
        if jax.process_count() > 1:
            return self._save_from_every_process(int(step), copy, metric, final, text)
        tmp = self.directory / f".tmp-{step}-{uuid.uuid4().hex}"
        tmp.mkdir()  # the umask's mode, as every other folder of the run (mkdtemp's is 0700)
        try:
            _write_extra(tmp, text)
            write_arrays(self._orbax(), tmp, copy)
            _finish(tmp, int(step), metric, copy.leaves, final)
        except BaseException as error:
            shutil.rmtree(tmp, ignore_errors=True)
            failure = _write_error(error, final)
            if failure is error:
                raise
            raise failure from error
        self._apply_retention()
        return final

    def _refuse_existing(self, final: pathlib.Path) -> None:
        """A verified checkpoint of the step may not be overwritten; a damaged one may."""
        if not (final.exists() or final.is_symlink()):
            return
        try:
            _verified(final, int(final.name))
        except CheckpointError:
            return  # damaged: _finish swaps it out once the new one is complete
        raise ValueError(f"a checkpoint for step {final.name} exists already: {final}")

    def _save_from_every_process(
        self,
        step: int,
        copy: HostCopy,
        metric: float | None,
        final: pathlib.Path,
        extra: str | None,
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
        sync_processes(f"jaxnet checkpoint {step}: folder")
        _write_extra(tmp, extra)  # before the arrays, whose write synchronizes the processes
        write_arrays(self._orbax(), tmp, copy)  # orbax synchronizes the processes itself
        failure: BaseException | None = None
        if main:
            try:
                _finish(tmp, step, metric, copy.leaves, final)
            except BaseException as error:  # re-raised once the other processes know
                shutil.rmtree(tmp, ignore_errors=True)
                failure = _write_error(error, final)
        sync_processes(f"jaxnet checkpoint {step}: finished")
        if failure is not None:
            raise failure
        if not (final / manifest.MANIFEST).is_file():
            raise CheckpointError(
                f"checkpoint {final}: process 0 could not finish it (see its log)"
            )
        if main:
            self._apply_retention()
        return final

    def _numbered(self) -> list[int]:
        """Steps of every step folder on disk, complete or damaged, ascending."""
        if not self.directory.is_dir():
            return []
        return sorted(
            int(entry.name)
            for entry in self.directory.iterdir()
            if _STEP_NAME.fullmatch(entry.name) and (entry.is_dir() or entry.is_symlink())
        )

    def steps(self) -> list[int]:
        """Steps of the complete checkpoints on disk (folders with a manifest), ascending."""
        return [
            step
            for step in self._numbered()
            if not (self.directory / str(step)).is_symlink()
            and (self.directory / str(step) / manifest.MANIFEST).is_file()
        ]

    def latest_step(self) -> int | None:
        """The highest saved step, or None if there is no checkpoint."""
        steps = self.steps()
        return steps[-1] if steps else None

    def best_step(self) -> int | None:
        """The step with the best metric (see ``best_mode``), or None if no save had a metric.

        Raises:
            CheckpointError: a manifest cannot be read.
        """
        return self._best(self._metrics(tolerant=False))

    def pick_step(self, which: str = "latest") -> int | None:
        """The step a reader means by ``which`` when it names none: ``"latest"``, the newest
        step folder; ``"best"``, the one with the best metric. Never a silent fallback: a
        damaged newest folder (no manifest, a symbolic link, another step inside) is refused
        by name with the step to pass instead, and so is, for ``"best"``, any damaged folder,
        whose metric is unknown. Only the manifests are read (``restore`` verifies the files).

        Returns:
            The step, or None if there is no checkpoint (for ``"best"``: none with a metric).

        Raises:
            CheckpointError: the folder ``which`` would choose from is damaged.
            ValueError: ``which`` is neither ``"latest"`` nor ``"best"``.
        """
        one_of(which, ("latest", "best"), "which")
        numbered = self._numbered()
        damaged = {}
        for step in reversed(numbered):
            try:
                _intact(self.directory / str(step), step)
            except CheckpointError as failure:
                damaged[step] = failure
            if which == "latest":
                break  # only the newest is chosen from
        if not damaged:
            return numbered[-1] if which == "latest" and numbered else self.best_step()
        step, reason = max(damaged.items())
        others = [s for s in numbered if s not in damaged]
        what = (
            "it is the newest checkpoint, so it is refused rather than skipped"
            if which == "latest"
            else "its metric is unknown, so the best checkpoint cannot be chosen"
        )
        instead = (
            f"read the newest intact one with step={others[-1]} (--step {others[-1]}), or "
            if others
            else ""
        )
        raise CheckpointError(f"{reason}; {what}: {instead}move {self.directory / str(step)} away")

    def _metrics(self, *, tolerant: bool) -> dict[int, float]:
        """The metric of each complete checkpoint that has one; ``tolerant`` passes over
        unreadable manifests (retention must not fail for an old damaged checkpoint)."""
        metrics = {}
        for step in self.steps():
            try:
                metric = manifest.read(self.directory / str(step)).metric
            except CheckpointError:
                if not tolerant:
                    raise
                continue
            if metric is not None:
                metrics[step] = metric
        return metrics

    def _best(self, metrics: dict[int, float]) -> int | None:
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
            step: the step to restore; None restores the newest step folder, which must not
                be damaged (it is refused by name rather than skipped).
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
        folder, saved = self._open(step)
        wanted = leaf_table(target)
        error = _mismatch(folder, saved.leaves, wanted)
        if strict and error is not None:
            raise error
        return self._fill(folder, saved, target, _matching(saved.leaves, wanted))

    def extra(self, step: int) -> dict[str, Any] | None:
        """The JSON object this process saved with the checkpoint of ``step`` (``extra=`` of
        `save`), or None if it saved none. Its bytes are checked against the manifest (the
        arrays are not hashed again: `restore` does that).

        Raises:
            FileNotFoundError: there is no checkpoint for ``step``.
            CheckpointError: the manifest is damaged, or the file differs from its entry.
        """
        folder = self.directory / str(step)
        if not folder.is_dir():
            raise FileNotFoundError(f"no checkpoint for step {step} in {self.directory}")
        name = _extra_name()
        entry = manifest.read(folder).files.get(name)
        file = folder / name
        if entry is None:
            if file.exists():
                raise CheckpointError(f"checkpoint {folder}: file {name} is not in the manifest")
            return None
        manifest.verify_file(folder, name, entry)
        value = json.loads(file.read_bytes())
        return value if isinstance(value, dict) else None

    def verified_step(self) -> tuple[int | None, dict[int, CheckpointError]]:
        """The newest step whose folder verifies (every file checked against its manifest;
        no array is read), and the error of each newer step folder passed over on the way:
        what resuming a run starts from. Nothing is passed over silently: the caller says so.

        Returns:
            ``(step, passed_over)``: the step, or None if no folder verifies, and
            ``{step: CheckpointError}`` of the damaged newer folders, newest first.
        """
        passed_over: dict[int, CheckpointError] = {}
        for step in reversed(self._numbered()):
            try:
                _verified(self.directory / str(step), step)
                return step, passed_over
            except CheckpointError as error:
                passed_over[step] = error
        return None, passed_over

    def set_aside(self, step: int) -> pathlib.Path:
        """Moves the folder of ``step`` out of the series, to ``damaged-<step>-<hex>`` beside
        it, where it is kept for inspection: it no longer counts for `restore`, retention or
        the best step, and the step can be saved again. For a folder that fails verification.

        Returns:
            Where the folder now is.
        """
        _check_step(step)
        aside = self.directory / f"damaged-{step}-{uuid.uuid4().hex[:8]}"
        os.rename(self.directory / str(step), aside)
        return aside

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
        folder, saved = self._open(step)
        wanted = leaf_table(target)
        restored = _matching(saved.leaves, wanted)
        report = PartialRestore(
            restored=tuple(restored),
            skipped=tuple(p for p in wanted if p not in restored),
            unused=tuple(p for p in saved.leaves if p not in wanted),
        )
        return self._fill(folder, saved, target, restored), report

    def restore_tree(self, prefix: str, step: int | None = None) -> dict[str, Any]:
        """Every saved array whose path starts with ``prefix/``, as the nested dict of the
        rest of its path, with no target to restore into: ``restore_tree("params")`` gives
        ``{"dense_0": {"w": ..., "b": ...}, ...}`` whatever the optimizer state beside it.

        Args:
            prefix: the first entries of the paths, e.g. ``"params"``, ``"state"`` or
                ``"opt_state/ema"``.
            step: the step to restore; None restores the latest.

        Returns:
            The nested dict of jax arrays (``{}`` if no saved path starts with ``prefix/``).

        Raises:
            FileNotFoundError: there is no checkpoint for ``step``.
            CheckpointError: the checkpoint is corrupt, tampered with or unsafe.
        """
        folder, saved = self._open(step)
        target: dict[str, Any] = {}
        paths = [path for path in saved.leaves if path.startswith(f"{prefix}/")]
        for path in paths:
            leaf = saved.leaves[path]
            *parents, last = path.split("/")
            node = target
            for part in parents:
                node = node.setdefault(part, {})
            node[last] = jax.ShapeDtypeStruct(leaf.shape, jnp.dtype(leaf.dtype))
        if not paths:
            return {}
        tree = self._fill(folder, saved, target, paths)
        for part in prefix.split("/"):
            tree = tree[part]
        return tree

    def _open(self, step: int | None) -> tuple[pathlib.Path, Manifest]:
        """The verified folder and manifest of ``step`` (None: the newest step folder)."""
        newest = step is None
        if step is None:
            numbered = self._numbered()
            if not numbered:
                raise FileNotFoundError(f"no checkpoint in {self.directory}")
            step = numbered[-1]
        _check_step(step)
        folder = self.directory / str(step)
        if not folder.is_dir() and not folder.is_symlink():
            raise FileNotFoundError(
                f"no checkpoint for step {step} in {self.directory}; saved steps: {self.steps()}"
            )
        try:
            saved = _verified(folder, step)
        except CheckpointError as error:
            older = [s for s in self.steps() if s < step]
            if not newest or not older:
                raise
            raise CheckpointError(
                f"{error}; it is the newest checkpoint, so it is refused rather than skipped: "
                f"pass step={older[-1]} to restore the newest older one, or delete {folder}"
            ) from error
        return folder, saved

    def _fill(
        self, folder: pathlib.Path, saved: Manifest, target: PyTree, paths: list[str]
    ) -> PyTree:
        """``target`` with the leaves at ``paths`` read from the checkpoint."""
        leaves = leaves_by_path(target)
        parts = path_parts(target)
        arrays = read_arrays(
            folder,
            saved.leaves,
            {path: leaves[path] for path in paths},
            parts,
            by_path=saved.by_path,
        )
        values = [arrays.get(path, leaf) for path, leaf in leaves.items()]
        return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(target), values)

    def _apply_retention(self) -> None:
        steps = self.steps()
        keep = set(steps[-self.max_to_keep :])
        best = self._best(self._metrics(tolerant=True))
        if best is not None:
            keep.add(best)
        for step in steps:
            if step not in keep:
                _remove(self.directory / str(step))
