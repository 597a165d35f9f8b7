"""What each part of jaxnet's fused epoch costs, per step: the non-finite guard, the step's
``grad_norm``, and (for convolutions on CPU) the ``lax.scan`` itself.

Variants, each a jitted call per epoch with the state donated, alternated over rounds (medians):

- ``make_epoch``: ``jn.train.make_epoch`` as ``fit`` runs it (shuffle, guard);
- ``no guard``: the same shuffle and ``train_step`` in a plain ``lax.scan``;
- ``light guard``: the guard reduced to ``isfinite(loss) & isfinite(grad_norm)`` (no pass over
  the updated parameters, one over the gradients: a gradient that is non-finite anywhere makes
  its norm non-finite);
- ``unroll 4``: ``make_epoch(..., unroll=4)``, four steps per loop iteration (on GPUs every
  iteration of an XLA while loop waits for its condition, a device-to-host copy);
- ``unrolled``: ``make_epoch``'s scan with ``unroll=True`` (XLA sees straight-line code; see
  jax-ml/jax#12868: on CPU a convolution inside a loop body misses the fast kernels);
- ``stepwise``: ``jn.train.make_stepwise_epoch``, what ``fit`` runs for convolutions on CPU (one
  jitted guarded step per call, the batches sliced on the device);
- ``python loop``: the jitted ``train_step`` called once per batch, loss read at the end.

Run: ``python -m experiments.benchmarks.epoch_costs [--cases small,cnn,wide] [--rounds 5]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

import jaxnet as jn
from experiments.benchmarks.cases import Case, jaxnet_net, make


def _light_guard(train_step: Any) -> Callable[..., Any]:
    def body(carry: Any, batch: Any) -> Any:
        ts, halted = carry
        new, metrics = train_step(ts, batch)
        ok = jnp.isfinite(metrics["loss"]) & jnp.isfinite(metrics["grad_norm"]) & ~halted
        params, state, opt_state, step = jax.tree.map(
            lambda a, b: jnp.where(ok, a, b),
            (new.params, new.state, new.opt_state, new.step),
            (ts.params, ts.state, ts.opt_state, ts.step),
        )
        kept = jn.train.TrainState(params, state, opt_state, step, ts.key)
        return (kept, ~ok), (metrics, ok)

    return body


def variants(case: Case) -> dict[str, Callable[..., Any]]:
    """``name -> epoch(train_state, x, y, epoch) -> (train_state, losses)``, unjitted."""
    net, _ = jaxnet_net(case)
    assert net is not None, "the case's layers are not exported"
    optimizer = optax.sgd(case.learning_rate)
    step = jn.train.make_train_step(net, jn.losses.softmax_cross_entropy, optimizer)
    b = case.batch_size
    fused = jn.train.make_epoch(step, b)

    def make_epoch(ts: Any, x: Any, y: Any, e: Any) -> Any:
        ts, metrics, _ = fused(ts, x, y, e)
        return ts, metrics["loss"]

    def scanned(body: Any, unroll: int | bool = 1) -> Callable[..., Any]:
        def epoch(ts: Any, x: Any, y: Any, e: Any) -> Any:
            batches = jn.train.epoch_batches(ts.key, e, x, y, b)
            (ts, _), (metrics, _) = jax.lax.scan(
                body, (ts, jnp.zeros((), bool)), batches, unroll=unroll
            )
            return ts, metrics["loss"]

        return epoch

    def plain(carry: Any, batch: Any) -> Any:
        ts, halted = carry
        ts, metrics = step(ts, batch)
        return (ts, halted), (metrics, halted)

    def stepwise_epoch(run: Any) -> Callable[..., Any]:
        def epoch(ts: Any, x: Any, y: Any, e: Any) -> Any:
            ts, metrics, _ = run(ts, x, y, e)
            return ts, metrics["loss"]

        return epoch

    guarded = jn.train.epoch._guarded(step)  # the body make_epoch scans
    with_norm = jn.train.make_train_step(
        net, jn.losses.softmax_cross_entropy, optimizer, grad_norm=True
    )
    return {
        "make_epoch": make_epoch,
        "no guard": scanned(plain),
        "light guard": scanned(_light_guard(with_norm)),
        "unroll 4": scanned(guarded, unroll=4),
        "unrolled": scanned(guarded, unroll=True),
        "stepwise": stepwise_epoch(jn.train.make_stepwise_epoch(step, b)),
        "python loop": step,
    }


def measure_case(case: Case, rounds: int, epochs: int) -> dict[str, Any]:
    net, _ = jaxnet_net(case)
    assert net is not None
    optimizer = optax.sgd(case.learning_rate)
    state = jn.train.TrainState.create(
        net, optimizer, (None, case.in_features), key=jax.random.key(0)
    )
    x, y = jnp.asarray(case.data.x_train), jnp.asarray(case.data.y_train)
    steps = case.steps_per_epoch
    fns, compile_s = {}, {}
    for name, fn in variants(case).items():
        jitted = fn if name == "stepwise" else jax.jit(fn, donate_argnums=0)  # jitted inside
        fresh = jax.tree.map(jnp.copy, state)
        start = time.perf_counter()
        if name == "python loop":
            xs, ys = jn.train.epoch_batches(state.key, jnp.int32(0), x, y, case.batch_size)
            jax.block_until_ready(jitted(fresh, (xs[0], ys[0])))
            batches = [(xs[i], ys[i]) for i in range(steps)]
            fns[name] = _loop(jitted, batches)
        else:
            jax.block_until_ready(jitted(fresh, x, y, jnp.int32(0)))
            fns[name] = _fused(jitted, x, y)
        compile_s[name] = time.perf_counter() - start
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, run in fns.items():
            ts = jax.tree.map(jnp.copy, state)
            start = time.perf_counter()
            run(ts, epochs)
            samples[name].append((time.perf_counter() - start) / (epochs * steps) * 1e3)
    medians = {name: statistics.median(v) for name, v in samples.items()}
    return {
        "case": case.name,
        "ms_per_step": medians,
        "first_call_s": compile_s,
        "samples": samples,
    }


def _fused(jitted: Any, x: Any, y: Any) -> Callable[[Any, int], None]:
    def run(ts: Any, epochs: int) -> None:
        for e in range(epochs):
            ts, losses = jitted(ts, x, y, jnp.int32(e))
            float(losses[-1])

    return run


def _loop(jitted: Any, batches: list[Any]) -> Callable[[Any, int], None]:
    def run(ts: Any, epochs: int) -> None:
        for _ in range(epochs):
            for batch in batches:
                ts, metrics = jitted(ts, batch)
            float(metrics["loss"])

    return run


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="small,cnn,wide")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args(argv)
    results = {}
    for name in args.cases.split(","):
        case = make(name)
        epochs = 1 if name == "wide" else args.epochs
        results[name] = measure_case(case, args.rounds, epochs)
        print(json.dumps({k: v for k, v in results[name].items() if k != "samples"}), flush=True)
    print(table(results))
    return results


def table(results: dict[str, Any]) -> str:
    names = list(next(iter(results.values()))["ms_per_step"])
    lines = ["| case | " + " | ".join(f"{n} (ms/step)" for n in names) + " |"]
    lines.append("|" + "---|" * (len(names) + 1))
    for case, r in results.items():
        base = r["ms_per_step"]["make_epoch"]
        cells = [f"{r['ms_per_step'][n]:.3g} ({r['ms_per_step'][n] / base:.2f}×)" for n in names]
        lines.append(f"| {case} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("| case | " + " | ".join(f"{n} first call (s)" for n in names) + " |")
    lines.append("|" + "---|" * (len(names) + 1))
    for case, r in results.items():
        cells = [f"{r['first_call_s'][n]:.2f}" for n in names]
        lines.append(f"| {case} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main(sys.argv[1:])
