"""A checkpoint's manifest and the checks that a step folder is exactly what was written.

``manifest.json`` is the last file written into a checkpoint folder: format, step, metric, the
leaf table (path, shape, dtype) and the size and sha256 of every other file in the folder, and
a sha256 of the manifest itself (``checksum``), so an edited, swapped or cut-off manifest is
refused like a damaged array file::

    {"format": "jaxnet.checkpoint/2", "step": 3, "metric": 0.97,
     "leaves": [{"path": "params/dense_0/w", "shape": [64, 128], "dtype": "float32",
                 "key_impl": null}, ...],
     "files": {"arrays/manifest.ocdbt": {"size": 112, "sha256": "..."}, ...},
     "checksum": "<sha256 of the other entries, as canonical JSON>"}

Manifests of the first format (``jaxnet.checkpoint/1``) have no checksum; their files are
still checked.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
from typing import Any, NamedTuple

from jaxnet import atomic
from jaxnet.runs.storage import Leaf

FORMAT = "jaxnet.checkpoint/2"  # arrays stored under their tree paths; a checksummed manifest
FIRST_FORMAT = "jaxnet.checkpoint/1"  # arrays stored as {"0": leaf_0, ...}; no checksum
MANIFEST = "manifest.json"


class CheckpointError(ValueError):
    """A checkpoint folder is corrupt, truncated, tampered with, incomplete or unsafe to read."""


class FileEntry(NamedTuple):
    size: int
    sha256: str


class Manifest(NamedTuple):
    format: str
    step: int
    metric: float | None
    leaves: dict[str, Leaf]  # in saved order (the first format's orbax keys "0", "1", ...)
    files: dict[str, FileEntry]  # posix paths relative to the step folder

    @property
    def by_path(self) -> bool:
        """Whether the arrays are stored under their tree paths (the current format)."""
        return self.format != FIRST_FORMAT


# ----------------------------------------------------------------------------- files


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
            _check_regular(folder, path)
            files.add(path.relative_to(folder).as_posix())
    return files


def _check_regular(folder: pathlib.Path, path: pathlib.Path) -> None:
    """Refuses ``path`` (in ``folder``) unless it is a regular file, not a link."""
    if path.is_symlink():
        raise CheckpointError(f"checkpoint {folder}: {path} is a symbolic link; refused")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {folder}: {path} is not a regular file")


def _file_table(folder: pathlib.Path) -> dict[str, FileEntry]:
    """Size and sha256 of every file in ``folder`` except the manifest."""
    files = sorted(_files_on_disk(folder) - {MANIFEST})
    return {rel: FileEntry((folder / rel).stat().st_size, _sha256(folder / rel)) for rel in files}


def _check_relative(folder: pathlib.Path, rel: str) -> None:
    parts = rel.split("/")
    if rel.startswith("/") or "\\" in rel or any(part in ("", ".", "..") for part in parts):
        raise CheckpointError(f"checkpoint {folder}: manifest path {rel!r} leaves the folder")


def verify(folder: pathlib.Path) -> Manifest:
    """Checks every file of ``folder`` against its manifest; returns the manifest.

    Raises:
        CheckpointError: a link, a special file, a missing, malformed or edited manifest, or
            a missing, extra, resized or modified file.
    """
    if folder.is_symlink():
        raise CheckpointError(f"checkpoint {folder} is a symbolic link; refused")
    on_disk = _files_on_disk(folder) - {MANIFEST}
    manifest = read(folder)
    for rel in manifest.files:
        _check_relative(folder, rel)
    for rel in sorted(set(manifest.files) - on_disk):
        raise CheckpointError(f"checkpoint {folder}: file {rel} is missing")
    for rel in sorted(on_disk - set(manifest.files)):
        raise CheckpointError(f"checkpoint {folder}: file {rel} is not in the manifest")
    for rel, entry in manifest.files.items():
        verify_file(folder, rel, entry)
    return manifest


def verify_file(folder: pathlib.Path, rel: str, entry: FileEntry) -> None:
    """Checks one file of ``folder`` against its manifest entry: its size, then its sha256.

    Args:
        folder: the step folder.
        rel: the file's path relative to ``folder``, in posix form, as the manifest names it.
        entry: the file's entry in the manifest (``read(folder).files[rel]``).

    Raises:
        CheckpointError: naming the file: ``rel`` leaves the folder, or the file is missing,
            a link or not a regular file, or has another size or sha256 than ``entry``.
    """
    _check_relative(folder, rel)
    path = folder / rel
    if not path.exists() and not path.is_symlink():
        raise CheckpointError(f"checkpoint {folder}: file {rel} is missing")
    _check_regular(folder, path)
    size = path.stat().st_size
    if size != entry.size:
        raise CheckpointError(
            f"checkpoint {folder}: file {rel} has {size} bytes, the manifest says {entry.size}"
        )
    if _sha256(path) != entry.sha256:
        raise CheckpointError(f"checkpoint {folder}: file {rel} was modified (sha256 differs)")


# ----------------------------------------------------------------------------- manifest


def _checksum(raw: dict[str, Any]) -> str:
    """sha256 of the manifest's entries other than ``checksum``, as canonical JSON."""
    body = {k: v for k, v in raw.items() if k != "checksum"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def write(folder: pathlib.Path, step: int, metric: float | None, leaves: dict[str, Leaf]) -> None:
    """Writes manifest.json, the last file of a checkpoint: its presence marks completeness."""
    raw: dict[str, Any] = {
        "format": FORMAT,
        "step": step,
        "metric": metric,
        "leaves": [{"path": p, **leaf._asdict()} for p, leaf in leaves.items()],
        "files": {rel: entry._asdict() for rel, entry in _file_table(folder).items()},
    }
    raw["checksum"] = _checksum(raw)
    atomic.write_text(folder / MANIFEST, json.dumps(raw, indent=1))


def _parse_leaf(leaf: dict) -> Leaf:
    key_impl = None if leaf["key_impl"] is None else str(leaf["key_impl"])
    return Leaf(tuple(int(n) for n in leaf["shape"]), str(leaf["dtype"]), key_impl)


def _parse(raw: dict) -> Manifest:
    """The manifest from its JSON form; any malformation raises KeyError/TypeError/ValueError."""
    if raw["format"] not in (FORMAT, FIRST_FORMAT):
        raise ValueError(f"format {raw['format']!r}, expected {FORMAT!r}")
    if raw["format"] == FORMAT and raw["checksum"] != _checksum(raw):
        raise ValueError("its checksum does not match its contents: edited or damaged")
    leaves = {str(leaf["path"]): _parse_leaf(leaf) for leaf in raw["leaves"]}
    if len(leaves) != len(raw["leaves"]):
        raise ValueError("a leaf path appears twice")
    files = {
        str(rel): FileEntry(int(entry["size"]), str(entry["sha256"]))
        for rel, entry in raw["files"].items()
    }
    metric = None if raw["metric"] is None else float(raw["metric"])
    return Manifest(str(raw["format"]), int(raw["step"]), metric, leaves, files)


def read(folder: pathlib.Path) -> Manifest:
    """Parses manifest.json of ``folder`` (files are not checked; see `verify`).

    Raises:
        CheckpointError: the manifest is missing, malformed or fails its checksum.
    """
    file = folder / MANIFEST
    if not file.is_file():
        raise CheckpointError(
            f"checkpoint {folder} has no {MANIFEST}: it is damaged or was not written by jaxnet"
        )
    try:
        return _parse(json.loads(file.read_text(encoding="utf-8")))
    except (KeyError, TypeError, ValueError, AttributeError, UnicodeDecodeError) as exc:
        message = f"no entry {exc}" if isinstance(exc, KeyError) else str(exc)
        raise CheckpointError(f"checkpoint {folder}: {MANIFEST} is malformed ({message})") from exc
