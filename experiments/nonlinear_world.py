"""Real life is not linear: a linear model against a deep net on two everyday curves.

1. The seasonal temperature (``jn.data.load("temperature")``): day of the year → °C, cold in
   January, warm in July. The best straight line through a year of it is flat.
2. Income over a working life, generated here with NumPy: monthly income (k€) rises with
   experience, peaks around 50 and falls towards retirement, and it is skewed, as incomes are
   (log-normal around that curve: a long tail of high earners, the mean above the median).

Both models are ``jn.recipes.mlp`` trained the same way by ``jn.train.fit``: ``depth=0`` is the
linear model x·W + b, ``depth=2`` a deep net (two tanh layers of 32). The linear model does not
fail for lack of training: it reaches the best straight line (least squares, computed in closed
form), and the best straight line is simply wrong. The deep net reaches the noise floor: the
error of the very curve the data were drawn from.

Run:    python experiments/nonlinear_world.py [--out DIR] [--quick]
Expect: temperature test MSE: linear 72.8 °C² (the best straight line: 72.8), deep 4.1 (the
        noise floor: 3.8); income test MSE: linear 5.07 (best line 5.07), deep 3.2 (noise
        floor 3.09) (k€/month)²;
        docs/figures/nonlinear_world.png.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import matplotlib
import numpy as np
import optax

matplotlib.use("Agg")  # files only, no window
import matplotlib.pyplot as plt

import jaxnet as jn

FIGURES = Path(__file__).resolve().parents[1] / "docs" / "figures"
MODELS = {"linear": 0, "deep": 2}  # name -> depth of jn.recipes.mlp(32, depth, "tanh", 1)
INCOME_NOISE = 0.35  # σ of log-income around its curve: a skewed, log-normal spread


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=FIGURES, help="folder for the PNG")
    parser.add_argument("--quick", action="store_true", help="fewer epochs")
    return parser.parse_args(argv)


def mean_income(age: np.ndarray) -> np.ndarray:
    """E[income | age] in k€ a month: the log-normal's mean, exp(μ(age) + σ²/2)."""
    log_median = np.log(6.0) - 1.3 * ((age - 50) / 24) ** 2  # peaks at 6 k€ at 50
    return np.exp(log_median + INCOME_NOISE**2 / 2)


def income_data(seed: int = 0, n: int = 1460) -> jn.data.Dataset:
    """Ages 18-70 and skewed monthly incomes (k€) around :func:`mean_income`."""
    rng = np.random.default_rng(seed)
    age = rng.uniform(18, 70, n)
    log_income = np.log(mean_income(age)) - INCOME_NOISE**2 / 2  # log of the median
    income = np.exp(log_income + INCOME_NOISE * rng.standard_normal(n))
    return jn.data.from_arrays(age[:, None], income, name="income", seed=seed)


def mean_temperature(day: np.ndarray) -> np.ndarray:
    """The seasonal curve ``jn.data.temperature_series`` draws its noisy days around (°C)."""
    return 10.0 - 12.0 * np.cos(2 * np.pi * day / 365)


def fit(data: jn.data.Dataset, depth: int, epochs: int) -> jn.train.FitResult:
    """Train ``jn.recipes.mlp(32, depth, "tanh", 1)`` with Adam (η = 0.03) on the L2 loss."""
    return jn.train.fit(
        jn.recipes.mlp(32, depth, "tanh", 1),
        data,
        optimizer=optax.adam(0.03),
        loss=jn.losses.mse,
        epochs=epochs,
        batch_size=64,
        progress=False,
    )


def predict(result: jn.train.FitResult, depth: int, data: jn.data.Dataset, raw: np.ndarray):
    """The trained model's predictions for raw (unstandardized) inputs of shape (n, 1)."""
    ts = result.train_state
    net = jn.recipes.mlp(32, depth, "tanh", 1)
    y, _ = net.apply(ts.params, ts.state, jnp.asarray(data.transform(raw)))
    return np.asarray(y)[:, 0]


