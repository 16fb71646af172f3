"""A rich progress bar per run: epoch, training loss, validation and test accuracy."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

if TYPE_CHECKING:
    from nlx.specs import RunSpec


def make_progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
    )


class RunProgress:
    """The engine's Reporter, drawing one task of a shared rich Progress."""

    def __init__(self, progress: Progress):
        self.progress = progress
        self.task = None

    def start(self, run_id: int, spec: RunSpec, total_epochs: int, done: int = 0) -> None:
        label = f"run {run_id} {spec.method.name} {spec.noise.label} seed {spec.seed}"
        self.task = self.progress.add_task(label, total=total_epochs, completed=done, info="")

    def epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        info = (
            f"loss {metrics.get('train/loss', float('nan')):.3f}  "
            f"val {metrics['val/acc']:.3f}  test {metrics['test/acc']:.3f}"
        )
        self.progress.update(self.task, advance=1, info=info)

    def end(self, status: str) -> None:
        if self.task is not None and status != "finished":
            self.progress.update(self.task, info=f"[red]{status}[/]")
