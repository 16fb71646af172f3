"""Sample selection benchmark: the `selection` experiment (CE, Co-teaching, DivideMix on digits at
sym0.2, sym0.5, sym0.8, asym0.4, 3 seeds), then one table of what each method buys over CE.

    python bench/selection.py [--dataset digits] [--db selection.db] [--seeds 3] [--jobs 1] [KEY=VALUE ...]

Runs already finished in --db with the same spec are reused, so an interrupted benchmark resumes.
--dataset sets data.name and, other than digits, that dataset's model section and optimiser from
bench/common.py DEFAULTS (mnist1d: the 1-D CNN under Adam 1e-2; mfeat: multiview concat under Adam
1e-3). KEY=VALUE overrides go to the experiment after it and win (e.g. `train.epochs=20`, or one
noise setting: `'noise={type: sym, rate: 0.8}'`). Columns, mean ± std over seeds:
  best   test accuracy at the best-validation epoch      last   test accuracy at the last epoch
  d_last last minus CE's last (points)                   prec   select/precision averaged over
  clean  1 - realised noise rate: a random selection's          the epochs that logged it
         expected precision                               cost   seconds per epoch / CE's
Targets: d_last >= 5 at sym0.5 and sym0.8 for both methods; prec > clean everywhere.
"""

from __future__ import annotations

import statistics
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import dataset_overrides, experiment_bench_parser, figures_by_cell, fmt, gain_and_cost, missing_specs  # noqa: E402
from nlx.runs import execute_runs, plan_runs  # noqa: E402
from nlx.specs import RunSpec  # noqa: E402
from nlx.store.db import open_db  # noqa: E402
from nlx.store.repo import Store  # noqa: E402

TARGET_NOISE = ("sym0.5", "sym0.8")


def run_one(db: str, spec_json: str, threads: int) -> str:
    import torch

    torch.set_num_threads(threads)
    with Store(open_db(db)) as store:
        [outcome] = execute_runs([RunSpec.model_validate_json(spec_json)], store)
    return f"{outcome.spec.method.name} {outcome.spec.noise.label} seed {outcome.spec.seed}: {outcome.status} {outcome.error or ''}"


def run_missing(db: str, specs: list[RunSpec], jobs: int) -> None:
    todo = missing_specs(db, specs)
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for line in pool.map(run_one, [db] * len(todo), [s.model_dump_json() for s in todo], [1 if jobs > 1 else 2] * len(todo)):
            print(" ", line, flush=True)


def table(db: str, specs: list[RunSpec]) -> list[str]:
    cells = figures_by_cell(db, specs, "select/precision")
    lines = [f"{'data':7} {'noise':8} {'method':11} {'best':>13} {'last':>13} {'d_last':>7} {'prec':>13} {'clean':>6} {'cost':>5} n",
             "-" * 96]
    verdicts = []
    for (dataset, noise, method), values in cells.items():
        d_last, cost = gain_and_cost(cells, (dataset, noise, method))
        clean = [v.clean for v in values]
        precisions = [v.key_mean for v in values if v.key_mean is not None]
        lines.append(
            f"{dataset:7} {noise:8} {method:11} {fmt([v.best for v in values]):>13} {fmt([v.last for v in values]):>13} "
            f"{d_last:+7.1f} {fmt(precisions):>13} {100 * statistics.fmean(clean):6.1f} {cost:5.1f} {len(values)}"
        )
        if method != "ce":
            beats_chance = bool(precisions) and statistics.fmean(precisions) > statistics.fmean(clean)
            verdicts.append(f"{dataset} {noise} {method}: precision above clean fraction: {'PASS' if beats_chance else 'FAIL'}")
            if noise in TARGET_NOISE:
                verdicts.append(f"{dataset} {noise} {method}: last >= CE + 5: {'PASS' if d_last >= 5 else 'FAIL'} ({d_last:+.1f})")
    return lines + [""] + verdicts


def main() -> None:
    args = experiment_bench_parser(__doc__, "selection").parse_args()
    specs = plan_runs("selection", ROOT / "experiments.yaml", [*dataset_overrides(args.dataset), *args.overrides], args.seeds)
    if not args.table_only:
        run_missing(args.db, specs, args.jobs)
    print("\n".join(table(args.db, specs)))


if __name__ == "__main__":
    main()
