"""Time per training step: ``fit``'s fused epoch against the loop people usually write.

Both train the digits-mlp recipe's net (64 → 128 → 128 → 10, ReLU, Adam, batch 64) on the same
data in the same process, alternating, for several repetitions; the table reports medians.

- python loop: a jitted ``train_step`` called from Python once per step, reading the loss every
  step (``float(metrics["loss"])``), with batches sliced from device arrays;
- fused (jaxnet): ``jn.train.make_epoch`` (what ``fit`` runs): one compiled ``lax.scan`` per
  epoch, buffers donated, the loss read once per epoch.

Run: ``python -m experiments.benchmarks.fused_loop`` (about 30 s on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import optax

import jaxnet as jn


def _setup():
    job = jn.recipes.build(jn.recipes.make_config("digits-mlp"))
    batch_size = job.config["batch_size"]
    step = jn.train.make_train_step(job.net, job.loss, job.optimizer)
    x, y = jnp.asarray(job.data.x_train), jnp.asarray(job.data.y_train)
    return job, batch_size, step, x, y


def time_python_loop(job, batch_size, step, x, y, epochs: int) -> float:
    """Seconds per step of a Python loop over a jitted step that reads the loss every step."""
    jitted = jax.jit(step, donate_argnums=0)
    ts = job.initial_state()
    xs, ys = jn.train.epoch_batches(ts.key, jnp.int32(0), x, y, batch_size)
    ts, m = jitted(ts, (xs[0], ys[0]))
    float(m["loss"])  # compile outside the timing
    start = time.perf_counter()
    for epoch in range(epochs):
        xs, ys = jn.train.epoch_batches(ts.key, jnp.int32(epoch), x, y, batch_size)
        for i in range(xs.shape[0]):
            ts, m = jitted(ts, (xs[i], ys[i]))
            float(m["loss"])
    return (time.perf_counter() - start) / (epochs * xs.shape[0])


def time_fused(job, batch_size, step, x, y, epochs: int) -> float:
    """Seconds per step of jaxnet's fused epoch (what ``fit`` runs), loss read once per epoch."""
    run_epoch = jax.jit(jn.train.make_epoch(step, batch_size), donate_argnums=0)
    ts = job.initial_state()
    ts, m, _ = run_epoch(ts, x, y, jnp.int32(0))
    float(m["loss"][-1])
    steps = x.shape[0] // batch_size
    start = time.perf_counter()
    for epoch in range(epochs):
        ts, m, _ = run_epoch(ts, x, y, jnp.int32(epoch))
        float(m["loss"][-1])
    return (time.perf_counter() - start) / (epochs * steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    setup = _setup()
    python_loop, fused = [], []
    for _ in range(args.repeats):  # alternate, so drifts in machine load hit both alike
        python_loop.append(time_python_loop(*setup, args.epochs))
        fused.append(time_fused(*setup, args.epochs))
    slow, fast = statistics.median(python_loop), statistics.median(fused)
    print(f"jax {jax.__version__}, optax {optax.__version__}, {jax.devices()[0].platform}")
    print("| loop | time per step (median) |")
    print("|---|---|")
    print(f"| python loop, jitted step, loss read every step | {slow * 1e3:.3f} ms |")
    print(f"| fused epoch (fit) | {fast * 1e3:.3f} ms |")
    print(f"speed-up of the fused loop: {slow / fast:.2f}x")


if __name__ == "__main__":
    main()
