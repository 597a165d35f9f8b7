"""Softmax turns scores into probabilities: the lecture's worked example as a bar chart.

The output layer gives scores a = [-0.21, 0.47, 1.72]; softmax y_i = e^(a_i) / Σ_j e^(a_j) turns
them into probabilities: every y_i lies in (0, 1), they sum to 1, and the largest score gets the
largest probability. Computed with ``jn.nn.Softmax``, the layer a classifier ends with.

Run:    python experiments/softmax.py [--out DIR] [--quick]
Expect: softmax([-0.21, 0.47, 1.72]) = [0.10, 0.20, 0.70], sum 1.000000
        and docs/figures/softmax.png (scores and probabilities side by side).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")  # files only, no window
import matplotlib.pyplot as plt

import jaxnet as jn

FIGURES = Path(__file__).resolve().parents[1] / "docs" / "figures"
SCORES = (-0.21, 0.47, 1.72)  # the lecture's output scores a


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=FIGURES, help="folder for the PNG")
    parser.add_argument("--quick", action="store_true", help="tiny run (the same here)")
    return parser.parse_args(argv)


def plot(scores: Sequence[float], probabilities: Sequence[float], path: Path) -> None:
    """Scores and their softmax probabilities as two bar charts."""
    labels = [f"class {i}" for i in range(len(scores))]
    fig, (left, right) = plt.subplots(1, 2, figsize=(7.5, 3))
    left.bar(labels, scores, color="tab:gray")
    left.axhline(0, color="black", lw=0.8)
    left.set_ylim(min(0.0, *scores) - 0.3, max(scores) + 0.3)  # room for the labels
    left.set_title("scores a (output of the last Dense)")
    right.bar(labels, probabilities, color="tab:blue")
    right.set_ylim(0, 1)
    right.set_title(f"softmax(a): probabilities, sum = {sum(probabilities):.3f}")
    for ax, values in ((left, scores), (right, probabilities)):
        for i, v in enumerate(values):
            ax.annotate(f"{v:.2f}", (i, v), ha="center", va="bottom" if v >= 0 else "top")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Compute softmax of the lecture's scores, draw them, print and return the probabilities."""
    args = parse_args(argv)
    a = jnp.array(SCORES)
    y, _ = jn.nn.Softmax.apply({}, {}, a)  # e^(a_i) / Σ_j e^(a_j)
    probabilities = [float(p) for p in y]
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "softmax.png"
    plot(SCORES, probabilities, path)
    shown = ", ".join(f"{p:.2f}" for p in probabilities)
    print(f"softmax([-0.21, 0.47, 1.72]) = [{shown}], sum {sum(probabilities):.6f}")
    return {
        "scores": list(SCORES),
        "probabilities": probabilities,
        "rounded": [round(p, 1) for p in probabilities],
        "sum": sum(probabilities),
        "figure": path,
    }


if __name__ == "__main__":
    main()
