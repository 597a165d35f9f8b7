"""A recurrent net forecasts tomorrow's temperature, against the truth and the persistence baseline.

The temperature-lstm recipe reads the last 28 days (``jn.data.load("temperature_forecast")``:
windows ``(28, 1)``, split in time order, the last 20% to test) with ``jn.nn.RNN(jn.nn.LSTM(32))``
and a linear layer, and predicts the next day in °C. The baseline it must beat is *persistence*,
"tomorrow is like today" (``jn.data.persistence_mse``): the daily noise makes each day a poor
guess of the next, and the LSTM learns to average the recent days into the seasonal level.

Run:    python experiments/sequences.py [--out DIR] [--quick]
Expect: test MSE after the recipe's 30 epochs: lstm 4.98 °C² against persistence 8.66 (the
        daily noise alone costs 4); docs/figures/sequences.png shows the end of the test period:
        truth, forecast, persistence. --quick: 10 epochs, lstm 5.8.
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
SHOWN_DAYS = 150  # the last days of the test period drawn


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=FIGURES, help="folder for the PNG")
    parser.add_argument("--quick", action="store_true", help="10 epochs")
    return parser.parse_args(argv)


def forecast(job: jn.recipes.Job, result: jn.train.FitResult) -> np.ndarray:
    """The trained net's forecast for every test window, in °C, shape (n_test,)."""
    ts = result.train_state
    y, _ = jax.jit(job.net.apply)(ts.params, ts.state, jnp.asarray(job.data.x_test))
    return np.asarray(y)[:, 0]


def persistence(data: jn.data.Dataset) -> np.ndarray:
    """Tomorrow = today: each test window's last day, back in °C, shape (n_test,)."""
    return data.x_test[:, -1, 0] * data.feature_std[-1, 0] + data.feature_mean[-1, 0]


def plot(truth: np.ndarray, lstm: np.ndarray, today: np.ndarray, mse: dict, path: Path) -> None:
    """The last ``SHOWN_DAYS`` test days: truth, the LSTM's forecast and persistence."""
    days = np.arange(len(truth))[-SHOWN_DAYS:]
    fig, ax = plt.subplots(figsize=(9, 3.4))
    ax.plot(days, truth[-SHOWN_DAYS:], color="gray", lw=1, marker=".", ms=3, label="truth")
    ax.plot(
        days,
        today[-SHOWN_DAYS:],
        color="tab:orange",
        lw=1,
        label=f"persistence: {mse['persistence']:.2f}",
    )
    ax.plot(days, lstm[-SHOWN_DAYS:], color="tab:blue", lw=2, label=f"lstm: {mse['lstm']:.2f}")
    ax.set_xlabel("test day")
    ax.set_ylabel("temperature tomorrow (°C)")
    ax.set_title("forecasting tomorrow from 28 days (legend: test MSE, °C²)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Train the recipe, compare with persistence, draw; return both test errors."""
    args = parse_args(argv)
    job = jn.recipes.build(
        jn.recipes.make_config("temperature-lstm", epochs=10 if args.quick else None)
    )
    result = job.fit(progress=False)
    truth = job.data.y_test[:, 0]
    lstm, today = forecast(job, result), persistence(job.data)
    mse = {
        "lstm": float(np.mean((lstm - truth) ** 2)),
        "persistence": jn.data.persistence_mse(job.data),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "sequences.png"
    plot(truth, lstm, today, mse, path)
    print(
        f"forecast test MSE: lstm {mse['lstm']:.2f} °C², persistence {mse['persistence']:.2f} °C² "
        f"({len(result.history)} epochs)"
    )
    return {
        "mse": mse,
        "fit_test_loss": float(result.history[-1]["test_loss"]),
        "persistence_check": float(np.mean((today - truth) ** 2)),
        "figure": path,
    }


if __name__ == "__main__":
    main()
