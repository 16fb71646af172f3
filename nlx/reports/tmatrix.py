"""Transition matrices as pictures: the true T and an estimate as two heatmaps side by side."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from nlx.reports.common import image_format
from nlx.store.models import ESTIMATED_T, TRUE_T
from nlx.store.repo import Store


def run_matrices(store: Store, run_id: int, epoch: int | None = None) -> tuple[np.ndarray, np.ndarray | None, str]:
    """The run's true T (C, C), its estimate at `epoch` (default: the last stored) or None, and a
    caption for the estimate."""
    matrices = store.matrices([run_id])
    true = [m for m in matrices if m.kind == TRUE_T]
    if not true:
        raise ValueError(f"run {run_id} has no stored transition matrix (did it start?)")
    estimates = [m for m in matrices if m.kind == ESTIMATED_T and (epoch is None or m.epoch == epoch)]
    if epoch is not None and not estimates:
        raise ValueError(f"run {run_id} stored no estimate at epoch {epoch}")
    if not estimates:
        return np.array(json.loads(true[0].values_json)), None, "no estimate (the method makes none)"
    last = estimates[-1]
    caption = f"estimated T ({last.estimator}, {last.stage} epoch {last.epoch}), error {last.error:.3f}"
    return np.array(json.loads(true[0].values_json)), np.array(json.loads(last.values_json)), caption


def plot_transition(true_T: np.ndarray, estimate: np.ndarray | None, caption: str, out: Path, title: str = "") -> None:
    """Two heatmaps, rows = true class, columns = noisy class, with each value printed; the
    estimate's panel is left blank with the caption when there is none. Saves to `out`."""
    fmt = image_format(out)
    panels = [("true T", true_T), (caption, estimate)]
    figure = Figure(figsize=(11.0, 5.2), layout="constrained")
    axes = figure.subplots(1, 2)
    image = None
    for ax, (name, T) in zip(axes, panels):
        ax.set_title(name, fontsize="medium")
        if T is None:
            ax.set_axis_off()
            continue
        image = ax.imshow(T, vmin=0, vmax=1, cmap="viridis")
        c = len(T)
        if c <= 12:  # values stay legible up to about a dozen classes
            for i in range(c):
                for j in range(c):
                    ax.text(j, i, f"{T[i, j]:.2f}", ha="center", va="center", fontsize=7,
                            color="black" if T[i, j] > 0.5 else "white")
        ax.set_xlabel("noisy class j")
        ax.set_ylabel("true class i")
    if image is not None:
        figure.colorbar(image, ax=list(axes), shrink=0.8, label="T[i, j] = P(noisy = j | true = i)")
    if title:
        figure.suptitle(title)
    figure.savefig(out, format=fmt)
