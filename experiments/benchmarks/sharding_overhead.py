"""The overhead of the sharded path: 8 forced CPU devices against 1, at equal total work.

The same digits-mlp training (batch 64 by default, so 8 examples per device) runs through
``fit``'s fused epoch on one device and data-parallel over 8 CPU devices made by
``XLA_FLAGS=--xla_force_host_platform_device_count=8``. On a 2-core machine the 8 "devices"
share 2 cores, so this measures what sharding costs (partitioning, all-reduces, more programs
to schedule), not a speed-up. Medians over repetitions, alternating.

Run: ``python -m experiments.benchmarks.sharding_overhead [--epochs 10 --repeats 5]``.
"""

from __future__ import annotations

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")

import argparse
import statistics
import time

import jax
import jax.numpy as jnp

import jaxnet as jn


def time_per_step(job: jn.recipes.Job, mesh: jax.sharding.Mesh | None, epochs: int) -> float:
    batch_size = job.config["batch_size"]
    step = jn.train.make_train_step(job.net, job.loss, job.optimizer)
    x, y = jnp.asarray(job.data.x_train), jnp.asarray(job.data.y_train)
    ts = job.initial_state()
    if mesh is None:
        epoch_fn = jn.train.make_epoch(step, batch_size)
    else:
        ts = jn.distributed.place(ts, jn.distributed.state_shardings(ts, mesh))
        x, y = jn.distributed.replicate((x, y), mesh)
        sharding = jn.distributed.batch_sharding(mesh, stacked=True)
        epoch_fn = jn.train.make_epoch(step, batch_size, batch_sharding=sharding)
    run_epoch = jax.jit(epoch_fn, donate_argnums=0)
    ts, metrics, _ = run_epoch(ts, x, y, jnp.int32(0))  # compile
    jax.block_until_ready(metrics)
    start = time.perf_counter()
    for epoch in range(epochs):
        ts, metrics, _ = run_epoch(ts, x, y, jnp.int32(epoch))
    jax.block_until_ready(metrics)
    return (time.perf_counter() - start) / (epochs * (x.shape[0] // batch_size))


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args(argv)
    job = jn.recipes.build(jn.recipes.make_config("digits-mlp", batch_size=args.batch_size))
    mesh = jn.distributed.make_mesh(8)
    one, eight = [], []
    for _ in range(args.repeats):
        one.append(time_per_step(job, None, args.epochs))
        eight.append(time_per_step(job, mesh, args.epochs))
    result = {
        "one_device_ms": statistics.median(one) * 1e3,
        "eight_devices_ms": statistics.median(eight) * 1e3,
    }
    result["ratio"] = result["eight_devices_ms"] / result["one_device_ms"]
    print(
        f"batch {args.batch_size}, {jax.device_count()} devices: time per step "
        f"1 device {result['one_device_ms']:.3f} ms, "
        f"8 devices {result['eight_devices_ms']:.3f} ms, ratio {result['ratio']:.2f}"
    )
    return result


if __name__ == "__main__":
    main()
