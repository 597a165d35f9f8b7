"""Backpropagation by hand, as the lecture writes it, against ``jax.grad``.

The lecture's net, 8 inputs → 9 sigmoid units → 4 sigmoid outputs, with the L2 loss
L = ½ Σ_k (y_k − t_k)² (averaged over a batch). Backpropagation sends an error δ back through it:

    output unit k:  δ_k = (y_k − t_k) · y_k (1 − y_k)
    hidden unit j:  δ_j = Σ_k δ_k w_jk · y_j (1 − y_j)
    every weight:   ∂L/∂w_ij = δ_j · x_i      (x_i: the input of w_ij's layer; ∂L/∂b_j = δ_j)

Written out in NumPy below, it gives the same numbers as ``jax.grad`` of the network's loss.
Then gradient descent, u ← u − η∇L(u), run both ways, lowers the loss step by step along the same
curve.

Run:    python experiments/backprop_by_hand.py [--out DIR] [--quick]
Expect: by hand vs jax.grad: max |difference| about 6e-9 (float32 rounding), and the loss
        falling from 0.47 to 0.01 in 300 steps (0.47 -> 0.24 with --quick's 30), the two
        curves on top of each other; docs/figures/backprop_by_hand.png.
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

matplotlib.use("Agg")  # files only, no window
import matplotlib.pyplot as plt

import jaxnet as jn

FIGURES = Path(__file__).resolve().parents[1] / "docs" / "figures"
NET = jn.serial(jn.nn.Dense(9), jn.nn.Sigmoid, jn.nn.Dense(4), jn.nn.Sigmoid)  # 8 → 9 → 4
LEARNING_RATE = 2.0  # η: sigmoid outputs with an L2 loss have small gradients, so a large step


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=FIGURES, help="folder for the PNG")
    parser.add_argument("--quick", action="store_true", help="a few steps only")
    return parser.parse_args(argv)


def sigmoid(a: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-a))


def backprop_by_hand(params: dict, x: np.ndarray, t: np.ndarray) -> tuple[float, dict]:
    """The loss and its gradient for the 8 → 9 → 4 sigmoid net, by the lecture's δ rule.

    Args:
      params: the net's params (``dense_0``: 8×9 and 9; ``dense_1``: 9×4 and 4).
      x: inputs of shape (N, 8); t: targets of shape (N, 4).

    Returns:
      L = (1/N) Σ_n ½ Σ_k (y_nk − t_nk)², and ∂L/∂params in the same nested dict layout.
    """
    w1, b1 = (np.asarray(params["dense_0"][k], np.float64) for k in ("w", "b"))
    w2, b2 = (np.asarray(params["dense_1"][k], np.float64) for k in ("w", "b"))
    n = len(x)
    # Forward propagation.
    hidden = sigmoid(x @ w1 + b1[None, :])  # (N, 9): y_j
    y = sigmoid(hidden @ w2 + b2[None, :])  # (N, 4): y_k
    # Backward: the error of each unit.
    delta_out = (y - t) * y * (1 - y)  # (N, 4): δ_k = (y_k − t_k) y_k (1 − y_k)
    delta_hidden = (delta_out @ w2.T) * hidden * (1 - hidden)  # (N, 9): Σ_k δ_k w_jk y_j(1 − y_j)
    # ∂L/∂w_ij = δ_j x_i for each example, averaged over the batch.
    grads = {
        "dense_0": {"w": x.T @ delta_hidden / n, "b": delta_hidden.mean(axis=0)},  # 8×9, 9
        "dense_1": {"w": hidden.T @ delta_out / n, "b": delta_out.mean(axis=0)},  # 9×4, 4
    }
    loss = 0.5 * np.sum((y - t) ** 2) / n
    return float(loss), grads


def half_sse(params: dict, x: jax.Array, t: jax.Array) -> jax.Array:
    """The same loss through the jaxnet net: (1/N) Σ_n ½ Σ_k (y_nk − t_nk)²."""
    y, _ = NET.apply(params, {}, x)
    return 0.5 * jnp.sum((y - t) ** 2) / x.shape[0]


def toy_data(n: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """N inputs of 8 features and one-hot targets over 4 classes (the largest of x_0..x_3)."""
    x = np.random.default_rng(0).standard_normal((n, 8))
    t = np.eye(4)[np.argmax(x[:, :4], axis=1)]  # (N, 4)
    return x, t


loss_and_grad = jax.jit(jax.value_and_grad(half_sse))  # backpropagation, compiled


def descend(params: dict, x: np.ndarray, t: np.ndarray, steps: int) -> dict[str, list[float]]:
    """u ← u − η∇L(u) for ``steps`` steps, with the gradient by hand and with ``jax.grad``."""
    by_hand, with_jax = params, params
    xj, tj = jnp.asarray(x, jnp.float32), jnp.asarray(t, jnp.float32)
    curves: dict[str, list[float]] = {"by hand": [], "jax.grad": []}
    for _ in range(steps):
        loss, grads = backprop_by_hand(by_hand, x, t)
        by_hand = jax.tree.map(lambda u, g: u - LEARNING_RATE * g, by_hand, grads)
        curves["by hand"].append(loss)
        loss_j, grads_j = loss_and_grad(with_jax, xj, tj)
        with_jax = jax.tree.map(lambda u, g: u - LEARNING_RATE * g, with_jax, grads_j)
        curves["jax.grad"].append(float(loss_j))
    return curves


def plot(mine: dict, theirs: dict, curves: dict[str, list[float]], path: Path) -> None:
    """Every gradient entry, by hand against jax.grad; the loss during gradient descent."""
    a = np.concatenate([np.ravel(v) for v in jax.tree.leaves(mine)])
    b = np.concatenate([np.ravel(v) for v in jax.tree.leaves(theirs)])
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    left.plot([a.min(), a.max()], [a.min(), a.max()], color="gray", lw=0.8)
    left.scatter(a, b, s=8)
    left.set_xlabel("∂L/∂u by hand (δ rule, NumPy)")
    left.set_ylabel("∂L/∂u from jax.grad")
    left.set_title(f"all {a.size} gradient entries, max |diff| {np.max(np.abs(a - b)):.0e}")
    for label, values in curves.items():
        style = "-" if label == "by hand" else "--"
        right.plot(range(len(values)), values, style, label=label)
    right.set_xlabel("step")
    right.set_ylabel("L = ½ Σ (y − t)²  (mean over batch)")
    right.set_title(f"u ← u − η∇L(u), η = {LEARNING_RATE}")
    right.grid(alpha=0.3)
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Compare the gradients, run gradient descent both ways, draw; return the findings."""
    args = parse_args(argv)
    x, t = toy_data()
    _, params, _ = NET.init(jax.random.key(0), (None, 8))
    loss, mine = backprop_by_hand(params, x, t)
    xj, tj = jnp.asarray(x, jnp.float32), jnp.asarray(t, jnp.float32)
    loss_jax, theirs = loss_and_grad(params, xj, tj)
    differences = jax.tree.map(lambda a, b: float(np.max(np.abs(a - np.asarray(b)))), mine, theirs)
    max_difference = max(jax.tree.leaves(differences))
    curves = descend(params, x, t, steps=30 if args.quick else 300)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "backprop_by_hand.png"
    plot(mine, theirs, curves, path)
    first, last = curves["by hand"][0], curves["by hand"][-1]
    print(f"backprop by hand vs jax.grad: max |difference| = {max_difference:.1e}")
    print(f"gradient descent, {len(curves['by hand'])} steps: loss {first:.4f} -> {last:.4f}")
    return {
        "max_difference": max_difference,
        "differences": differences,
        "loss": loss,
        "loss_jax": float(loss_jax),
        "curves": curves,
        "figure": path,
    }


if __name__ == "__main__":
    main()
