"""What the persistent compilation cache saves: ``jaxnet train`` run twice on an empty cache.

For each recipe, a fresh cache folder (``JAXNET_CACHE_DIR``, a temporary folder removed after)
and two runs of ``jaxnet train RECIPE --out <tmp> --no-progress`` in new processes, one after
the other: the first compiles and fills the cache, the second loads its programs. Wall times
are of the whole command (start-up, data, compilation, training, run folder), the median over
``--repeats`` such pairs, and the ratio is second / first.

Run: ``python -m experiments.benchmarks.compile_cache [--repeats 3]
[--recipes digits-mlp,digits-cnn]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import jax


def _run(recipe: str, out: str, cache: str) -> float:
    """Seconds of one ``jaxnet train`` in a new process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION")}
    env["JAXNET_CACHE_DIR"] = cache
    cli = "from jaxnet.cli import main; raise SystemExit(main())"  # the jaxnet command
    command = [sys.executable, "-c", cli, "train", recipe, "--out", out, "--no-progress"]
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    return time.perf_counter() - start


def pair(recipe: str) -> tuple[float, float]:
    """(first, second) wall seconds of two runs on one fresh cache folder."""
    with tempfile.TemporaryDirectory() as folder:
        cache = os.path.join(folder, "cache")
        first = _run(recipe, os.path.join(folder, "one"), cache)
        second = _run(recipe, os.path.join(folder, "two"), cache)
    return first, second


def main(argv: list[str] | None = None) -> None:
    """Print the table of docs/cli.md's "The compilation cache"."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--recipes", default="digits-mlp,digits-cnn")
    args = parser.parse_args(argv)
    print(f"{jax.devices()[0].platform}, {os.cpu_count()} cores, median of {args.repeats} pairs")
    print("| recipe | first run s | second run s | second / first |\n|---|---:|---:|---:|")
    for recipe in args.recipes.split(","):
        runs = [pair(recipe) for _ in range(args.repeats)]
        first = statistics.median(r[0] for r in runs)
        second = statistics.median(r[1] for r in runs)
        print(f"| {recipe} | {first:.1f} | {second:.1f} | {second / first:.2f} |")


if __name__ == "__main__":
    main()
