"""The lecture's table of activations redrawn: sigmoid, tanh, ReLU and softmax, with derivatives.

Each function is the ``jn.nn`` layer; each derivative is what ``jax.grad`` (mapped over a grid
with ``jax.vmap``) computes, checked against the table's formula:

    sigmoid  σ(a) = 1 / (1 + e^-a)     σ'(a) = σ(a)(1 − σ(a))     range (0, 1)
    tanh     tanh(a)                   1 − tanh²(a)               range (−1, 1)
    ReLU     max(0, a)                 1 if a > 0 else 0          range [0, ∞)
    softmax  e^(a_i) / Σ_j e^(a_j)     ∂y_i/∂a_j = y_i(δ_ij − y_j) range (0, 1), Σ = 1

Softmax takes a vector, so it is drawn for a = (a_0, 0, 0) as a_0 varies: y_0 rises from 0 to 1
while y_1 = y_2 share what is left, and ∂y_0/∂a_0 = y_0(1 − y_0) is the sigmoid's bell.

Run:    python experiments/activations.py [--out DIR] [--quick]
Expect: jax.grad equals the table's derivatives (max difference ~1e-7) and every function stays
        in its range; docs/figures/activations.png.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")  # files only, no window
import matplotlib.pyplot as plt

import jaxnet as jn

FIGURES = Path(__file__).resolve().parents[1] / "docs" / "figures"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=FIGURES, help="folder for the PNG")
    parser.add_argument("--quick", action="store_true", help="coarser grid")
    return parser.parse_args(argv)


def scalar(layer: jn.Layer) -> Callable[[jax.Array], jax.Array]:
    """An activation layer as a function of one number, so that ``jax.grad`` applies."""
    return lambda a: layer.apply({}, {}, a)[0]


def softmax_row(a0: jax.Array) -> jax.Array:
    """softmax((a0, 0, 0)): the three probabilities as a function of the first score."""
    a = jnp.stack([a0, jnp.zeros_like(a0), jnp.zeros_like(a0)])  # (3,)
    return jn.nn.Softmax.apply({}, {}, a)[0]


# name -> (function, the table's derivative in terms of a and y = f(a), how the table writes it)
TABLE: dict[str, tuple[Callable[[jax.Array], jax.Array], Callable[..., jax.Array], str]] = {
    "sigmoid": (scalar(jn.nn.Sigmoid), lambda a, y: y * (1 - y), "σ(1 − σ)"),
    "tanh": (scalar(jn.nn.Tanh), lambda a, y: 1 - y**2, "1 − tanh²"),
    "relu": (scalar(jn.nn.Relu), lambda a, y: (a > 0).astype(y.dtype), "1 if a > 0 else 0"),
}


@jax.jit  # one compiled program rather than a dispatch per operation
def curves(a: jax.Array) -> dict[str, dict[str, jax.Array]]:
    """Each function, its ``jax.grad`` derivative and the table's formula on the grid ``a``."""
    out = {}
    for name, (fn, formula, _) in TABLE.items():
        y = jax.vmap(fn)(a)  # (n,)
        out[name] = {"y": y, "grad": jax.vmap(jax.grad(fn))(a), "formula": formula(a, y)}
    y = jax.vmap(softmax_row)(a)  # (n, 3)
    jacobian = jax.vmap(jax.jacobian(softmax_row))(a)  # (n, 3): ∂y_i/∂a_0
    out["softmax"] = {
        "y": y,
        "grad": jacobian,
        "formula": y * (jnp.eye(3)[0][None, :] - y[:, :1]),  # y_i(δ_i0 − y_0)
    }
    return out


def plot(a: jax.Array, results: dict[str, dict[str, jax.Array]], path: Path) -> None:
    """One panel per activation: the function, its derivative and its range shaded."""
    ranges = {"sigmoid": (0, 1), "tanh": (-1, 1), "relu": (0, None), "softmax": (0, 1)}
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.2))
    for ax, (name, r) in zip(axes, results.items(), strict=True):
        low, high = ranges[name]
        ax.axhspan(low, high if high is not None else float(a.max()), color="tab:green", alpha=0.1)
        if name == "softmax":
            ax.plot(a, r["y"][:, 0], label="y₀ = softmax(a₀, 0, 0)₀")
            ax.plot(a, r["y"][:, 1], label="y₁ = y₂")
            ax.plot(a, r["grad"][:, 0], "--", label="∂y₀/∂a₀ = y₀(1 − y₀)")
            ax.plot(a, r["grad"][:, 1], ":", label="∂y₁/∂a₀ = −y₀y₁")
            ax.set_xlabel("a₀ (a₁ = a₂ = 0)")
        else:
            ax.plot(a, r["y"], label=name)
            ax.plot(a, r["grad"], "--", label=f"jax.grad = {TABLE[name][2]}")
            ax.set_xlabel("a")
        shown = f"[{low}, ∞)" if high is None else f"({low}, {high})"
        ax.set_title(f"{name}: range {shown}" + (", Σ = 1" if name == "softmax" else ""))
        ax.axhline(0, color="black", lw=0.5)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="x-small", loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Draw the table; return the largest |jax.grad − formula| and each function's min and max."""
    args = parse_args(argv)
    a = jnp.linspace(-5.0, 5.0, 101 if args.quick else 401)
    a = a[jnp.abs(a) > 1e-3]  # ReLU has no derivative at 0 (JAX takes 0 there): leave it out
    results = curves(a)
    results = {name: results[name] for name in (*TABLE, "softmax")}  # jit returns keys sorted
    max_error = {
        name: float(jnp.max(jnp.abs(r["grad"] - r["formula"]))) for name, r in results.items()
    }
    extremes = {name: (float(r["y"].min()), float(r["y"].max())) for name, r in results.items()}
    softmax_sums = jnp.sum(results["softmax"]["y"], axis=-1)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "activations.png"
    plot(a, results, path)
    worst = max(max_error.values())
    print(f"jax.grad equals the table's derivatives: max |difference| = {worst:.1e}")
    print(
        "ranges on a in [-5, 5]: "
        + ", ".join(f"{n} [{lo:.3f}, {hi:.3f}]" for n, (lo, hi) in extremes.items())
        + f"; softmax sums to 1 ± {float(jnp.max(jnp.abs(softmax_sums - 1))):.0e}"
    )
    return {
        "max_grad_error": max_error,
        "extremes": extremes,
        "softmax_sum_error": float(jnp.max(jnp.abs(softmax_sums - 1))),
        "figure": path,
    }


if __name__ == "__main__":
    main()
