"""What ``predict`` costs: batched predictions on raw inputs against a hand-written loop.

Three ways to predict the outputs of the digits MLP (64 → 128 → 128 → 10, the ``digits-mlp``
recipe's net) for ``--rows`` raw inputs, ``--batch-size`` rows per compiled call:

- ``hand-written``: the baseline, ``jax.jit(lambda p, x: net.apply(p, {}, (x - mean) / std)[0])``
  over the chunks, each result copied to NumPy;
- ``Model.predict_outputs``: jaxnet's path, which also checks the inputs (shape, dtype,
  finiteness) and pads the last chunk so that one program serves every chunk;
- ``jax.export``: the artifact ``jn.export`` writes, deserialized, its ``call`` compiled with
  ``jax.jit`` (as a server would) and called on each chunk; and the same ``call`` bare, which
  traces the artifact again on every call.

Each is warmed up once (compilation is not timed), then timed ``--repeats`` times; the table
reports the median and its ratio to the baseline's median, all measured in the same process.

Run: ``python -m experiments.benchmarks.predict [--rows 100000] [--batch-size 1024]
[--repeats 7]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable

import jax
import numpy as np

import jaxnet as jn


def _chunks(x: np.ndarray, size: int) -> list[np.ndarray]:
    return [x[i : i + size] for i in range(0, len(x), size)]


def _median_seconds(run: Callable[[], object], repeats: int) -> float:
    run()  # compile and warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    """Print the table of docs/benchmarks.md's "What predict costs"."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)

    data = jn.data.load("digits")
    net = jn.recipes.mlp(128, 2, "relu", 10)
    _, params, state = net.init(jax.random.key(0), (None, 64))
    model = jn.train.Model(net, params, state, data.preprocessing, "logits")
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 16, (args.rows, 64)).astype(np.float32)  # raw pixel values

    mean, std = data.feature_mean[None], data.feature_std[None]  # (1, 64)
    hand = jax.jit(lambda p, x: net.apply(p, {}, (x - mean) / std)[0])

    def hand_written() -> object:
        return np.concatenate([np.asarray(hand(params, c)) for c in _chunks(x, args.batch_size)])

    with tempfile.TemporaryDirectory() as out:
        artifact = jax.export.deserialize(jn.export(model, out).forward.read_bytes())
    jitted = jax.jit(artifact.call)

    def exported(call: Callable[[np.ndarray], jax.Array]) -> object:
        return np.concatenate([np.asarray(call(c)) for c in _chunks(x, args.batch_size)])

    np.testing.assert_allclose(model.predict_outputs(x[:100]), hand_written()[:100], rtol=1e-5)
    baseline = _median_seconds(hand_written, args.repeats)
    rows = [("hand-written jit loop", baseline)]
    rows.append(
        (
            "Model.predict_outputs",
            _median_seconds(
                lambda: model.predict_outputs(x, batch_size=args.batch_size), args.repeats
            ),
        )
    )
    rows.append(("jax.jit(artifact.call)", _median_seconds(lambda: exported(jitted), args.repeats)))
    rows.append(
        ("artifact.call, bare", _median_seconds(lambda: exported(artifact.call), args.repeats))
    )
    print(
        f"{args.rows} rows, batch {args.batch_size}, median of {args.repeats}, {jax.devices()[0]}"
    )
    print("| path | median s | rows/s | ratio |\n|---|---:|---:|---:|")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.3f} | {args.rows / seconds:,.0f} | {seconds / baseline:.2f} |")


if __name__ == "__main__":
    main()
