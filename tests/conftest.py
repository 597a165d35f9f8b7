"""The suite's settings: strict JAX, a fast compiler, workers, compilation caches, no stray writes.

* Strict JAX: implicit rank promotion raises; warnings are errors (pyproject).
* XLA compiles with most optimizations off (``jax_disable_most_optimizations``): the suite's
  programs are tiny and run once or twice, so compiling is most of their time and optimizing it
  buys nothing. Child processes inherit it through ``JAX_DISABLE_MOST_OPTIMIZATIONS``. Tests that
  must see the default compiler (the README's quick start, one training test per path) take the
  ``default_optimizations`` fixture.
* The files run on pytest-xdist's workers (``-n auto --dist loadfile`` in pyproject: one per
  core, at most four), each file whole on one worker, so its module-scoped fixtures are made
  once; the slowest files start first (``SLOW_FILES``), so the workers finish together.
* A persistent compilation cache for each worker, in a temporary folder that the worker and every
  child process it starts share (``JAX_COMPILATION_CACHE_DIR``, ``JAXNET_CACHE_DIR``): a program
  compiled once (a recipe's epoch, say) is loaded by the next test or child that needs it. A
  worker and its children never write at once (a test waits for its child), and two workers
  never share a folder: JAX writes entries in place, so a reader could see half of one. The
  folders are removed at the end; no test reads or writes the user's ``~/.cache/jaxnet/xla``.
* Hypothesis runs a bounded, derandomized profile and keeps no database in the work tree.
* The summary line counts XLA's compilations (JAX's monitoring events): how many programs were
  asked for, compiled, or loaded from the cache. ``tests/README.md`` says how the suite stays fast.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from typing import ClassVar

import hypothesis
import jax
import pytest
from jax import monitoring

_CACHE_OWNER = "JAXNET_TESTS_CACHE_OWNER"  # the pid of the process that made the folders
_CACHE_ROOT = "JAXNET_TESTS_CACHE_ROOT"  # the folder of the run's compilation caches
_CHILD_ENVIRONMENT = {
    "JAX_DISABLE_MOST_OPTIMIZATIONS": "1",
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
    "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
}

hypothesis.settings.register_profile(
    "jaxnet", max_examples=40, deadline=None, derandomize=True, database=None, print_blob=True
)
hypothesis.settings.load_profile("jaxnet")


def pytest_configure(config: pytest.Config) -> None:
    jax.config.update("jax_numpy_rank_promotion", "raise")
    if not os.environ.get(_CACHE_OWNER):  # the first process of the run (xdist's controller)
        os.environ[_CACHE_OWNER] = str(os.getpid())
        os.environ[_CACHE_ROOT] = tempfile.mkdtemp(prefix="jaxnet-tests-xla-")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    folder = os.path.join(os.environ[_CACHE_ROOT], worker)
    os.makedirs(folder, exist_ok=True)
    os.environ.update(JAX_COMPILATION_CACHE_DIR=folder, JAXNET_CACHE_DIR=folder)
    os.environ.update(_CHILD_ENVIRONMENT)
    jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    jax.config.update("jax_disable_most_optimizations", True)
    config.pluginmanager.register(_CompileCounter(config), "jaxnet-compile-counter")


def pytest_unconfigure(config: pytest.Config) -> None:
    if os.environ.get(_CACHE_OWNER) == str(os.getpid()):
        shutil.rmtree(os.environ[_CACHE_ROOT], ignore_errors=True)


# The files that take longest (half a minute or more), slowest first. Run first, they leave the
# short files for the end, so the workers finish together instead of one waiting for the other.
SLOW_FILES = (
    "test_docs.py", "test_train.py", "test_faults.py", "test_cli.py", "test_streaming.py",
    "test_distributed.py", "test_step_rows.py", "test_recurrent.py", "test_layer_contract.py",
    "test_norm.py", "test_attention.py", "test_graph.py", "test_experiments.py",
    "test_benchmarks.py", "test_fit_tree_inputs.py", "test_compile_cache.py",
)  # fmt: skip


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow files first, the others after them in their usual order (the sort is stable);
    pytest-xdist hands out whole files in this order (``--no-loadscope-reorder``)."""
    rank = {name: i for i, name in enumerate(SLOW_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: a worker per core, at most four (each holds JAX and its compiled programs)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(4, cores or 1))  # sched_getaffinity: Linux; macOS has cpu_count only


@pytest.fixture
def key() -> jax.Array:
    """A fresh typed PRNG key."""
    return jax.random.key(0)


@pytest.fixture
def default_optimizations(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """XLA's default optimizations for this test and its child processes.

    The in-memory caches are cleared before and after, so the test compiles its own programs
    and none of them outlives it.
    """
    monkeypatch.delenv("JAX_DISABLE_MOST_OPTIMIZATIONS")
    jax.clear_caches()
    jax.config.update("jax_disable_most_optimizations", False)
    try:
        yield
    finally:
        jax.config.update("jax_disable_most_optimizations", True)
        jax.clear_caches()


class _CompileCounter:
    """Counts JAX's compile events, in this process or summed over pytest-xdist's workers."""

    _EVENTS: ClassVar[dict[str, str]] = {
        "/jax/compilation_cache/compile_requests_use_cache": "programs",
        "/jax/compilation_cache/cache_hits": "loaded",
        "/jax/compilation_cache/cache_misses": "compiled",
    }

    SHOWN = 8  # the programs that took longest to compile or load, summed over their compiles

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.counts: Counter[str] = Counter()
        monitoring.register_event_listener(self._on_event)
        monitoring.register_event_duration_secs_listener(self._on_duration)

    def _on_event(self, event: str, **_: object) -> None:
        if event in self._EVENTS:
            self.counts[self._EVENTS[event]] += 1

    def _on_duration(self, event: str, duration: float, **kwargs: object) -> None:
        if event == "/jax/core/compile/backend_compile_duration":
            self.counts["compile_ms"] += round(duration * 1000)
            self.counts[f"ms:{kwargs.get('fun_name')}"] += round(duration * 1000)
            self.counts[f"n:{kwargs.get('fun_name')}"] += 1
        elif event == "/jax/core/compile/jaxpr_trace_duration":
            self.counts["traces"] += 1

    def pytest_sessionfinish(self) -> None:
        workeroutput = getattr(self.config, "workeroutput", None)
        if workeroutput is not None:  # an xdist worker reports to the controller
            workeroutput["jaxnet_compiles"] = dict(self.counts)

    def pytest_testnodedown(self, node: object, error: object) -> None:
        self.counts.update(getattr(node, "workeroutput", {}).get("jaxnet_compiles", {}))

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        c = self.counts
        terminalreporter.write_line(
            f"XLA in the test processes: {c['programs']} programs asked for, {c['compiled']} "
            f"compiled, {c['loaded']} loaded from the session cache, "
            f"{c['compile_ms'] / 1000:.0f} s compiling; {c['traces']} traces"
        )
        slowest = sorted((k for k in c if k.startswith("ms:")), key=c.__getitem__, reverse=True)
        for name in slowest[: self.SHOWN]:
            program = name.removeprefix("ms:")
            terminalreporter.write_line(
                f"  {c[name] / 1000:6.1f} s  {c['n:' + program]:5d}x  {program}"
            )
