"""Forward propagation made visible: what each layer of the lecture's net outputs for one input.

The lecture's net, 8 → 9 sigmoid → 4 softmax, applied to one input x (1×8). ``jn.intermediates``
returns every layer's output by path, so the pass can be read step by step:

    a₁ = x·W₁ + b₁    1×8 · 8×9 → 1×9     (dense_0)
    y₁ = σ(a₁)        1×9 → 1×9           (sigmoid_0: every entry in (0, 1))
    a₂ = y₁·W₂ + b₂   1×9 · 9×4 → 1×4     (dense_1)
    y  = softmax(a₂)  1×4 → 1×4           (softmax_0: probabilities that sum to 1)

Run:    python experiments/forward_pass.py [--out DIR] [--quick]
Expect: the shapes (1, 8) → (1, 9) → (1, 9) → (1, 4) → (1, 4), the output summing to 1, and
        the forward pass by hand (NumPy) equal to the net's output (max difference ~1e-8);
        docs/figures/forward_pass.png.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import matplotlib
import numpy as np

matplotlib.use("Agg")  # files only, no window
import matplotlib.pyplot as plt

import jaxnet as jn

FIGURES = Path(__file__).resolve().parents[1] / "docs" / "figures"
NET = jn.serial(jn.nn.Dense(9), jn.nn.Sigmoid, jn.nn.Dense(4), jn.nn.Softmax)
FORMULAS = {
    "input": "x",
    "serial/dense_0": "a₁ = x·W₁ + b₁",
    "serial/sigmoid_0": "y₁ = σ(a₁)",
    "serial/dense_1": "a₂ = y₁·W₂ + b₂",
    "serial/softmax_0": "y = softmax(a₂)",
}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=FIGURES, help="folder for the PNG")
    parser.add_argument("--quick", action="store_true", help="the same (nothing to train)")
    return parser.parse_args(argv)


def by_hand(params: dict, x: np.ndarray) -> np.ndarray:
    """The same forward pass in NumPy."""
    w1, b1 = np.asarray(params["dense_0"]["w"]), np.asarray(params["dense_0"]["b"])
    w2, b2 = np.asarray(params["dense_1"]["w"]), np.asarray(params["dense_1"]["b"])
    hidden = 1 / (1 + np.exp(-(x @ w1 + b1[None, :])))  # (1, 9)
    scores = hidden @ w2 + b2[None, :]  # (1, 4)
    return np.exp(scores) / np.exp(scores).sum(axis=-1, keepdims=True)


def plot(outputs: dict[str, np.ndarray], path: Path) -> None:
    """One bar chart per layer output, left to right in the order the input flows."""
    fig, axes = plt.subplots(1, len(outputs), figsize=(13, 2.8), sharey=False)
    for ax, (name, value) in zip(axes, outputs.items(), strict=True):
        row = value[0]
        ax.bar(range(len(row)), row, color="tab:blue" if name != "input" else "tab:gray")
        ax.axhline(0, color="black", lw=0.5)
        shape = "×".join(map(str, value.shape))
        ax.set_title(f"{FORMULAS[name]}\n{name.split('/')[-1]}: {shape}", fontsize="medium")
        ax.set_xticks(range(len(row)))
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the forward pass, draw it; return the shapes, the output and the check by hand."""
    args = parse_args(argv)
    _, params, state = NET.init(jax.random.key(0), (1, 8))
    x = jax.random.normal(jax.random.key(1), (1, 8))
    steps = jn.intermediates(NET, params, state, x)  # forward order, the whole net last
    outputs = {"input": np.asarray(x)} | {
        k: np.asarray(v) for k, v in steps.items() if k != "serial"
    }
    y = outputs["serial/softmax_0"]
    difference = float(np.max(np.abs(by_hand(params, outputs["input"]) - y)))
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "forward_pass.png"
    plot(outputs, path)
    shapes = [tuple(v.shape) for v in outputs.values()]
    print(" → ".join(map(str, shapes)) + f"; output {np.round(y[0], 3)} sums to {y.sum():.6f}")
    print(f"forward pass by hand (NumPy) vs the net: max |difference| = {difference:.1e}")
    return {
        "shapes": shapes,
        "layers": list(outputs),
        "output": y,
        "hidden": outputs["serial/sigmoid_0"],
        "max_difference": difference,
        "figure": path,
    }


if __name__ == "__main__":
    main()
