"""What the state a training loop carries besides the parameters costs per step.

jaxnet's ``TrainState`` carries a step count (for schedules and ``fold_in``) and a typed PRNG
key (for dropout) through every step. On a GPU, where a ``small`` step takes about 0.1 ms,
that shows. Four jitted steps of the ``small`` case on one batch, each with its carry donated:

- ``hand``: the hand-written baseline (params dict, optimizer state);
- ``hand+step+key``: the same, also carrying an ``int32`` step count (+1 per step) and a key;
- ``jaxnet``: ``jn.train.make_train_step`` on a ``TrainState``;
- ``jaxnet raw key``: the same with the key carried as raw ``uint32`` key data.

Each runs ``--steps`` steps per round, reading the loss after every step (``read``) or not at
all (``noread``), alternating over ``--rounds`` rounds; medians in µs per step.

Run: ``python -m experiments.benchmarks.carried_state [--rounds 9] [--steps 400]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

import jaxnet as jn
from experiments.benchmarks.cases import jaxnet_net, make
from experiments.benchmarks.jax_impls import pure_jax_apply, pure_jax_params

Step = tuple[Callable[..., Any], Callable[[], list[Any]]]  # (jitted step, initial carry)


def steps() -> dict[str, Step]:
    """``name -> (step(*carry, x, y) -> (*carry, loss), () -> carry)``."""
    case = make("small")
    net, _ = jaxnet_net(case)
    assert net is not None
    optimizer = optax.sgd(case.learning_rate)
    state = jn.train.TrainState.create(net, optimizer, (None, 64), key=jax.random.key(0))
    train_step = jn.train.make_train_step(net, jn.losses.softmax_cross_entropy, optimizer)
    params = pure_jax_params(case)

    def hand(p: Any, o: Any, x: Any, y: Any) -> Any:
        def loss(p: Any) -> Any:
            logits = pure_jax_apply(case, p, x)
            return optax.losses.softmax_cross_entropy_with_integer_labels(logits, y).mean()

        value, grads = jax.value_and_grad(loss)(p)
        updates, o = optimizer.update(grads, o, p)
        return optax.apply_updates(p, updates), o, value

    def hand_plus(p: Any, o: Any, n: Any, key: Any, x: Any, y: Any) -> Any:
        p, o, value = hand(p, o, x, y)
        return p, o, n + 1, key, value

    def jaxnet(ts: Any, x: Any, y: Any) -> Any:
        ts, metrics = train_step(ts, (x, y))
        return ts, metrics["loss"]

    def raw_key(p: Any, s: Any, o: Any, n: Any, key_data: Any, x: Any, y: Any) -> Any:
        ts = jn.train.TrainState(p, s, o, n, jax.random.wrap_key_data(key_data))
        new, metrics = train_step(ts, (x, y))
        key_data = jax.random.key_data(new.key)
        return new.params, new.state, new.opt_state, new.step, key_data, metrics["loss"]

    def copy(tree: Any) -> Any:
        return jax.tree.map(jnp.copy, tree)

    return {
        "hand": (
            jax.jit(hand, donate_argnums=(0, 1)),
            lambda: [copy(params), optimizer.init(params)],
        ),
        "hand+step+key": (
            jax.jit(hand_plus, donate_argnums=(0, 1, 2, 3)),
            lambda: [copy(params), optimizer.init(params), jnp.int32(0), jax.random.key(0)],
        ),
        "jaxnet": (jax.jit(jaxnet, donate_argnums=0), lambda: [copy(state)]),
        "jaxnet raw key": (
            jax.jit(raw_key, donate_argnums=(0, 1, 2, 3, 4)),
            lambda: [
                copy(state.params),
                state.state,
                state.opt_state,
                jnp.int32(0),
                jax.random.key_data(state.key),
            ],
        ),
    }


def _run(step: Callable[..., Any], carry: list[Any], batch: Any, n: int, read: bool) -> list[Any]:
    for _ in range(n):
        *carry, loss = step(*carry, *batch)
        if read:
            float(loss)
    jax.block_until_ready(carry)
    return carry


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--steps", type=int, default=400)
    args = parser.parse_args(argv)
    case = make("small")
    batch = tuple(jax.device_put(a[:128]) for a in (case.data.x_train, case.data.y_train))
    fns = steps()
    carries = {name: _run(fn, init(), batch, 3, True) for name, (fn, init) in fns.items()}
    samples: dict[str, list[float]] = {f"{n} {m}": [] for n in fns for m in ("read", "noread")}
    for _ in range(args.rounds):
        for name, (fn, _) in fns.items():
            for mode in ("read", "noread"):
                start = time.perf_counter()
                carries[name] = _run(fn, carries[name], batch, args.steps, mode == "read")
                samples[f"{name} {mode}"].append((time.perf_counter() - start) / args.steps * 1e6)
    medians = {key: statistics.median(values) for key, values in samples.items()}
    print(f"{jax.devices()[0].device_kind}: µs per step, medians of {args.rounds} rounds")
    for key, value in medians.items():
        print(f"{key:24s} {value:8.1f}")
    return medians


if __name__ == "__main__":
    main(sys.argv[1:])
