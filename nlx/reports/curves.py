"""Training curves: per-epoch metrics of runs, pooled over seeds, as an image file.

The engine logs these keys every epoch (other methods may add their own, "<method>/<key>"):

    train/loss, train/acc                      on the noisy training labels
    train_clean/acc, train_clean/loss          on the samples whose label was not flipped
    train_flipped/loss                         on the flipped samples ...
    train_flipped/acc_noisy                    ... predicting their noisy label (memorisation)
    train_flipped/acc_true                     ... predicting their true label
    val/loss, val/acc, test/loss, test/acc
    lr, time/epoch_s

Accuracies are plotted as stored, fractions in [0, 1].
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from nlx.reports.common import GroupKey, group_key, group_labels, group_sort_key, image_format, mean_std
from nlx.store.models import Run
from nlx.store.repo import Store

_KNOWN_KEYS_SHOWN = 12  # how many existing keys an error message lists
# Figure geometry in inches: each panel's height (its share of the gap between panels included),
# the margins that hold tick labels and axis labels, one legend row per _LEGEND_COLUMNS groups.
_WIDTH_IN, _PANEL_IN, _LEGEND_ROW_IN, _LEGEND_COLUMNS = 8.0, 2.6, 0.2, 4
_MARGIN_IN = {"left": 0.85, "right": 0.2, "top": 0.2, "bottom": 0.55, "between": 0.15, "legend": 0.1}

# run id -> metric key -> epoch -> value
Series = dict[int, dict[str, dict[int, float]]]


def _load(store: Store, runs: Sequence[Run], metrics: Sequence[str]) -> Series:
    series: Series = defaultdict(lambda: defaultdict(dict))
    for run_id, key, epoch, value in store.metrics([run.id for run in runs], metrics):
        if value is not None:  # None stands for a non-finite value: a gap in the line
            series[run_id][key][epoch] = value
    return series


def _no_data_error(store: Store, runs: Sequence[Run], metrics: Sequence[str]) -> ValueError:
    wanted = ", ".join(metrics)
    if not runs:
        return ValueError(f"no runs selected, so nothing to plot for {wanted}")
    keys = sorted({key for _, key, _, _ in store.metrics([run.id for run in runs])})
    if not keys:
        return ValueError(f"the {len(runs)} selected run(s) have no per-epoch metrics logged (wanted {wanted})")
    shown = ", ".join(keys[:_KNOWN_KEYS_SHOWN]) + (", ..." if len(keys) > _KNOWN_KEYS_SHOWN else "")
    return ValueError(f"no selected run has values for {wanted}; the keys they have are: {shown}")


@dataclass
class Curve:
    """One group's line in one panel: the mean and std over its seeds at each epoch."""

    epochs: np.ndarray
    mean: np.ndarray
    std: np.ndarray  # sample std (ddof=1); 0.0 where a single run has the epoch
    n: np.ndarray  # how many runs have each epoch


@dataclass
class CurveData:
    labels: list[str]  # every group with values, in display order (table order)
    panels: dict[str, dict[str, Curve]]  # metric -> group label -> curve; absent: no values


def pool(epochs_values: Sequence[dict[int, float]]) -> Curve:
    """Pool several runs' {epoch: value}; each epoch pools only the runs that have it, so a
    shorter or unfinished seed does not pull the tail of the line down."""
    epochs = sorted(set().union(*epochs_values))
    pooled = [[values[e] for values in epochs_values if e in values] for e in epochs]
    stats = np.array([mean_std(values) for values in pooled], dtype=float).reshape(-1, 2)
    return Curve(np.array(epochs, dtype=float), stats[:, 0], stats[:, 1], np.array([len(v) for v in pooled]))


