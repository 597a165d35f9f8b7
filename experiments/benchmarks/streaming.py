"""What streaming costs: ``fit`` on a stream of host batches against ``fit`` in memory.

Two cases, the same data and the same batches on both paths:

- ``small``: the digits MLP (64 → 128 → 128 → 10), batch 128, the digits' 1,437 training
  examples repeated 8 times (11,496 rows, 89 steps an epoch);
- ``wide``: 64 → 1024 → 1024 → 10, batch 1024, 65,536 synthetic rows (64 steps an epoch).

The in-memory path is ``fit(net, dataset)``: the data on the device, one compiled call per
epoch. The streaming path is ``fit(net, jn.data.stream(source))`` where ``source(epoch)``
gathers each batch on the host from a NumPy array in a new order (what a user's loader does),
with the default ``steps_per_call``. Both evaluate the same test rows after each epoch. Each
run trains ``--epochs`` epochs; the first (compilation) is dropped and the median epoch time
taken; runs alternate between the paths ``--repeats`` times and the table reports the median
per-step time of each and their ratio. A third run per repeat streams with a step row every
``--log-every`` steps (``jn.train.Streaming(log_every=...)``: chunks end there, one host sync
and a row each), to show what rows inside an epoch cost.

``--disk`` also trains one epoch of an on-disk dataset: ``--disk-gb`` GB of float32 features
(1,024 per row) written to a temporary folder, opened with ``np.load(mmap_mode="r")``, through
``jn.data.from_arrays`` (the streaming statistics pass) and ``fit``; it reports the seconds and
the peak resident memory (``VmHWM`` of ``/proc/self/status``: a fresh child's own, where
``ru_maxrss`` would count the parent's memory at the fork) of a child process that does only
that, and removes the folder.

Run: ``python -m experiments.benchmarks.streaming [--repeats 5] [--epochs 6] [--log-every 10]
[--disk] [--disk-gb 4]``.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
from typing import Any

import jax
import numpy as np
import optax

import jaxnet as jn


def _cases() -> dict[str, tuple[Any, Any, int]]:
    digits = jn.data.load("digits")
    x = np.tile(digits.x_train, (8, 1))
    y = np.tile(digits.y_train, 8)
    small = jn.data.from_arrays(x, y, standardize=False)
    rng = np.random.default_rng(0)
    wx = rng.normal(size=(65_536 + 4096, 64)).astype(np.float32)
    wy = (wx[:, :10].argmax(1)).astype(np.int32)
    wide = jn.data.from_arrays(wx, wy, test_fraction=4096 / len(wx), standardize=False)
    return {
        "small": (jn.recipes.mlp(128, 2, "relu", 10), small, 128),
        "wide": (jn.recipes.mlp(1024, 2, "relu", 10), wide, 1024),
    }


def _host_source(data: Any, batch_size: int):
    """``source(epoch)``: batches gathered on the host in a new order each epoch."""
    steps = data.num_train // batch_size

    def source(epoch: int):
        order = np.random.default_rng(epoch).permutation(data.num_train)
        for i in range(steps):
            rows = order[i * batch_size : (i + 1) * batch_size]
            yield data.x_train[rows], data.y_train[rows]

    return source


def _per_step(history: list[dict[str, Any]]) -> float:
    """Median seconds per step over the epochs after the first."""
    steps = history[0]["step"]
    return statistics.median(row["seconds"] for row in history[1:]) / steps


def _fit(
    net: Any, data: Any, batch_size: int | None, epochs: int, **kwargs: Any
) -> list[dict[str, Any]]:
    result = jn.train.fit(
        net,
        data,
        optimizer=optax.adam(1e-3),
        loss=jn.losses.softmax_cross_entropy,
        epochs=epochs,
        batch_size=batch_size,
        progress=False,
        **kwargs,
    )
    return result.history


def compare(repeats: int, epochs: int, log_every: int) -> list[tuple[str, float, float, float]]:
    """(case, in-memory s/step, streaming s/step, streaming with a step row every
    ``log_every`` steps s/step) medians of alternating runs."""
    rows = []
    rows_every = jn.train.Streaming(log_every=log_every)
    for name, (net, data, batch_size) in _cases().items():
        test = [(data.x_test, data.y_test)]
        memory, streamed, logged = [], [], []
        for _ in range(repeats):
            memory.append(_per_step(_fit(net, data, batch_size, epochs)))
            stream = jn.data.stream(_HostBatches(data, batch_size), test=test)
            streamed.append(_per_step(_fit(net, stream, None, epochs)))
            logged.append(_per_step(_fit(net, stream, None, epochs, streaming=rows_every)))
        medians = (statistics.median(t) for t in (memory, streamed, logged))
        rows.append((name, *medians))
    return rows


class _HostBatches:
    """:func:`_host_source` with a length, so ``fit`` knows the pass's steps."""

    def __init__(self, data: Any, batch_size: int) -> None:
        self.source, self.steps = _host_source(data, batch_size), data.num_train // batch_size

    def __len__(self) -> int:
        return self.steps

    def __call__(self, epoch: int):
        return self.source(epoch)