def best_line_mse(data: jn.data.Dataset) -> float:
    """The test MSE of the least-squares straight line fitted to the training split."""
    design = np.c_[data.x_train, np.ones(data.num_train)]  # (n, 2): x and 1
    coef, *_ = np.linalg.lstsq(design, data.y_train, rcond=None)  # (2, 1)
    line = np.c_[data.x_test, np.ones(data.num_test)] @ coef
    return float(np.mean((line - data.y_test) ** 2))


def raw_inputs(data: jn.data.Dataset, x: np.ndarray) -> np.ndarray:
    return x * data.feature_std + data.feature_mean  # undo the standardization


def plot(panels: dict[str, dict[str, Any]], income: np.ndarray, path: Path) -> None:
    """The two fits (test points, truth, linear, deep) and the income histogram."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, (title, p) in zip(axes[:2], panels.items(), strict=True):
        ax.scatter(p["x_test"], p["y_test"], s=4, color="gray", alpha=0.5, label="test data")
        ax.plot(p["grid"], p["truth"], color="black", lw=1, ls=":", label="true mean")
        for name, color in (("linear", "tab:red"), ("deep", "tab:blue")):
            mse = p["mse"][name]
            ax.plot(p["grid"], p["curves"][name], color=color, lw=2, label=f"{name}: MSE {mse:.3g}")
        ax.set_title(title)
        ax.set_xlabel(p["xlabel"])
        ax.set_ylabel(p["ylabel"])
        ax.legend(fontsize="small")
    ax = axes[2]
    ax.hist(income, bins=50, color="tab:gray")
    for value, label, style in ((np.median(income), "median", "--"), (income.mean(), "mean", "-")):
        ax.axvline(value, color="black", ls=style, label=f"{label} {value:.2f}")
    ax.set_title("incomes are skewed (log-normal)")
    ax.set_xlabel("monthly income (k€)")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Fit both models on both data sets, draw, print and return the test errors."""
    args = parse_args(argv)
    epochs = 20 if args.quick else 60
    sets = {"temperature": jn.data.load("temperature"), "income": income_data()}
    settings = {
        "temperature": ("day of the year", "°C", lambda x: x * 365, mean_temperature),
        "income": ("age", "k€ a month", lambda x: x, mean_income),
    }
    findings: dict[str, Any] = {}
    panels = {}
    for name, data in sets.items():
        xlabel, ylabel, to_axis, truth = settings[name]
        fits = {model: fit(data, depth, epochs) for model, depth in MODELS.items()}
        raw_grid = np.linspace(data.x_train.min(), data.x_train.max(), 200)[:, None]
        raw_grid = raw_inputs(data, raw_grid)  # (200, 1) in the data's own units
        mse = {m: float(r.history[-1]["test_loss"]) for m, r in fits.items()}
        x_test = to_axis(raw_inputs(data, data.x_test)[:, 0])
        floor = float(np.mean((truth(x_test) - data.y_test[:, 0]) ** 2))
        findings[name] = {**mse, "best_line": best_line_mse(data), "noise_floor": floor}
        panels[f"{name}: the truth is a curve"] = {
            "x_test": x_test,
            "y_test": data.y_test[:, 0],
            "grid": to_axis(raw_grid[:, 0]),
            "truth": truth(to_axis(raw_grid[:, 0])),
            "curves": {m: predict(r, MODELS[m], data, raw_grid) for m, r in fits.items()},
            "mse": mse,
            "xlabel": xlabel,
            "ylabel": ylabel,
        }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "nonlinear_world.png"
    income = np.concatenate([sets["income"].y_train[:, 0], sets["income"].y_test[:, 0]])
    plot(panels, income, path)
    for name, f in findings.items():
        print(
            f"{name} test MSE: linear {f['linear']:.3g} (best straight line {f['best_line']:.3g}),"
            f" deep {f['deep']:.3g} (noise floor {f['noise_floor']:.3g})"
        )
    findings["income_mean"], findings["income_median"] = (
        float(income.mean()),
        float(np.median(income)),
    )
    findings["figure"] = path
    return findings


if __name__ == "__main__":
    main()
