"""JAX's persistent compilation cache, in a folder jaxnet names.

XLA compilation is most of a short run's time: ``jaxnet train`` on the digits spends more of
its seconds compiling the epoch than running it. JAX can keep every compiled program on disk
and load it the next time the same program (same code, shapes, devices and JAX version) is
compiled; :func:`enable_compile_cache` turns that on for every program, however small or quick
to compile. ``jaxnet train`` does so unless given ``--no-compile-cache``; from Python, call it
before the first compilation.

The folder: ``$JAXNET_CACHE_DIR``, else ``$XDG_CACHE_HOME/jaxnet/xla``, else
``~/.cache/jaxnet/xla``. A cache folder configured for JAX already (``JAX_COMPILATION_CACHE_DIR``
or ``jax.config``) is kept. The entries are JAX's own; deleting the folder only costs the next
run its compilation.
"""

from __future__ import annotations

import os
import pathlib

import jax
from jax.experimental.compilation_cache import compilation_cache

CACHE_ENV = "JAXNET_CACHE_DIR"
"""The environment variable that names the cache folder."""


def default_cache_dir() -> pathlib.Path:
    """``$JAXNET_CACHE_DIR``, else ``$XDG_CACHE_HOME/jaxnet/xla``, else ``~/.cache/jaxnet/xla``."""
    if os.environ.get(CACHE_ENV):
        return pathlib.Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(base) / "jaxnet" / "xla"


def enable_compile_cache(folder: str | os.PathLike[str] | None = None) -> pathlib.Path:
    """Keep every compiled program in ``folder`` (default :func:`default_cache_dir`), so the
    next process that compiles the same one loads it instead; returns the folder in use.

    Without ``folder``, a cache folder JAX was already given (``JAX_COMPILATION_CACHE_DIR``,
    ``jax.config``) is kept, now for every program too. A call with another folder than the
    one in use makes JAX open the new one. The folder grows without a limit of its own:
    delete it, or set ``jax_compilation_cache_max_size``, to bound it.

    Raises:
      OSError: the folder cannot be made (naming it).

    Example (it changes the process's JAX settings, so not run here)::

        folder = jn.train.enable_compile_cache()  # ~/.cache/jaxnet/xla
        result = jn.train.fit(...)  # the second run of this script loads its programs
    """
    current = jax.config.jax_compilation_cache_dir  # type: ignore[attr-defined]
    if folder is None and current:
        path = pathlib.Path(current)
    else:
        path = pathlib.Path(folder) if folder is not None else default_cache_dir()
        path.mkdir(parents=True, exist_ok=True)
    if current and pathlib.Path(current) != path:
        compilation_cache.reset_cache()  # else JAX goes on writing to the folder it opened
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)  # every program
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path