DISK_CHILD = """
import sys, time
import numpy as np, optax, jaxnet as jn
folder = sys.argv[1]
start = time.perf_counter()
data = jn.data.from_arrays(np.load(f"{folder}/x.npy", mmap_mode="r"), np.load(f"{folder}/y.npy"))
stats = time.perf_counter() - start
net = jn.serial(jn.nn.Dense(64), jn.nn.Relu, jn.nn.Dense(10))
result = jn.train.fit(net, data, optimizer=optax.adam(1e-3), loss=jn.losses.softmax_cross_entropy,
                      epochs=1, batch_size=1024, progress=False)
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
peak /= 2**20  # kB -> GB; ru_maxrss would count the parent's resident memory when it forked
print(f"{stats:.1f} {result.history[0]['seconds']:.1f} {result.history[0]['step']} {peak:.2f}")
"""


def on_disk(gigabytes: float) -> str:
    """Write the synthetic file, train one epoch in a child, report; the folder is removed."""
    features = 1024
    rows = int(gigabytes * 2**30 / (4 * features))
    with tempfile.TemporaryDirectory() as folder:
        x = np.lib.format.open_memmap(
            os.path.join(folder, "x.npy"), "w+", np.float32, (rows, features)
        )
        rng = np.random.default_rng(0)
        for start in range(0, rows, 65_536):
            stop = min(rows, start + 65_536)
            x[start:stop] = rng.normal(size=(stop - start, features)).astype(np.float32)
        labels = np.asarray(x[:, :10].argmax(1), np.int32)
        x.flush()
        del x
        np.save(os.path.join(folder, "y.npy"), labels)
        size = pathlib.Path(folder, "x.npy").stat().st_size / 1e9
        done = subprocess.run(
            [sys.executable, "-c", DISK_CHILD, folder], capture_output=True, text=True, check=True
        )
    stats, epoch, steps, peak = done.stdout.split()
    return (
        f"on disk: {size:.2f} GB of features ({rows:,} rows × {features}), statistics pass "
        f"{stats} s, one epoch of {steps} steps {epoch} s, peak resident memory {peak} GB"
    )


def main(argv: list[str] | None = None) -> None:
    """Print the table of docs/benchmarks.md's "What streaming costs"."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--log-every", type=int, default=10)
    parser.add_argument("--disk", action="store_true")
    parser.add_argument("--disk-gb", type=float, default=4.0)
    args = parser.parse_args(argv)
    print(f"{jax.devices()[0]}, median of {args.repeats} alternating runs")
    rows = f"rows every {args.log_every}"
    print(f"| case | in memory ms/step | streaming ms/step | ratio | {rows} ms/step | ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, memory, streamed, logged in compare(args.repeats, args.epochs, args.log_every):
        print(
            f"| {name} | {memory * 1e3:.3f} | {streamed * 1e3:.3f} | {streamed / memory:.2f} "
            f"| {logged * 1e3:.3f} | {logged / memory:.2f} |"
        )
    if args.disk:
        print(on_disk(args.disk_gb))


if __name__ == "__main__":
    main()
