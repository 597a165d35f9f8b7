"""The harness: build every implementation of a case, compile each, then time them side by side.

Per case: each implementation is built and its first step timed (tracing + compilation + one
step). A short calibration sizes each measurement to about ``target`` seconds. Then, for each
of ``repeats`` rounds, every implementation runs every mode it has, in an order rotated each
round, and a jitted matmul measures the machine's FLOP/s in between: slow drifts of a shared
machine's load hit every implementation alike, and the medians over rounds are reported.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import time
from collections.abc import Callable
from typing import Any

from experiments.benchmarks import jax_impls, measure, peers
from experiments.benchmarks.cases import Case
from experiments.benchmarks.runner import Runner

BASELINE = "pure JAX (hand-written)"

Builder = Callable[[Case], "Runner | str"]


@dataclasses.dataclass(frozen=True)
class Impl:
    """An implementation: its key for ``--impls``, the package it needs, and its builder."""

    key: str
    name: str
    package: str | None  # the import that must succeed, None for jax itself
    build: Builder
    cases: tuple[str, ...] | None = None  # None: every case


IMPLS = (
    Impl("jax", BASELINE, None, jax_impls.pure_jax),
    Impl("jaxnet", "jaxnet", None, jax_impls.jaxnet),
    Impl("stax", "stax", None, jax_impls.stax),
    Impl("linen", "Flax linen", "flax", peers.flax_linen),
    Impl("nnx", "Flax NNX", "flax", peers.flax_nnx),
    Impl("haiku", "Haiku", "haiku", peers.haiku),
    Impl("equinox", "Equinox", "equinox", peers.equinox),
    Impl("torch", "PyTorch eager", "torch", peers.torch_runner),
    Impl("torch-1", "PyTorch eager, 1 thread", "torch", lambda c: peers.torch_runner(c, threads=1)),
    Impl(
        "torch-compile",
        "PyTorch torch.compile",
        "torch",
        lambda case: peers.torch_runner(case, compiled=True),
        cases=("wide",),
    ),
)


def installed(package: str | None) -> bool:
    if package is None:
        return True
    try:
        __import__(package)
    except ImportError:
        return False
    return True


@dataclasses.dataclass(frozen=True)
class Settings:
    repeats: int
    target: float  # seconds per measurement
    fit_epochs: int  # timed epochs of fit, after its first (compiling) epoch
    max_steps: int = 5000


def _sized(runner: Runner, settings: Settings) -> int:
    """Steps per measurement so that one takes about ``settings.target`` seconds."""
    probe = 3
    per_step = measure.seconds(lambda: runner.steps(probe, read=False)) / probe
    return max(3, min(settings.max_steps, round(settings.target / max(per_step, 1e-7))))


class _Timings:
    """Seconds per step (per epoch for fit) of each (implementation, mode), per round."""

    def __init__(self) -> None:
        self.samples: dict[tuple[str, str], list[float]] = {}

    def add(self, name: str, mode: str, value: float) -> None:
        self.samples.setdefault((name, mode), []).append(value)


def _round(runner: Runner, n: int, case: Case, settings: Settings, timings: _Timings) -> None:
    """Time each mode once, after an untimed warm-up call (caches and thread pools were just
    used by another implementation)."""
    for mode in runner.modes:
        if mode in ("read", "noread"):
            runner.steps(1, read=False)
            t = measure.seconds(functools.partial(runner.steps, n, read=mode == "read"))
            timings.add(runner.name, mode, t / n)
        elif mode == "fused":
            epochs = max(1, math.ceil(n / case.steps_per_epoch))
            runner.epochs(1)
            t = measure.seconds(functools.partial(runner.epochs, epochs))
            timings.add(runner.name, mode, t / (epochs * case.steps_per_epoch))
        else:  # fit: one compiling epoch, then the timed ones
            per_epoch = runner.fit(1 + settings.fit_epochs)[1:]
            timings.add(runner.name, mode, measure.median(per_epoch))


def run_case(
    case: Case, impls: list[Impl], settings: Settings, log: Callable[[str], None]
) -> dict[str, Any]:
    """Every implementation of ``case``, measured side by side; the case's JSON record."""
    runners: list[Runner] = []
    skipped: dict[str, str] = {}
    first_step: dict[str, float] = {}
    for impl in impls:
        if impl.cases is not None and case.name not in impl.cases:
            continue
        built = impl.build(case)
        if isinstance(built, str):
            skipped[impl.name] = built
            log(f"  {impl.name}: skipped ({built})")
            continue
        first_step[built.name] = measure.seconds(functools.partial(built.steps, 1, read=True))
        log(f"  {built.name}: first step {first_step[built.name]:.2f} s")
        runners.append(built)
    if not runners:
        return {"case": case.name, "description": case.description, "skipped": skipped}

    first_epoch = {
        r.name: measure.seconds(functools.partial(r.epochs, 1))
        for r in runners
        if "fused" in r.modes
    }
    sizes = {r.name: _sized(r, settings) for r in runners}
    timings, roofline = _Timings(), []
    for k in range(settings.repeats):
        order = runners[k % len(runners) :] + runners[: k % len(runners)]
        for runner in order:
            _round(runner, sizes[runner.name], case, settings, timings)
        roofline.append(measure.matmul_flops_per_second())
        log(f"  round {k + 1}/{settings.repeats} done")
    analyses = {r.name: _analysis(r, log) for r in runners}
    return _record(case, runners, timings, roofline, analyses, first_step, first_epoch, skipped)


