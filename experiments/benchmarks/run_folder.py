"""What a run folder costs: the wall time of a whole training process with and without one.

Each round runs, in a fresh Python process each and alternating the order, the same recipe
job three ways:

- ``no folder``: ``job.fit(run_dir=None)``, the baseline: nothing is written;
- ``folder``: ``job.fit(run_dir=...)`` with the default ``Checkpointing()`` (asynchronous, as
  often as the disk keeps up): config, metrics.jsonl, curves.png redrawn, checkpoints;
- ``folder, every epoch``: the same with ``Checkpointing(every=1)``, a checkpoint per epoch;

and, for the whole command, ``jaxnet train RECIPE --no-progress`` itself. Times are whole
processes (interpreter start, imports, compilation, training, writing), as a user waits for
them; the figure is the median over rounds and its ratio to the baseline's median.

Run: ``python -m experiments.benchmarks.run_folder [--recipes temperature,digits-mlp]
[--rounds 5]``; ``--help`` runs in the same process as ``jaxnet --help``'s timing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import sys
import jaxnet as jn
recipe, run_dir, every = sys.argv[1], sys.argv[2], sys.argv[3]
job = jn.recipes.build(jn.recipes.make_config(recipe))
policy = jn.train.Checkpointing(every=None if every == "auto" else int(every))
job.fit(run_dir=None if run_dir == "none" else run_dir, progress=False, checkpointing=policy)
"""

VARIANTS = {
    "no folder": ("none", "auto"),
    "folder": ("run", "auto"),
    "folder, every epoch": ("run", "1"),
}


def _seconds(command: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - start


def _round(recipe: str, order: list[str], work: Path) -> dict[str, float]:
    """One wall time per variant (and for ``jaxnet train``), in ``order``."""
    times = {}
    for name in order:
        shutil.rmtree(work / "run", ignore_errors=True)
        if name == "jaxnet train":
            command = [sys.executable, "-m", "jaxnet.cli", "train", recipe, "--no-progress"]
            command += ["--out", "run"]
        else:
            run_dir, every = VARIANTS[name]
            command = [sys.executable, "-c", CHILD, recipe, run_dir, every]
        times[name] = _seconds(command, work)
    return times


def measure(recipe: str, rounds: int) -> dict[str, dict[str, float]]:
    """Median wall time of each variant over ``rounds`` alternating rounds, and its ratio to
    ``no folder``."""
    names = [*VARIANTS, "jaxnet train"]
    samples: dict[str, list[float]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory() as folder:
        for i in range(rounds):
            order = names if i % 2 == 0 else names[::-1]
            for name, seconds in _round(recipe, order, Path(folder)).items():
                samples[name].append(seconds)
    base = statistics.median(samples["no folder"])
    return {
        name: {"median_s": statistics.median(values), "ratio": statistics.median(values) / base}
        for name, values in samples.items()
    }


def help_seconds(rounds: int) -> float:
    """Median wall time of ``python -m jaxnet.cli --help``."""
    command = [sys.executable, "-m", "jaxnet.cli", "--help"]
    return statistics.median(_seconds(command, Path.cwd()) for _ in range(rounds))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", default="temperature,digits-mlp")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    results: dict[str, object] = {"jaxnet --help median_s": help_seconds(args.rounds)}
    for recipe in args.recipes.split(","):
        results[recipe] = measure(recipe, args.rounds)
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
