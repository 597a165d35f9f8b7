"""What XLA on CPU needs for the ``wide`` case (64→1024→1024→10, batch 1024) to run at the
machine's best matmul rate: XLA flags, threads, donation and weight layout, measured.

Each configuration runs in a fresh Python (XLA reads ``XLA_FLAGS`` once, at start), in rounds
that alternate configurations so a shared machine's load drifts hit all alike; medians.

Measured per configuration:

- ``matmul``: a jitted float32 ``(1024, 1024) @ (1024, 1024)``, in GFLOP/s;
- ``step``: the hand-written pure-JAX train step of the ``wide`` case (params dict,
  ``jax.jit(jax.value_and_grad)``, ``optax.sgd``, donated buffers), ms per step, and its
  GFLOP/s from XLA's own FLOP count;
- ``no donate``: the same step without ``donate_argnums``;
- ``w (out, in)``: the same step with each weight stored transposed, ``x @ w.T``;
- ``fused``: the step in a ``lax.scan`` over 9 batches, ms per step.

Run: ``python -m experiments.benchmarks.xla_cpu [--rounds 3] [--quick]`` (a few minutes on 2
cores); it prints a Markdown table and writes ``experiments/benchmarks/xla_cpu.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import time
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parents[2]

CONFIGS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("default", "", ()),
    ("no XNNPACK/YNNPACK", "--xla_cpu_use_xnnpack=false", ()),
    ("oneDNN", "--xla_cpu_use_onednn=true", ()),
    ("single-threaded Eigen", "--xla_cpu_multi_thread_eigen=false", ()),
    ("fast math", "--xla_cpu_enable_fast_math=true", ()),
    ("thunk runtime off", "--xla_cpu_use_thunk_runtime=false", ()),
    (
        "XNN graph fusion",
        "--xla_cpu_experimental_xnn_graph_fusion_mode=XNN_GRAPH_FUSION_MODE_GREEDY",
        (),
    ),
    ("one core (taskset -c 0)", "", ("taskset", "-c", "0")),
)
"""(name, XLA_FLAGS, command prefix) of each configuration."""


def _seconds_per_call(fn: Any, args: Any, calls: int) -> float:
    import jax

    jax.block_until_ready(fn(*args))
    start = time.perf_counter()
    for _ in range(calls):
        out = fn(*args)
    jax.block_until_ready(out)
    return (time.perf_counter() - start) / calls


def child(calls: int) -> dict[str, float]:
    """Measure one configuration in this process (called in the fresh Python)."""
    import jax
    import jax.numpy as jnp
    import optax

    n = 1024
    a = jax.random.normal(jax.random.key(0), (n, n))
    out = {"matmul": 2 * n**3 / _seconds_per_call(jax.jit(jnp.matmul), (a, a), calls) / 1e9}

    sizes = (64, 1024, 1024, 10)
    keys = jax.random.split(jax.random.key(0), 3)
    params = {
        f"dense_{i}": {"w": jax.random.normal(k, (i_, o)) / i_**0.5, "b": jnp.zeros(o)}
        for i, (k, i_, o) in enumerate(zip(keys, sizes[:-1], sizes[1:], strict=True))
    }
    x = jax.random.normal(jax.random.key(1), (9, n, 64))
    y = jax.random.randint(jax.random.key(2), (9, n), 0, 10)
    optimizer = optax.sgd(0.1)

    def make_step(transposed: bool) -> Any:
        def loss_fn(params: Any, x: Any, y: Any) -> Any:
            h = x
            for i in range(3):
                w = params[f"dense_{i}"]["w"]
                h = (h @ w.T if transposed else h @ w) + params[f"dense_{i}"]["b"][None, :]
                h = jax.nn.relu(h) if i < 2 else h
            return optax.losses.softmax_cross_entropy_with_integer_labels(h, y).mean()

        def step(params: Any, opt_state: Any, x: Any, y: Any) -> Any:
            loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, loss

        return step

    step = make_step(False)
    cost: Any = jax.jit(step).lower(params, optimizer.init(params), x[0], y[0]).cost_analysis()
    flops = float((cost[0] if isinstance(cost, list) else cost)["flops"])

    def fresh(params: Any) -> Any:  # copies: a donating call consumes its arguments
        return jax.tree.map(jnp.copy, (params, optimizer.init(params)))

    def loop(jitted: Any, params: Any) -> float:
        jitted(*fresh(params), x[0], y[0])
        state = fresh(params)
        start = time.perf_counter()
        for i in range(calls):
            *state, _ = jitted(*state, x[i % 9], y[i % 9])
        jax.block_until_ready(state)
        return (time.perf_counter() - start) / calls

    out["step ms"] = 1e3 * loop(jax.jit(step, donate_argnums=(0, 1)), params)
    out["step GFLOP/s"] = flops / out["step ms"] * 1e3 / 1e9
    out["no donate ms"] = 1e3 * loop(jax.jit(step), params)
    transposed = jax.tree.map(lambda w: w.T if w.ndim == 2 else w, params)
    out["w (out, in) ms"] = 1e3 * loop(jax.jit(make_step(True), donate_argnums=(0, 1)), transposed)

    def epoch(params: Any, opt_state: Any, xs: Any, ys: Any) -> Any:
        def body(carry: Any, batch: Any) -> Any:
            params, opt_state, loss = step(*carry, *batch)
            return (params, opt_state), loss

        return jax.lax.scan(body, (params, opt_state), (xs, ys))

    fused = jax.jit(epoch, donate_argnums=(0, 1))
    fused(*fresh(params), x, y)
    state = fresh(params)
    rounds = max(1, calls // 9)
    start = time.perf_counter()
    for _ in range(rounds):
        state, _ = fused(*state, x, y)
    jax.block_until_ready(state)
    out["fused ms"] = 1e3 * (time.perf_counter() - start) / (rounds * 9)
    return out


def _run_config(flags: str, prefix: tuple[str, ...], calls: int) -> dict[str, float] | str:
    if prefix and shutil.which(prefix[0]) is None:
        return f"{prefix[0]} not found"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env["XLA_FLAGS"] = " ".join(f for f in (os.environ.get("XLA_FLAGS", ""), flags) if f)
    command = [*prefix, sys.executable, "-m", "experiments.benchmarks.xla_cpu", "--child"]
    done = subprocess.run(
        [*command, "--calls", str(calls)], env=env, cwd=ROOT, capture_output=True, text=True
    )
    if done.returncode != 0:
        return (done.stderr.strip().splitlines() or ["failed"])[-1][:200]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--configs", default=None, help="comma-separated configuration names (default: all)"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--calls", type=int, default=18, help=argparse.SUPPRESS)
    parser.add_argument(
        "--out", type=pathlib.Path, default=ROOT / "experiments/benchmarks/xla_cpu.json"
    )
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.calls)))
        return
    calls = 4 if args.quick else args.calls
    rounds = 1 if args.quick else args.rounds
    chosen = [c for c in CONFIGS if args.configs is None or c[0] in args.configs.split(",")]
    samples: dict[str, list[dict[str, float]]] = {name: [] for name, _, _ in chosen}
    errors: dict[str, str] = {}
    for r in range(rounds):
        for name, flags, prefix in chosen:
            result = _run_config(flags, prefix, calls)
            if isinstance(result, str):
                errors[name] = result
            else:
                samples[name].append(result)
            print(f"round {r + 1}/{rounds}: {name}: {result}", file=sys.stderr, flush=True)
    medians = {
        name: {k: statistics.median(s[k] for s in runs) for k in runs[0]}
        for name, runs in samples.items()
        if runs
    }
    args.out.write_text(
        json.dumps(
            {
                "configs": [c[:2] for c in CONFIGS],
                "medians": medians,
                "errors": errors,
                "samples": samples,
                "rounds": rounds,
                "calls": calls,
            },
            indent=1,
        )
        + "\n"
    )
    print(table(medians, errors))


def table(medians: dict[str, dict[str, float]], errors: dict[str, str]) -> str:
    flags = {name: f for name, f, _ in CONFIGS}
    columns = ("matmul", "step ms", "step GFLOP/s", "no donate ms", "w (out, in) ms", "fused ms")
    titles = ["configuration", "XLA_FLAGS", "matmul GFLOP/s", "step ms", "step GFLOP/s"]
    titles += ["no donate ms", "w (out, in) ms", "fused ms/step"]
    lines = ["| " + " | ".join(titles) + " |", "|" + "---|" * len(titles)]
    for name, values in medians.items():
        cells = [f"{values[c]:.1f}" for c in columns]
        lines.append(f"| {name} | `{flags[name] or '—'}` | " + " | ".join(cells) + " |")
    lines += [f"| {name} | `{flags[name]}` | failed: {why} |" for name, why in errors.items()]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
