"""Without a non-linearity, depth buys nothing: stacked linear layers are one linear layer.

1. Two ``Dense`` layers with nothing between them, 8 → 9 → 4, compute x·W₁·W₂ + (b₁·W₂ + b₂):
   one linear layer with W = W₁W₂ (8×9 · 9×4 = 8×4). Their outputs agree to float rounding.
2. So no stack of linear layers can solve XOR (a straight line gets at most 3 of the 4 corners,
   75%): ``Dense(8), Dense(2)`` does no better than one ``Dense(2)``. Put a tanh between the
   same two layers (the xor recipe's net) and it gets every point. The figure draws each
   model's decision boundary.

Run:    python experiments/linear_collapse.py [--out DIR] [--quick]
Expect: W₁W₂: 8×9 · 9×4 = 8×4, max |two layers − one layer| = 4.8e-07
        XOR test accuracy: one linear layer 66%, two linear layers 43%, a tanh between them
        100%; docs/figures/linear_collapse.png. --quick skips the one-layer model.
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
MODELS = {
    "one linear layer": jn.recipes.mlp(8, 0, "tanh", 2),  # depth 0: x·W + b
    "two linear layers": jn.serial(jn.nn.Dense(8), jn.nn.Dense(2)),
    "a tanh between them": jn.recipes.mlp(8, 1, "tanh", 2),  # Dense(8), Tanh, Dense(2)
}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=FIGURES, help="folder for the PNG")
    parser.add_argument("--quick", action="store_true", help="skip the one-layer model")
    return parser.parse_args(argv)


@jax.jit  # one compiled call instead of a dispatch per operation
def collapse(key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """W₁W₂ for Dense(9) then Dense(4) on 8 inputs, and how far the stack's outputs are from
    the single layer (W₁W₂, b₁W₂ + b₂) on 100 random inputs."""
    stack = jn.serial(jn.nn.Dense(9), jn.nn.Dense(4))
    _, p, state = stack.init(key, (None, 8))
    w = p["dense_0"]["w"] @ p["dense_1"]["w"]  # 8×9 · 9×4 = 8×4
    b = p["dense_0"]["b"] @ p["dense_1"]["w"] + p["dense_1"]["b"]  # (4,)
    x = jax.random.normal(jax.random.fold_in(key, 1), (100, 8))
    two_layers, _ = stack.apply(p, state, x)
    one_layer, _ = jn.nn.Dense(4).apply({"w": w, "b": b}, {}, x)
    return w, jnp.max(jnp.abs(two_layers - one_layer))


def train(net: jn.Layer, data: jn.data.Dataset, epochs: int) -> jn.train.FitResult:
    """The xor recipe's training: Adam, η = 0.05, batches of 32, softmax cross-entropy."""
    return jn.train.fit(
        net,
        data,
        optimizer=optax.adam(0.05),
        loss=jn.losses.softmax_cross_entropy,
        metrics={"accuracy": jn.metrics.accuracy},
        epochs=epochs,
        batch_size=32,
        progress=False,
    )


def plot(data: jn.data.Dataset, fits: dict[str, jn.train.FitResult], path: Path) -> None:
    """Each model's decision boundary (P(true) shaded) over the XOR test points."""
    ticks = np.linspace(-0.5, 1.5, 121)
    grid = np.stack(np.meshgrid(ticks, ticks), axis=-1).reshape(-1, 2)  # (121², 2), raw units
    raw_test = data.x_test * data.feature_std + data.feature_mean  # back to the square's units
    fig, axes = plt.subplots(1, len(fits), figsize=(3.6 * len(fits), 3.5), squeeze=False)
    for ax, (name, result) in zip(axes[0], fits.items(), strict=True):
        ts = result.train_state
        logits, _ = MODELS[name].apply(ts.params, ts.state, jnp.asarray(data.transform(grid)))
        p_true = np.asarray(jax.nn.softmax(logits)[:, 1]).reshape(len(ticks), len(ticks))
        ax.contourf(ticks, ticks, p_true, levels=np.linspace(0, 1, 11), cmap="RdBu", alpha=0.6)
        ax.contour(ticks, ticks, p_true, levels=[0.5], colors="black", linewidths=1)
        ax.scatter(*raw_test.T, c=data.y_test, cmap="RdBu", edgecolors="black", s=14)
        accuracy = result.history[-1]["test_accuracy"]
        ax.set_title(f"{name}: {accuracy:.0%}")
        ax.set_xlabel("a")
        ax.set_aspect("equal")
    axes[0][0].set_ylabel("b")
    fig.suptitle("XOR: test accuracy and decision boundary (P(a XOR b) shaded)")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Show the collapse, train the three models on XOR, draw; return the findings."""
    args = parse_args(argv)
    w, difference = collapse(jax.random.key(0))
    shape = tuple(w.shape)
    data = jn.data.load("xor")
    names = list(MODELS)[1:] if args.quick else list(MODELS)  # --quick: two trainings, not three
    fits = {name: train(MODELS[name], data, epochs=30) for name in names}
    accuracy = {name: float(r.history[-1]["test_accuracy"]) for name, r in fits.items()}
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "linear_collapse.png"
    plot(data, fits, path)
    print(
        f"W₁W₂: 8×9 · 9×4 = {shape[0]}×{shape[1]}, max |two layers − one layer| = {difference:.1e}"
    )
    print("XOR test accuracy: " + ", ".join(f"{n} {a:.0%}" for n, a in accuracy.items()))
    return {
        "product_shape": shape,
        "max_difference": float(difference),
        "accuracy": accuracy,
        "figure": path,
    }


if __name__ == "__main__":
    main()
