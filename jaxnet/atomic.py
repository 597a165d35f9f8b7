"""Atomic files: write a temporary sibling, ``fsync`` it, rename it over the target.

A reader (or a run resumed after kill -9 or a full disk) sees either the old file or the new
one, never a cut-off one: ``os.replace`` within one folder is atomic on POSIX, and the folder
itself is ``fsync``ed after the rename so that the new name survives a power loss too.

Temporaries are named ``.tmp-<name>-<random>`` beside the target; :func:`remove_leftovers`
deletes the ones a killed process left behind.

Example:
    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> write_text(folder / "config.json", "{}\\n")
    >>> (folder / "config.json").read_text()
    '{}\\n'
    >>> sorted(p.name for p in folder.iterdir())
    ['config.json']
"""

from __future__ import annotations

import os
import pathlib
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

TEMPORARY_PREFIXES = (".tmp-", ".deleting-")
"""Names of what an interrupted write or delete leaves behind; never a finished file."""


def fsync_path(path: str | os.PathLike[str]) -> None:
    """Flush one file or folder to the disk (a folder's fsync makes its entries durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(folder: str | os.PathLike[str]) -> None:
    """``fsync`` every file and folder below ``folder``, then ``folder`` itself: before a
    folder is renamed into place, everything in it must be on the disk."""
    for root, _, names in os.walk(folder):
        for name in names:
            fsync_path(os.path.join(root, name))
        fsync_path(root)


@contextmanager
def replacing(path: str | os.PathLike[str]) -> Iterator[pathlib.Path]:
    """A temporary path to write instead of ``path``; renamed over ``path`` when the block
    ends without an error, deleted when it raises. An `OSError` that names no file (a full
    disk in ``write``) is raised again naming ``path``.

    Example:
        >>> import pathlib, tempfile
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "curves.png"
        >>> with replacing(target) as tmp:
        ...     _ = tmp.write_bytes(b"png")
        >>> target.read_bytes()
        b'png'
    """
    target = pathlib.Path(path)
    tmp = target.with_name(f"{TEMPORARY_PREFIXES[0]}{target.name}-{uuid.uuid4().hex[:12]}")
    try:
        yield tmp
        fsync_path(tmp)
        os.replace(tmp, target)
    except BaseException as error:
        tmp.unlink(missing_ok=True)
        if isinstance(error, OSError) and error.filename is None:  # a write() names no file
            raise OSError(error.errno, error.strerror or str(error), str(target)) from error
        raise
    fsync_path(target.parent)


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace the file ``path`` with ``data``, atomically (see the module docstring)."""
    with replacing(path) as tmp, open(tmp, "wb") as file:
        file.write(data)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Replace the file ``path`` with ``text`` (UTF-8), atomically."""
    write_bytes(path, text.encode("utf-8"))


def make_folder(path: str | os.PathLike[str]) -> pathlib.Path:
    """``mkdir -p`` whose new folders are durable: each folder it creates is ``fsync``ed in
    its parent, so a file renamed into it later survives a power loss with its folder."""
    folder = pathlib.Path(path)
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for new in reversed(missing):
        new.mkdir(exist_ok=True)
        fsync_path(new.parent)
    return pathlib.Path(path)


def remove_leftovers(folder: str | os.PathLike[str]) -> list[pathlib.Path]:
    """Delete the ``.tmp-*`` and ``.deleting-*`` entries directly in ``folder`` that a killed
    write or delete left behind; returns what was removed (nothing if the folder is absent)."""
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for entry in sorted(folder.iterdir()):
        if not entry.name.startswith(TEMPORARY_PREFIXES):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed
