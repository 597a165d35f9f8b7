"""Activation memory of deep nets with and without ``jn.remat``, from XLA's own accounting.

Each net's training step (``jn.train.make_train_step``: forward, loss, ``value_and_grad``, an
Adam update; the train state donated, as ``fit`` does) is compiled with and without
``jn.remat`` around each hidden block, and measured two ways: XLA's memory analysis of the
compiled step (``jax.jit(step).lower(...).compile().memory_analysis()``: ``temp`` is the scratch
memory the step needs beyond its inputs and outputs, where the activations kept for the
backward pass live; arguments are the train state and the batch; outputs the new train state,
which reuses the donated arguments' memory) and the median time of a step. Ratios are against
the net without remat, measured in the same process.

The nets: ``mlp``, 16 hidden blocks ``Dense(1024) → LayerNorm → Gelu`` on a batch of 512;
``mlp-relu``, the same with ``Dense(1024) → Relu`` blocks, which keep less per block (their
input and the pre-activation ``x @ w + b``, the very value ``"dots_saveable"`` keeps); ``cnn``,
8 blocks ``Conv(32, 3×3) → BatchNorm → Relu`` on 32 images of 16×16×3, then global average
pooling.

XLA's CPU compiler removes the optimization barriers that ``jax.checkpoint`` places to keep the
recomputation apart (its ``cse_barrier_expander`` pass runs before common-subexpression
elimination, which then merges most of the recomputation back into the forward pass), so on a
CPU remat saves little or nothing as XLA ships. XLA's GPU and TPU pipelines run that pass last,
after their CSE (not measured here). So every net is measured twice, each pipeline in a process
of its own: as XLA's CPU compiler ships (``default``), and with that one pass switched off
(``XLA_FLAGS=--xla_disable_hlo_passes=cse_barrier_expander``, ``barriers kept``), which shows
what remat does where the barriers survive.

Run (under two minutes on 2 CPU cores)::

    python -m experiments.benchmarks.remat                 # both pipelines, a Markdown table
    python -m experiments.benchmarks.remat --quick         # smaller nets, to check the tooling
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

PIPELINES = {"default": "", "barriers kept": "--xla_disable_hlo_passes=cse_barrier_expander"}
VARIANTS = (("none", False, None), ("remat", True, None), ("remat dots_saveable", True, "dots"))
MiB = 2**20


def _nets(quick: bool) -> dict[str, tuple[Callable[[Any], Any], tuple[int, ...]]]:
    """``name -> (build(wrap), input_shape)``; ``wrap`` is applied to each hidden block."""
    import jaxnet as jn

    depth, width, batch = (4, 256, 128) if quick else (16, 1024, 512)

    def mlp(wrap: Any) -> Any:
        blocks = [
            wrap(jn.serial(jn.nn.Dense(width), jn.nn.LayerNorm(), jn.nn.Gelu)) for _ in range(depth)
        ]
        return jn.serial(*blocks, jn.nn.Dense(10))

    def mlp_relu(wrap: Any) -> Any:
        blocks = [wrap(jn.serial(jn.nn.Dense(width), jn.nn.Relu)) for _ in range(depth)]
        return jn.serial(*blocks, jn.nn.Dense(10))

    def cnn(wrap: Any) -> Any:
        def block() -> Any:
            return jn.serial(jn.nn.Conv(32, (3, 3)), jn.nn.BatchNorm(), jn.nn.Relu)

        blocks = [wrap(block()) for _ in range(depth // 2)]
        return jn.serial(*blocks, jn.nn.GlobalAvgPool, jn.nn.Dense(10))

    return {
        "mlp": (mlp, (batch, width)),
        "mlp-relu": (mlp_relu, (batch, width)),
        "cnn": (cnn, (batch // 16, 16, 16, 3)),
    }


def _wrap(use_remat: bool, policy: str | None) -> Callable[[Any], Any]:
    from jaxnet import remat

    if not use_remat:
        return lambda block: block
    name = "dots_saveable" if policy == "dots" else policy
    return lambda block: remat(block, policy=name)


def _inputs(net: Any, input_shape: tuple[int, ...]) -> tuple[Any, Any, Any]:
    """The optimizer, a train state and a batch; the state fits the net with or without remat
    (the same params under the same paths), so it is made once per net."""
    import jax
    import optax

    import jaxnet as jn

    optimizer = optax.adam(1e-3)
    state = jn.train.TrainState.create(net, optimizer, input_shape, key=jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), input_shape)
    y = jax.random.randint(jax.random.key(2), (input_shape[0],), 0, 10)
    return optimizer, state, (x, y)


def measure(quick: bool, repeats: int) -> list[dict[str, Any]]:
    """Every net in every variant, in this process's XLA pipeline: memory, loss and time."""
    import jax
    import jax.numpy as jnp

    import jaxnet as jn

    rows = []
    for net_name, (build, input_shape) in _nets(quick).items():
        optimizer, initial, batch = _inputs(build(_wrap(False, None)), input_shape)
        runs = []
        for variant, use_remat, policy in VARIANTS:
            net = build(_wrap(use_remat, policy))
            step = jn.train.make_train_step(net, jn.losses.softmax_cross_entropy, optimizer)
            compiled = jax.jit(step, donate_argnums=0).lower(initial, batch).compile()
            memory = compiled.memory_analysis()
            state = jax.tree.map(jnp.copy, initial)  # each variant donates its own copy
            state, metrics = compiled(state, batch)  # the first step: its loss, and a warm-up
            row = {
                "net": net_name,
                "remat": variant,
                "temp_mib": memory.temp_size_in_bytes / MiB,
                "argument_mib": memory.argument_size_in_bytes / MiB,
                "output_mib": memory.output_size_in_bytes / MiB,
                "alias_mib": memory.alias_size_in_bytes / MiB,
                "loss": float(metrics["loss"]),
                "times": [],
            }
            runs.append([compiled, state, row])
        for _ in range(repeats):  # alternating variants, so a busy moment hits them all
            for run in runs:
                compiled, state, row = run
                start = time.perf_counter()
                state, metrics = compiled(state, batch)
                jax.block_until_ready((state, metrics))
                row["times"].append(time.perf_counter() - start)
                run[1] = state
        for *_, row in runs:
            row["step_ms"] = statistics.median(row.pop("times")) * 1e3
            rows.append(row)
        del runs
    return rows


