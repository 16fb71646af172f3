"""Meta-learning benchmark: the `meta` experiment (CE, L2R, IEG, IEG+DivideMix with 10 trusted
samples per class, at sym0.4, sym0.6, asym0.4), then one table of what each method buys over CE.

    python bench/meta.py [--dataset digits] [--db meta.db] [--seeds 3] [--jobs 1] [KEY=VALUE ...]

--dataset other than digits also sets the model section and optimiser of that dataset's row in
bench/common.py DEFAULTS (mnist1d: the 1-D CNN under Adam 1e-2; mfeat: multiview concat under
Adam 1e-3); KEY=VALUE overrides come after and win.

Every method, CE included, validates on the same trusted set (`data.val: trusted`) and trains on
the same noisy set without it, so CE has exactly the clean data the meta methods have. Each run
is a fresh subprocess (one per run), so its peak resident memory is its own. Runs already
finished in --db with the same spec are reused, so an interrupted benchmark resumes.
Columns, mean ± std over seeds:
  best   test accuracy at the best-validation epoch      last   test accuracy at the last epoch
  d_last last minus CE's last (points)                   wclean meta/weight_clean_share averaged
  clean  1 - realised noise rate: the clean share of            over epochs: share of the meta
         weight that uniform weights would give                 weight on clean samples
  cost   seconds per epoch / CE's                         rss    peak resident memory of the run's
                                                                 process (resource maxrss), MiB
                                                          +rss   of which the run added (peak minus
                                                                 the process before the run)
Target: L2R and IEG d_last >= 5 at sym0.6. IEG (and the hybrid) also fit the trusted set in
their mixup loss, so their best-validation epoch is picked on data they train on: read their
`best` with that in mind; `last` is the fair column.
"""

from __future__ import annotations

import multiprocessing
import resource
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

TARGET_NOISE = "sym0.6"
TARGET_METHODS = ("l2r", "ieg")


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def run_one(db: str, spec_json: str, threads: int) -> str:
    import torch

    torch.set_num_threads(threads)
    baseline = peak_rss_mib()  # the process with torch and nlx imported, before the run
    with Store(open_db(db)) as store:
        [outcome] = execute_runs([RunSpec.model_validate_json(spec_json)], store)
    peak = peak_rss_mib()
    rss = f"{peak:.1f}/{peak - baseline:.1f}"  # peak, and what the run added to the process
    return f"{outcome.run_id}\t{rss}\t{outcome.spec.method.name} {outcome.spec.noise.label} seed {outcome.spec.seed}: {outcome.status} {outcome.error or ''}"


def run_missing(db: str, specs: list[RunSpec], jobs: int, rss_file: Path) -> None:
    todo = missing_specs(db, specs)
    # Seed by seed, the target noise first: a benchmark cut short still has comparable cells.
    todo.sort(key=lambda s: (s.seed, s.noise.label != TARGET_NOISE))
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context, max_tasks_per_child=1) as pool:
        for line in pool.map(run_one, [db] * len(todo), [s.model_dump_json() for s in todo], [1 if jobs > 1 else 2] * len(todo)):
            run_id, rss, text = line.split("\t")
            with rss_file.open("a") as out:
                out.write(f"{run_id}\t{rss}\n")
            print(" ", text, f"(peak rss {rss} MiB)", flush=True)


def table(db: str, specs: list[RunSpec], rss_file: Path) -> list[str]:
    rss = {}
    if rss_file.exists():
        for line in rss_file.read_text().splitlines():
            run_id, value = line.split("\t")
            peak, _, added = value.partition("/")
            rss[int(run_id)] = (float(peak), float(added) if added else None)
    cells = figures_by_cell(db, specs, "meta/weight_clean_share")
    lines = [
        f"{'data':7} {'noise':8} {'method':14} {'best':>13} {'last':>13} {'d_last':>7} {'wclean':>13} {'clean':>6} {'cost':>5} {'rss':>6} {'+rss':>6} n",
        "-" * 112,
    ]
    verdicts = []
    for (dataset, noise, method), values in cells.items():
        d_last, cost = gain_and_cost(cells, (dataset, noise, method))
        mem = [rss[v.run_id] for v in values if v.run_id in rss]
        peaks = [m[0] for m in mem]
        added = [m[1] for m in mem if m[1] is not None]
        shares = [v.key_mean for v in values if v.key_mean is not None]
        lines.append(
            f"{dataset:7} {noise:8} {method:14} {fmt([v.best for v in values]):>13} {fmt([v.last for v in values]):>13} "
            f"{d_last:+7.1f} {fmt(shares):>13} {100 * statistics.fmean(v.clean for v in values):6.1f} {cost:5.1f} "
            f"{statistics.fmean(peaks) if peaks else float('nan'):6.0f} {statistics.fmean(added) if added else float('nan'):6.0f} {len(values)}"
        )
        if noise == TARGET_NOISE and method in TARGET_METHODS:
            verdicts.append(f"{dataset} {noise} {method}: last >= CE + 5: {'PASS' if d_last >= 5 else 'FAIL'} ({d_last:+.1f})")
    return lines + [""] + verdicts


def main() -> None:
    args = experiment_bench_parser(__doc__, "meta").parse_args()
    specs = plan_runs("meta", ROOT / "experiments.yaml", [*dataset_overrides(args.dataset), *args.overrides], args.seeds)
    rss_file = Path(f"{args.db}.rss.tsv")  # run id -> peak RSS of its process (not in the database)
    if not args.table_only:
        run_missing(args.db, specs, args.jobs, rss_file)
    print("\n".join(table(args.db, specs, rss_file)))


if __name__ == "__main__":
    main()
