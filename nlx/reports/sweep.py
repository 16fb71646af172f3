"""A study on one figure: the optimisation history (each completed trial, the best so far, and
where pruned trials stopped) and the parameter importances."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import optuna  # noqa: E402

from nlx.errors import SpecError  # noqa: E402
from nlx.reports.common import image_format  # noqa: E402

def plot_sweep(study: optuna.Study, out: Path) -> Path:
    from nlx.sweeps import param_importances

    try:
        image_format(out)
    except ValueError as error:
        raise SpecError(f"--out: {error}") from None
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    pruned = [t for t in trials if t.state == optuna.trial.TrialState.PRUNED and t.intermediate_values]
    if not complete:
        raise SpecError(f"study {study.study_name!r} has no completed trial to plot")
    maximise = study.direction == optuna.study.StudyDirection.MAXIMIZE
    figure, (history, importance) = plt.subplots(1, 2, figsize=(11, 4))

    history.scatter([t.number for t in complete], [t.value for t in complete], s=18, label="completed")
    if pruned:  # a pruned trial's last reported value, where it was stopped
        last = [t.intermediate_values[max(t.intermediate_values)] for t in pruned]
        history.scatter([t.number for t in pruned], last, s=18, marker="x", color="grey", label="pruned (last report)")
    best, best_so_far = None, []
    for trial in complete:
        if best is None or (trial.value > best if maximise else trial.value < best):
            best = trial.value
        best_so_far.append(best)
    history.step([t.number for t in complete], best_so_far, where="post", color="C3", label="best so far")
    history.set(xlabel="trial", ylabel="objective", title=f"{study.study_name}: optimisation history")
    history.legend(fontsize=8)

    importances = param_importances(study)
    if importances:
        names = list(importances)[::-1]
        importance.barh(names, [importances[n] for n in names])
        importance.set(xlabel="importance (fANOVA)", title="parameter importances")
    else:
        importance.text(0.5, 0.5, "too few completed trials", ha="center", va="center")
        importance.set_axis_off()
    figure.tight_layout()
    figure.savefig(out)
    plt.close(figure)
    return Path(out)