def _in_subprocess(pipeline: str, quick: bool, repeats: int) -> list[dict[str, Any]]:
    flags = " ".join(f for f in (os.environ.get("XLA_FLAGS", ""), PIPELINES[pipeline]) if f)
    command = [sys.executable, "-m", "experiments.benchmarks.remat", "--measure", "--repeats"]
    command += [str(repeats)] + (["--quick"] if quick else [])
    done = subprocess.run(
        command, env={**os.environ, "XLA_FLAGS": flags}, capture_output=True, text=True, check=True
    )
    rows: list[dict[str, Any]] = json.loads(done.stdout.splitlines()[-1])
    return rows


def table(results: dict[str, list[dict[str, Any]]]) -> str:
    """The Markdown table: one row per pipeline, net and variant, ratios against ``none``."""
    lines = [
        "| XLA pipeline | net | remat | temp MiB | temp × | arguments MiB | outputs MiB | "
        "step ms | time × | loss |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for pipeline, rows in results.items():
        base = {r["net"]: r for r in rows if r["remat"] == "none"}
        for r in rows:
            b = base[r["net"]]
            lines.append(
                f"| {pipeline} | {r['net']} | {r['remat']} | {r['temp_mib']:.1f} | "
                f"{r['temp_mib'] / b['temp_mib']:.2f} | {r['argument_mib']:.1f} | "
                f"{r['output_mib']:.1f} | {r['step_ms']:.0f} | {r['step_ms'] / b['step_ms']:.2f} | "
                f"{r['loss']:.4f} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed steps per variant")
    parser.add_argument("--quick", action="store_true", help="small nets, to check the tooling")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)  # one pipeline
    args = parser.parse_args(argv)
    if args.measure:
        rows = measure(args.quick, args.repeats)
        print(json.dumps(rows))
        return {"rows": rows}
    import jax

    start = time.perf_counter()
    results = {p: _in_subprocess(p, args.quick, args.repeats) for p in PIPELINES}
    for rows in results.values():  # the nets are the same with and without remat
        base = {r["net"]: r["loss"] for r in rows if r["remat"] == "none"}
        for r in rows:
            if abs(r["loss"] - base[r["net"]]) > 1e-4 * abs(base[r["net"]]):
                raise RuntimeError(f"{r['net']} with {r['remat']}: another loss, {r['loss']}")
    text = table(results)
    print(text)
    print(
        f"\njax {jax.__version__}, {len(os.sched_getaffinity(0))} CPU cores, "
        f"{datetime.date.today().isoformat()}, {time.perf_counter() - start:.0f} s"
    )
    return {"results": results, "table": text}


if __name__ == "__main__":
    main()