def curve_data(store: Store, runs: Sequence[Run], metrics: Sequence[str]) -> CurveData:
    """What plot_curves draws: runs grouped by (dataset, model, method, noise), pooled over
    seeds per metric. ValueError when no run has a value of any of the metrics."""
    if not metrics:
        raise ValueError("no metrics to plot")
    series = _load(store, runs, metrics)
    if not series:
        raise _no_data_error(store, runs, metrics)
    groups: dict[GroupKey, list[int]] = defaultdict(list)
    for run in {run.id: run for run in runs}.values():  # a run listed twice counts once
        if run.id in series:
            groups[group_key(run)].append(run.id)
    order = sorted(groups, key=group_sort_key)
    labels = group_labels(order)
    panels: dict[str, dict[str, Curve]] = {}
    for metric in metrics:
        panels[metric] = {}
        for key in order:
            per_run = [series[run_id][metric] for run_id in groups[key] if series[run_id].get(metric)]
            if per_run:
                panels[metric][labels[key]] = pool(per_run)
    return CurveData([labels[key] for key in order], panels)


def _style(index: int) -> dict[str, str]:
    # Ten colours, then the same colours dashed, dotted...: groups stay distinguishable.
    return {"color": f"C{index % 10}", "linestyle": ("-", "--", ":", "-.")[index // 10 % 4]}


def plot_curves(store: Store, runs: Sequence[Run], metrics: list[str], out: Path) -> list[str]:
    """Draw one panel per metric (stacked, sharing the epoch axis) with, for each group of runs
    with equal (dataset, model, method, noise), the mean over seeds and a shaded ± std band.
    Saves to `out` (.png, .svg or .pdf) and returns the group labels drawn, e.g. "ce sym0.4".

    A requested metric that no run has gets an empty panel saying so; if none has any,
    nothing is written and ValueError names the keys that do exist."""
    out = Path(out)
    fmt = image_format(out)
    data = curve_data(store, runs, metrics)
    draw_curves(data, metrics).savefig(out, format=fmt)
    return data.labels


def draw_curves(data: CurveData, metrics: Sequence[str]) -> Figure:
    """The figure of plot_curves: one panel per metric, the legend above them."""
    styles = {label: _style(index) for index, label in enumerate(data.labels)}

    # A Figure of its own rather than pyplot: no global state, no GUI backend, no leaks. Fixed
    # margins instead of constrained layout, which draws the figure twice: it was a third of the
    # command's time on a 10,000-run store (docs/benchmarks.md).
    legend_columns = min(_LEGEND_COLUMNS, len(data.labels))
    legend_rows = -(-len(data.labels) // _LEGEND_COLUMNS)
    top = _MARGIN_IN["top"] + _LEGEND_ROW_IN * legend_rows
    height = top + _MARGIN_IN["bottom"] + _PANEL_IN * len(metrics)
    figure = Figure(figsize=(_WIDTH_IN, height))
    axes = figure.subplots(len(metrics), 1, sharex=True, squeeze=False, gridspec_kw={
        "left": _MARGIN_IN["left"] / _WIDTH_IN, "right": 1 - _MARGIN_IN["right"] / _WIDTH_IN,
        "top": 1 - top / height, "bottom": _MARGIN_IN["bottom"] / height,
        "hspace": _MARGIN_IN["between"] / (_PANEL_IN - _MARGIN_IN["between"]),
    })[:, 0]
    for ax, metric in zip(axes, metrics):
        for label, curve in data.panels[metric].items():
            style = styles[label]  # the same group looks the same in every panel
            ax.plot(curve.epochs, curve.mean, **style, marker="o" if len(curve.epochs) == 1 else None)
            ax.fill_between(curve.epochs, curve.mean - curve.std, curve.mean + curve.std,
                            color=style["color"], alpha=0.2, linewidth=0)
        if not data.panels[metric]:
            ax.text(0.5, 0.5, f"no values of {metric}", ha="center", va="center", transform=ax.transAxes)
            ax.set_yticks([])
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("epoch")
    axes[-1].xaxis.set_major_locator(MaxNLocator(integer=True))
    # One legend for all panels, in group order, styled as the lines are.
    handles = [Line2D([], [], **styles[label], label=label) for label in data.labels]
    figure.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 1 - _MARGIN_IN["legend"] / height),
                  ncols=legend_columns, fontsize="small", frameon=False, borderaxespad=0)
    return figure
