"""16 digits-mlp models (4 learning rates × 4 seeds) in one vmapped program vs one at a time.

Both train the digits-mlp recipe's net (64 → 128 → 128 → 10, ReLU, Adam, batch 64) for the
same epochs. "one at a time" is ``jn.train.fit`` called 16 times (compilation included, as a
user would run it); "vmapped" is one ``jn.sweep.fit_many`` call (compilation included). Medians
over repetitions, alternating.

Run: ``python -m experiments.benchmarks.sweep_speed [--epochs 10 --repeats 3]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import optax

import jaxnet as jn

LEARNING_RATES = (3e-4, 1e-3, 3e-3, 1e-2)
SEEDS = (0, 1, 2, 3)


def sequential(job: jn.recipes.Job, epochs: int) -> float:
    start = time.perf_counter()
    for lr in LEARNING_RATES:
        for seed in SEEDS:
            result = jn.train.fit(
                job.net,
                job.data,
                optimizer=optax.adam(lr),
                loss=job.loss,
                metrics=job.metrics,
                epochs=epochs,
                batch_size=job.config["batch_size"],
                seed=seed,
                progress=False,
            )
            jax.block_until_ready(result.train_state.params)
    return time.perf_counter() - start


def vmapped(job: jn.recipes.Job, epochs: int) -> float:
    start = time.perf_counter()
    result = jn.sweep.fit_many(
        job.net,
        job.data,
        optimizer=optax.adam,
        learning_rates=LEARNING_RATES,
        seeds=SEEDS,
        loss=job.loss,
        metrics=job.metrics,
        epochs=epochs,
        batch_size=job.config["batch_size"],
    )
    jax.block_until_ready(result.train_states.params)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    job = jn.recipes.build(jn.recipes.make_config("digits-mlp"))
    one_by_one, together = [], []
    for _ in range(args.repeats):
        one_by_one.append(sequential(job, args.epochs))
        together.append(vmapped(job, args.epochs))
    result = {
        "sequential_s": statistics.median(one_by_one),
        "vmapped_s": statistics.median(together),
    }
    result["ratio"] = result["vmapped_s"] / result["sequential_s"]
    print(
        f"16 models, {args.epochs} epochs: one at a time {result['sequential_s']:.1f} s, "
        f"vmapped {result['vmapped_s']:.1f} s, ratio {result['ratio']:.2f}"
    )
    return result


if __name__ == "__main__":
    main()