def _analysis(runner: Runner, log: Callable[[str], None]) -> dict[str, Any]:
    try:
        return runner.analysis()
    except Exception as error:  # a peer's AOT API may differ; the timings still stand
        log(f"  {runner.name}: no FLOP/memory analysis ({type(error).__name__}: {error})")
        return {}


def _record(
    case: Case,
    runners: list[Runner],
    timings: _Timings,
    roofline: list[float],
    analyses: dict[str, dict[str, Any]],
    first_step: dict[str, float],
    first_epoch: dict[str, float],
    skipped: dict[str, str],
) -> dict[str, Any]:
    medians = {key: measure.median(v) for key, v in timings.samples.items()}
    flops = analyses.get(BASELINE, {}).get("flops")
    matmul = measure.median(roofline)
    steps = case.steps_per_epoch
    rows = []
    for r in runners:
        modes: dict[str, dict[str, Any]] = {}
        for mode in r.modes:
            value = medians[(r.name, mode)]
            base = _baseline(medians, mode, steps)
            modes[mode] = {
                "median": value,
                "samples": timings.samples[(r.name, mode)],
                "ratio": value / base if base else None,
            }
        per_step = [float(modes[m]["median"]) for m in ("read", "noread", "fused") if m in modes]
        best = min(per_step) if per_step else None
        achieved = flops / best if flops and best else None
        rows.append(
            {
                "name": r.name,
                "note": r.note,
                "modes": modes,
                "first_step_s": first_step[r.name],
                "first_epoch_s": first_epoch.get(r.name),
                "flops_per_s": achieved,
                "roofline_fraction": achieved / matmul if achieved else None,
                "last_loss": r.last_loss,
                **analyses[r.name],
            }
        )
    return {
        "case": case.name,
        "description": case.description,
        "batch_size": case.batch_size,
        "steps_per_epoch": steps,
        "train_examples": case.data.num_train,
        "flops_per_step": flops,
        "matmul_flops_per_s": matmul,
        "matmul_samples": roofline,
        "rows": rows,
        "skipped": skipped,
    }


def _baseline(medians: dict[tuple[str, str], float], mode: str, steps: int) -> float | None:
    """The hand-written baseline's time in the same mode; fit compares with its fused epoch."""
    if mode == "fit":
        fused = medians.get((BASELINE, "fused"))
        return None if fused is None else fused * steps
    return medians.get((BASELINE, mode))


def run(
    cases: list[Case], impls: list[Impl], settings: Settings, log: Callable[[str], None]
) -> dict[str, Any]:
    """The whole suite: machine, settings and one record per case."""
    missing = sorted({i.package for i in impls if i.package and not installed(i.package)})
    available = [i for i in impls if installed(i.package)]
    if missing:
        log(f"peers not installed, skipped: {', '.join(missing)}")
    start = time.perf_counter()
    info = measure.machine()
    records = []
    for case in cases:
        log(f"{case.name}: {case.description}")
        records.append(run_case(case, available, settings, log))
    info["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    return {
        "machine": info,
        "settings": dataclasses.asdict(settings),
        "missing_peers": missing,
        "seconds": time.perf_counter() - start,
        "cases": records,
    }
