"""The per-epoch learning-rate schedule, with and without the linear warm-up."""

from __future__ import annotations

import pytest
import torch

from nlx.context import lr_scheduler
from nlx.specs import TrainSpec


def rates(train: TrainSpec, epochs: int, resume_at: int | None = None) -> list[float]:
    """The learning rate of each epoch; with resume_at, optimizer and scheduler are rebuilt there
    and given their saved states, as a resumed run rebuilds them from a checkpoint."""
    def build():
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=train.lr)
        return optimizer, lr_scheduler(train, optimizer)

    optimizer, scheduler = build()
    seen = []
    for epoch in range(epochs):
        if epoch == resume_at:
            states = optimizer.state_dict(), scheduler.state_dict()
            optimizer, scheduler = build()
            optimizer.load_state_dict(states[0])
            scheduler.load_state_dict(states[1])
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return seen


def test_warmup_rises_linearly_to_the_rate_then_hands_over():
    flat = TrainSpec(lr=0.4, epochs=8, warmup_epochs=3)
    assert rates(flat, 8) == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.4, 0.4, 0.4, 0.4])
    cosine = rates(TrainSpec(lr=0.4, epochs=8, warmup_epochs=3, scheduler="cosine"), 8)
    assert cosine[:4] == pytest.approx([0.1, 0.2, 0.3, 0.4])
    assert all(a > b for a, b in zip(cosine[3:], cosine[4:]))  # the cosine runs over the rest
    assert rates(TrainSpec(lr=0.4, epochs=5), 5) == pytest.approx([0.4] * 5)  # no warm-up: as before


def test_a_rebuilt_scheduler_continues_the_same_schedule():
    train = TrainSpec(lr=0.4, epochs=8, warmup_epochs=3, scheduler="cosine")
    assert rates(train, 8, resume_at=2) == pytest.approx(rates(train, 8))


def test_warmup_longer_than_the_run_still_reaches_no_further_than_the_rate():
    seen = rates(TrainSpec(lr=0.4, epochs=3, warmup_epochs=10), 3)
    assert seen == sorted(seen) and max(seen) <= 0.4 + 1e-12
