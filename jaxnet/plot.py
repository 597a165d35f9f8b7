"""Figures with matplotlib, drawn on `matplotlib.figure.Figure` objects and saved as PNG files:
no window, no pyplot state, no change to the user's backend, so ``fit`` draws from its writer
thread. Each file is replaced atomically (see :mod:`jaxnet.atomic`)."""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from jaxnet.atomic import replacing


def prepare() -> None:
    """Load matplotlib's fonts and PNG renderer by drawing a small figure in memory: the first
    figure of a process costs about 0.2 s more than the next, which ``fit`` pays this way
    while its first epoch compiles."""
    fig = Figure(figsize=(1, 1))
    ax = fig.subplots()
    ax.plot([1, 2], [1, 2], marker=".", label="x")
    ax.set_yscale("log")
    ax.legend()
    fig.suptitle("x")
    fig.savefig(io.BytesIO(), dpi=100, format="png")


def plot_curves(
    history: Sequence[Mapping[str, Any]], path: str | os.PathLike[str], *, title: str = ""
) -> None:
    """Plot train, validation and test curves per epoch, one panel per metric (loss, accuracy,
    ...).

    The PNG is replaced atomically (a reader, or a run killed while drawing, never sees a cut-off
    file), and no pyplot state is touched, so ``fit`` redraws it from its writer thread while
    training goes on.

    Args:
      history: ``fit``'s history rows (``epoch``, ``train_<m>``, ``val_<m>``, ``test_<m>``).
      path: the PNG file to write.
      title: the figure title.
    """
    fig = curves_figure(history, title=title)
    with replacing(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")


CURVES_MARGIN_PX = {"left": 72, "right": 10, "bottom": 52, "top": 52}
"""The margins of ``curves.png`` in pixels (at 100 dpi), the same for one panel (a regression
run's loss) as for several, so the tick labels and axis names of each lie inside the canvas."""


def curves_figure(history: Sequence[Mapping[str, Any]], *, title: str = "") -> Figure:
    """The figure :func:`plot_curves` writes: one 450×350 panel per metric."""
    metrics = sorted({k.split("_", 1)[1] for row in history for k in row if k.startswith("train_")})
    width, height = 450 * len(metrics), 350
    fig = Figure(figsize=(width / 100, height / 100))
    axes = fig.subplots(1, len(metrics), squeeze=False)
    epochs = [row["epoch"] for row in history]
    for ax, metric in zip(axes[0], metrics, strict=True):
        for split in ("train", "val", "test"):
            values = [row.get(f"{split}_{metric}") for row in history]
            if any(v is not None for v in values):
                ax.plot(epochs, values, marker=".", label=split)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        if metric == "loss":
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    # fixed margins: tight_layout measures every label and doubles the cost of a redraw
    margin = CURVES_MARGIN_PX
    fig.subplots_adjust(
        left=margin["left"] / width,
        right=1 - margin["right"] / width,
        bottom=margin["bottom"] / height,
        top=1 - margin["top"] / height,
        wspace=0.3,
    )
    return fig


def plot_sweep(
    rows: Sequence[Mapping[str, Any]],
    path: str | os.PathLike[str],
    *,
    metric: str | None = None,
    title: str = "",
) -> None:
    """Final validation (or test) metric against the learning rate, one line per (width,
    depth), mean over seeds with the min-max range shaded.

    Args:
      rows: :func:`jaxnet.recipes.grid`'s rows.
      path: the PNG file to write.
      metric: the history key to plot; default ``val_accuracy`` if present, else ``val_loss``
        (``test_*`` for rows without a validation split).
      title: the figure title.
    """
    split = "val" if any(k.startswith("val_") for k in rows[0]) else "test"
    metric = metric or (f"{split}_accuracy" if f"{split}_accuracy" in rows[0] else f"{split}_loss")
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    for width, depth in sorted({(r["width"], r["depth"]) for r in rows}):
        mine = [r for r in rows if (r["width"], r["depth"]) == (width, depth)]
        lrs = sorted({r["lr"] for r in mine})
        values = [[r[metric] for r in mine if r["lr"] == lr] for lr in lrs]
        mean = [sum(v) / len(v) for v in values]
        ax.plot(lrs, mean, marker="o", label=f"width {width}, depth {depth}")
        ax.fill_between(lrs, [min(v) for v in values], [max(v) for v in values], alpha=0.2)
    ax.set_xscale("log")
    ax.set_xlabel("learning rate η")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    ax.set_title(title)
    fig.tight_layout()
    with replacing(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")


def plot_lr_find(result: Any, path: str | os.PathLike[str], *, title: str = "") -> None:
    """The learning-rate finder's curve: the loss (faint) and its moving average against η on
    a log axis, the suggested rate marked.

    Args:
      result: a :class:`jaxnet.train.LrFindResult`.
      path: the PNG file to write.
      title: the figure title.
    """
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    ax.plot(result.learning_rates, result.losses, alpha=0.3, label="loss")
    ax.plot(result.learning_rates, result.smoothed, label="smoothed")
    at = int(abs(result.learning_rates - result.suggestion).argmin())
    ax.axvline(result.suggestion, color="tab:red", linestyle="--", alpha=0.6)
    ax.plot(
        [result.suggestion],
        [result.smoothed[at]],
        "o",
        color="tab:red",
        label=f"suggested η = {result.suggestion:.2g}",
    )
    ax.set_xscale("log")
    finite = result.losses[np.isfinite(result.losses)]
    if finite.size:  # the divergence's spike would flatten the rest of the curve
        ax.set_ylim(0.9 * finite.min(), min(finite.max(), 2 * result.smoothed[0]) * 1.05)
    ax.set_xlabel("learning rate η")
    ax.set_ylabel("training loss")
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title or "learning-rate finder")
    fig.tight_layout()
    with replacing(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
