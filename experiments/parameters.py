"""Parameters are found by training; hyperparameters are chosen by us.

The lecture's net, 8 inputs → 9 sigmoid units → 4 outputs: its *hyperparameters* (the widths 9
and 4, the sigmoid, the learning rate η) are fixed before training; its *parameters* are the
121 numbers of W₁ (8×9), b₁ (9), W₂ (9×4) and b₂ (4) that optimization finds. Here it learns a
task in which only inputs 0-3 matter (the class is the largest of x₀..x₃): the rows of W₁ that
read those inputs grow, while the rows for inputs 4-7 stay near their random start.

Run:    python experiments/parameters.py [--out DIR] [--quick]
Expect: 121 parameters = (8·9 + 9) + (9·4 + 4); after training, train accuracy ≈ 99% and the
        rows of W₁ for inputs 0-3 about 4× larger (mean |w|) than those for inputs 4-7;
        docs/figures/parameters.png (the weights before and after training).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import optax

matplotlib.use("Agg")  # files only, no window
import matplotlib.pyplot as plt

import jaxnet as jn

FIGURES = Path(__file__).resolve().parents[1] / "docs" / "figures"
# Hyperparameters: chosen by us, fixed while training.
WIDTH, CLASSES, LEARNING_RATE = 9, 4, 0.05
NET = jn.serial(jn.nn.Dense(WIDTH), jn.nn.Sigmoid, jn.nn.Dense(CLASSES))  # logits; softmax in loss


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=FIGURES, help="folder for the PNG")
    parser.add_argument("--quick", action="store_true", help="fewer steps")
    return parser.parse_args(argv)


def task(n: int = 512) -> tuple[jax.Array, jax.Array]:
    """Inputs of 8 features; the label is the index of the largest of the first four."""
    x = jax.random.normal(jax.random.key(1), (n, 8))
    return x, jnp.argmax(x[:, :4], axis=1)


def train(steps: int) -> tuple[jn.train.TrainState, jn.train.TrainState, float]:
    """The initial and trained states (full-batch Adam) and the final train accuracy."""
    optimizer = optax.adam(LEARNING_RATE)
    start = jn.train.TrainState.create(NET, optimizer, (None, 8), key=jax.random.key(0))
    step = jax.jit(
        jn.train.make_train_step(
            NET,
            jn.losses.softmax_cross_entropy,
            optimizer,
            metrics={"accuracy": jn.metrics.accuracy},
        )
    )
    ts, batch = start, task()
    for _ in range(steps):
        ts, metrics = step(ts, batch)
    return start, ts, float(metrics["accuracy"])


def plot(before: dict, after: dict, accuracy: float, path: Path) -> None:
    """W and b of both layers (b as an extra row under W), before and after training."""
    fig, axes = plt.subplots(
        2, 2, figsize=(7, 6), width_ratios=[9, 4], layout="constrained", squeeze=False
    )
    for row, (label, params) in enumerate((("at init", before), ("trained", after))):
        for col, name in enumerate(("dense_0", "dense_1")):
            w, b = np.asarray(params[name]["w"]), np.asarray(params[name]["b"])
            ax = axes[row][col]
            image = ax.imshow(np.vstack([w, b[None, :]]), cmap="RdBu", vmin=-3, vmax=3)
            ax.axhline(w.shape[0] - 0.5, color="black", lw=2)  # W above, b below the line
            ax.set_title(f"{name}/w {w.shape[0]}×{w.shape[1]} and b\n{label}", fontsize="medium")
            ax.set_xticks(range(0, w.shape[1], 2))
            ax.set_xlabel("unit")
        axes[row][0].set_ylabel("input (last row: bias)")
    fig.colorbar(image, ax=axes, shrink=0.6)
    fig.suptitle(
        f"hyperparameters (ours): width {WIDTH}, sigmoid, {CLASSES} outputs, η = {LEARNING_RATE}\n"
        f"parameters (found by training): 121 numbers; train accuracy {accuracy:.0%}",
        fontsize="medium",
    )
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Count, train, draw; return the count, the accuracy and the row sizes of W₁."""
    args = parse_args(argv)
    rows = jn.summary_rows(NET, (1, 8))
    count = sum(row.param_count for row in rows)
    start, trained, accuracy = train(steps=100 if args.quick else 300)
    w1 = np.abs(np.asarray(trained.params["dense_0"]["w"]))  # (8, 9)
    relevant, irrelevant = float(w1[:4].mean()), float(w1[4:].mean())
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "parameters.png"
    plot(start.params, trained.params, accuracy, path)
    print(f"parameters: {count} = (8·9 + 9) + (9·4 + 4); train accuracy {accuracy:.1%}")
    print(
        f"mean |w| of W₁'s rows: inputs 0-3 (used) {relevant:.2f}, "
        f"inputs 4-7 (unused) {irrelevant:.2f}"
    )
    return {
        "param_count": count,
        "param_shapes": {row.path: row.param_shapes for row in rows if row.param_count},
        "train_accuracy": accuracy,
        "relevant_rows": relevant,
        "irrelevant_rows": irrelevant,
        "figure": path,
    }


if __name__ == "__main__":
    main()
