"""Timers, the machine's description, its matmul roofline, and XLA's count of FLOPs and bytes."""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

PEER_PACKAGES = ("flax", "dm-haiku", "equinox", "torch")


def seconds(fn: Callable[[], Any]) -> float:
    """Wall-clock seconds of one call of ``fn`` (which must block until its work is done)."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what ``platform`` says."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine() -> dict[str, Any]:
    """What the numbers were measured on: CPU, cores, load, library versions, flags, date."""
    device = jax.devices()[0]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": cores,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "device": f"{device.platform} ({device.device_kind})",
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxlib": _version("jaxlib"),
        "optax": _version("optax"),
        "peers": {p: _version(p) for p in PEER_PACKAGES},
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python -m experiments.benchmarks " + " ".join(sys.argv[1:]),
    }


def matmul_flops_per_second(n: int = 1024, calls: int = 4) -> float:
    """FLOP/s of a jitted ``(n, n) @ (n, n)`` float32 matmul, compiled before timing: the
    machine's practical roofline for the dense layers measured beside it."""
    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    b = jax.random.normal(jax.random.key(1), (n, n), jnp.float32)
    matmul = jax.jit(jnp.matmul)
    matmul(a, b).block_until_ready()

    def run() -> None:
        for _ in range(calls):
            out = matmul(a, b)
        out.block_until_ready()

    return 2.0 * n**3 * calls / seconds(run)


def _first(analysis: Any) -> dict[str, Any]:
    """``cost_analysis()`` is a dict in recent JAX and a list of one dict in older ones."""
    if isinstance(analysis, list | tuple):
        return dict(analysis[0]) if analysis else {}
    return dict(analysis or {})


def xla_analysis(jitted: Any, *args: Any) -> dict[str, Any]:
    """XLA's FLOP count and buffer sizes of ``jitted(*args)``, from ahead-of-time compilation.

    ``memory_bytes`` is what the compiled program holds at once: arguments + outputs +
    temporaries − the bytes aliased by donation (a static, exact number; no timing noise).
    """
    compiled = jitted.lower(*args).compile()
    compiled = getattr(compiled, "compiled", compiled)  # equinox wraps JAX's Compiled
    cost = _first(compiled.cost_analysis())
    out: dict[str, Any] = {"flops": cost.get("flops")}
    memory = compiled.memory_analysis()
    if memory is not None:
        out["memory_bytes"] = int(
            memory.argument_size_in_bytes
            + memory.output_size_in_bytes
            + memory.temp_size_in_bytes
            - memory.alias_size_in_bytes
        )
        out["memory_source"] = "xla"
    return out


def device_peak_bytes() -> int | None:
    """The device allocator's peak (GPU, TPU); None on CPU, whose client keeps no stats."""
    stats = jax.devices()[0].memory_stats()
    return None if not stats else stats.get("peak_bytes_in_use")


def max_rss_bytes() -> int:
    """This process's peak resident set size so far (``getrusage``; kilobytes on Linux)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"no {field} in /proc/self/status")


def peak_rss_growth(fn: Callable[[], Any]) -> tuple[int, str]:
    """How far the peak resident set size rises above the current one while ``fn`` runs.

    On Linux the kernel's high-water mark is reset first (``/proc/self/clear_refs``), so the
    result is the peak during ``fn`` ("rss"); elsewhere it is the growth of ``getrusage``'s
    lifetime peak, which stays 0 while ``fn`` needs less than the process once held
    ("maxrss").
    """
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM to the current VmRSS
        before = _status_kb("VmRSS")
        fn()
        return (_status_kb("VmHWM") - before) * 1024, "rss"
    except OSError:
        before = max_rss_bytes()
        fn()
        return max_rss_bytes() - before, "maxrss"
