"""nlx.reports.curves: pooling per-epoch metrics over seeds and saving the figure."""

from __future__ import annotations

import math

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from nlx.reports.curves import curve_data, draw_curves, plot_curves

MAGIC = {".png": b"\x89PNG\r\n\x1a\n", ".pdf": b"%PDF-"}

# val/acc of three sym0.4 seeds; the third stopped after two epochs and one value is NaN.
SEEDS = [[0.5, 0.6, 0.7], [0.4, 0.8, 0.9], [0.3, math.nan]]


@pytest.fixture
def runs(store, add_run):
    for seed, values in enumerate(SEEDS):
        add_run(seed=seed, epochs=[{"val/acc": v, "train/loss": 1.0 - v if v == v else 1.0} for v in values])
    add_run(seed=0, noise={"type": "none"}, epochs=[{"val/acc": 0.9}, {"val/acc": 0.95}])
    return store.runs()


def test_curve_data_pools_each_epoch_over_the_runs_that_have_it(store, runs):
    data = curve_data(store, runs, ["val/acc"])
    assert data.labels == ["ce none", "ce sym0.4"]
    curve = data.panels["val/acc"]["ce sym0.4"]
    per_epoch = [[0.5, 0.4, 0.3], [0.6, 0.8], [0.7, 0.9]]  # the NaN of seed 2 is skipped
    assert curve.epochs.tolist() == [0, 1, 2]
    assert curve.n.tolist() == [3, 2, 2]
    assert curve.mean == pytest.approx([np.mean(v) for v in per_epoch])
    assert curve.std == pytest.approx([np.std(v, ddof=1) for v in per_epoch])
    clean = data.panels["val/acc"]["ce none"]
    assert clean.std.tolist() == [0.0, 0.0]  # a single run has no spread


@pytest.mark.parametrize("suffix", [".png", ".svg", ".pdf"])
def test_saves_each_format(store, runs, tmp_path, suffix):
    out = tmp_path / f"curves{suffix}"
    labels = plot_curves(store, runs, ["val/acc", "train/loss"], out)
    assert labels == ["ce none", "ce sym0.4"]
    head = out.read_bytes()[:512]
    if suffix == ".svg":
        assert b"<svg" in head
    else:
        assert head.startswith(MAGIC[suffix])


def test_labels_name_the_model_when_runs_span_several(store, add_run, tmp_path):
    add_run(arch="mlp", epochs=[{"val/acc": 0.5}])
    add_run(arch="lenet", epochs=[{"val/acc": 0.6}])
    labels = plot_curves(store, store.runs(), ["val/acc"], tmp_path / "c.png")
    assert labels == ["lenet ce sym0.4", "mlp ce sym0.4"]


def test_metric_absent_from_all_runs_gets_an_empty_panel(store, runs, tmp_path):
    data = curve_data(store, runs, ["val/acc", "train_flipped/acc_true"])
    assert data.panels["train_flipped/acc_true"] == {}
    assert plot_curves(store, runs, ["val/acc", "train_flipped/acc_true"], tmp_path / "c.png")
    assert (tmp_path / "c.png").stat().st_size > 0


def test_bad_suffix(store, runs, tmp_path):
    out = tmp_path / "curves.jpg"
    with pytest.raises(ValueError, match=r"\.png, \.svg, \.pdf"):
        plot_curves(store, runs, ["val/acc"], out)
    assert not out.exists()
    with pytest.raises(ValueError, match="does not exist"):
        plot_curves(store, runs, ["val/acc"], tmp_path / "missing" / "curves.png")


def test_no_metric_names_the_existing_keys(store, runs, tmp_path):
    out = tmp_path / "c.png"
    with pytest.raises(ValueError) as error:
        plot_curves(store, runs, ["test/acc", "lr"], out)
    message = str(error.value)
    assert "test/acc" in message and "lr" in message
    assert "train/loss" in message and "val/acc" in message
    assert not out.exists()


def test_no_runs_or_no_metrics(store, add_run, tmp_path):
    with pytest.raises(ValueError, match="no runs"):
        plot_curves(store, [], ["val/acc"], tmp_path / "c.png")
    add_run(summary={"best_val_test_acc": 0.5})  # a run without per-epoch values
    with pytest.raises(ValueError, match="no per-epoch metrics"):
        plot_curves(store, store.runs(), ["val/acc"], tmp_path / "c.png")
    with pytest.raises(ValueError, match="no metrics"):
        plot_curves(store, store.runs(), [], tmp_path / "c.png")


@pytest.mark.parametrize("groups, metrics", [(1, ["val/acc"]), (10, ["val/acc", "train/loss", "test/acc"])])
def test_fixed_margins_keep_legend_labels_and_panels_apart(store, add_run, groups, metrics):
    """The figure has fixed margins (no layout engine): however many legend rows and panels, the
    legend sits above the top panel, and tick and axis labels stay inside the figure."""
    for seed in range(groups):
        add_run(seed=0, noise={"type": "sym", "rate": round(0.05 * (seed + 1), 2)},
                epochs=[{key: 1000.0 * v for key in metrics} for v in (0.1, 0.5, 0.9)])
    data = curve_data(store, store.runs(), metrics)
    assert len(data.labels) == groups
    figure = draw_curves(data, metrics)
    renderer = FigureCanvasAgg(figure).get_renderer()  # the renderer savefig uses for .png
    frame = figure.bbox
    legend = figure.legends[0].get_window_extent(renderer)
    axes = figure.axes
    assert legend.y0 > axes[0].get_window_extent(renderer).y1  # above the top panel, not on it
    for box in [legend] + [ax.get_tightbbox(renderer) for ax in axes]:  # tick labels and axis labels included
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
    for upper, lower in zip(axes, axes[1:]):  # panels do not overlap
        assert lower.get_window_extent(renderer).y1 < upper.get_window_extent(renderer).y0
