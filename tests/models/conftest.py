"""What every-method run tests share: the setup that lets each registered method do something real
in a couple of epochs, and a builder of its run spec."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from nlx.methods import get_method, method_names
from nlx.specs import RunSpec

# What a method needs to do something real in a few epochs; anything else runs with defaults.
METHOD_SETUP = {
    "dividemix": ({"warm_up": 1}, 2),  # one warm-up epoch, then one with the GMM split and mixup
    "trevision": ({}, 3),  # warm-up, reweight, revise: one epoch each
    "dmi": ({"init_from": "auto"}, 2),  # pretrains (and then reuses) a CE run
}
# The data a method declaring a need gets on top of the test's own data section: meta-learning
# methods (`needs = {"trusted"}`) get a small clean trusted set, two samples per class.
NEEDS_DATA = {"trusted": {"trusted": {"per_class": 2}}}


def runnable_methods() -> list[str]:
    """Every registered method except the test doubles other modules register (names with "_")."""
    return [name for name in method_names() if not name.startswith("_")]


def method_run_spec(method: str, data: dict[str, Any], model: dict[str, Any], **train: Any) -> RunSpec:
    """A CPU run of `method` on `data` with `model` under 40% symmetric noise, with the method's
    setup (params, epochs) and whatever data its declared needs call for."""
    params, epochs = METHOD_SETUP.get(method, ({}, 2))
    data = dict(data)
    for need in sorted(get_method(method).needs):
        data.update(NEEDS_DATA.get(need, {}))
    return RunSpec.model_validate({
        "data": data,
        "noise": {"type": "sym", "rate": 0.4},
        "model": model,
        "method": {"name": method, "params": params},
        "train": {"epochs": epochs, "batch_size": 64, "device": "cpu", "checkpoint_every_s": 0, **train},
    })


@pytest.fixture(scope="session")
def run_spec_for() -> Callable[..., RunSpec]:
    """`method_run_spec`, for test modules (which cannot import a conftest)."""
    return method_run_spec


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test taking `any_method` runs once per runnable method."""
    if "any_method" in metafunc.fixturenames:
        metafunc.parametrize("any_method", runnable_methods())
