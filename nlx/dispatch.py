"""Worker processes on this machine: each pinned to one GPU round-robin (CUDA_VISIBLE_DEVICES),
all with the same CPU thread count (`cpu_threads`). Used by `nlx run --jobs` (grid cells
pulled from a queue) and by `nlx sweep --jobs` (workers of one Optuna study).

Workers are separate processes started with `spawn` (no forked CUDA or torch thread pools); one
that dies does not take the others down: its run is marked failed and reported, and the
remaining cells are trained by the survivors.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from nlx.errors import SpecError
from nlx.runs import RunOutcome, graceful_stop, train_and_record
from nlx.specs import RunSpec
from nlx.store.repo import Store

POLL_S = 0.5


@dataclass(frozen=True)
class Placement:
    """Where worker `index` runs: a GPU id (None: CPU) and its torch thread count (None: default)."""

    gpu: str | None
    threads: int | None


def parse_gpus(text: str | None) -> list[str]:
    """`0,1,3` -> ["0", "1", "3"]; None or "" -> [] (CPU, or whatever CUDA_VISIBLE_DEVICES says)."""
    if not text:
        return []
    gpus = [part.strip() for part in text.split(",") if part.strip()]
    if not all(part.isdigit() for part in gpus):
        raise SpecError(f"--gpus {text!r}: expected comma-separated device numbers, e.g. 0,1")
    return gpus


DEFAULT_CPU_THREADS = 1


def cpu_threads(requested: int | None = None) -> int:
    """Torch CPU threads of a training process: `requested` (--threads), else $NLX_THREADS, else 1.

    One fixed count rather than the cores divided by --jobs: CPU float sums depend on the thread
    count, so only a count that is the same everywhere makes `--jobs 2` reproduce `--jobs 1`, a
    resumed run match an uninterrupted one, and two machines with different cores agree. The
    networks nlx trains on the CPU are small enough that a process per run (--jobs) uses the
    cores better than threads inside one run.
    """
    if requested is not None:
        return requested
    text = os.environ.get("NLX_THREADS", "").strip()
    if not text:
        return DEFAULT_CPU_THREADS
    if not text.isdigit() or int(text) < 1:
        raise SpecError(f"NLX_THREADS={text!r}: expected a positive whole number of threads")
    return int(text)


def use_cpu_threads(requested: int | None = None) -> None:
    """Set this process's torch CPU thread count to :func:`cpu_threads`."""
    import torch

    torch.set_num_threads(cpu_threads(requested))


def placements(jobs: int, gpus: Sequence[str], threads: int | None = None) -> list[Placement]:
    """GPU i % len(gpus) for worker i (none without GPUs); every worker gets the same thread
    count (:func:`cpu_threads`), so `--jobs 2` reproduces `--jobs 1` bit for bit on the CPU."""
    if jobs < 1:
        raise SpecError("--jobs: must be at least 1")
    threads = cpu_threads(threads)
    return [Placement(gpus[i % len(gpus)] if gpus else None, threads) for i in range(jobs)]


def apply_placement(placement: Placement) -> None:
    """In a fresh worker, before torch touches CUDA: see only its GPU, use only its threads."""
    if placement.gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = placement.gpu
    if placement.threads is not None:
        import torch

        torch.set_num_threads(placement.threads)


def _pinned(placement: Placement, target: Callable[..., Any], args: tuple) -> None:
    apply_placement(placement)
    target(*args)


def start_workers(
    target: Callable[..., Any], args: Sequence[tuple], gpus: Sequence[str], threads: int | None = None
) -> list[multiprocessing.Process]:
    """Start one spawned process per args tuple, each pinned by `placements`."""
    context = multiprocessing.get_context("spawn")
    workers = []
    for placement, worker_args in zip(placements(len(args), gpus, threads), args):
        process = context.Process(target=_pinned, args=(placement, target, worker_args))
        process.start()
        workers.append(process)
    return workers


# --- nlx run --jobs ----------------------------------------------------------------------
def _run_worker(index: int, url: str, tasks: Any, results: Any) -> None:
    """Train the runs the queue hands out until it says stop (None)."""
    from nlx.store.db import open_db

    with Store(open_db(url)) as store, graceful_stop() as stop:

        def run_extra(spec: RunSpec) -> RunOutcome:  # a pretraining run a spec needs first
            run_id = store.create_run(spec)
            outcome = train_and_record(spec, store, run_id, lambda: None, stop=stop, run=run_extra)
            results.put(("extra", index, run_id, spec.model_dump_json(), outcome.status, outcome.error))
            return outcome

        while (task := tasks.get()) is not None:
            position, run_id, spec_json = task
            results.put(("start", index, position, run_id))
            spec = RunSpec.model_validate_json(spec_json)
            outcome = train_and_record(spec, store, run_id, lambda: None, stop=stop, run=run_extra)
            results.put(("done", index, position, run_id, outcome.status, outcome.error))
            if outcome.status == "interrupted":
                break


def execute_parallel(
    specs: list[RunSpec],
    store: Store,
    url: str,
    jobs: int,
    gpus: Sequence[str] = (),
    on_outcome: Callable[[RunOutcome], None] = lambda outcome: None,
    threads: int | None = None,
) -> list[RunOutcome]:
    """Train `specs` in `jobs` worker processes. Runs are created here first, in order, so ids
    match a sequential `nlx run`; a worker that dies has its current run marked failed."""
    run_ids = [store.create_run(spec) for spec in specs]
    jobs = max(1, min(jobs, len(specs)))  # an idle worker would only take threads from the others
    context = multiprocessing.get_context("spawn")
    tasks, results = context.Queue(), context.Queue()
    for position, (run_id, spec) in enumerate(zip(run_ids, specs)):
        tasks.put((position, run_id, spec.model_dump_json()))
    for _ in range(jobs):
        tasks.put(None)
    workers = start_workers(_run_worker, [(i, url, tasks, results) for i in range(jobs)], gpus, threads)

    outcomes: list[RunOutcome] = []
    current: dict[int, tuple[int, int]] = {}  # worker -> (position, run_id) it is training

    def record(outcome: RunOutcome) -> None:
        outcomes.append(outcome)
        on_outcome(outcome)

    def bury_dead() -> None:
        for index, worker in enumerate(workers):
            if worker.exitcode not in (None, 0) and index in current:
                position, run_id = current.pop(index)
                reason = f"worker process died (exit code {worker.exitcode})"
                if store.get_run(run_id).status in ("pending", "running"):  # it may have finished first
                    store.finish_run(run_id, "failed", reason)
                record(RunOutcome(run_id, specs[position], "failed", reason))

    try:
        while any(worker.is_alive() for worker in workers) or not results.empty():
            try:
                message = results.get(timeout=POLL_S)
            except queue.Empty:
                bury_dead()
                continue
            kind, index, *rest = message
            if kind == "start":
                current[index] = (rest[0], rest[1])
            elif kind == "done":
                position, run_id, status, error = rest
                current.pop(index, None)
                record(RunOutcome(run_id, specs[position], status, error))
            else:  # a pretraining run
                run_id, spec_json, status, error = rest
                record(RunOutcome(run_id, RunSpec.model_validate_json(spec_json), status, error))
        bury_dead()
    finally:
        for worker in workers:
            worker.join()
    return outcomes
