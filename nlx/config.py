"""experiments.yaml: load, apply `KEY=VALUE` overrides, expand grids and seeds into run specs."""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from nlx.errors import SpecError, describe_validation_error
from nlx.specs import ExperimentSpec, RunSpec

DEFAULT_CONFIG = Path("experiments.yaml")
SECTIONS = ("data", "noise", "model", "method", "train")


@dataclass(frozen=True)
class Override:
    key: str  # dotted path, e.g. "noise.rate"
    value: Any


def parse_override(text: str) -> Override:
    """`noise.rate=0.6` -> Override("noise.rate", 0.6); values are read as YAML scalars/lists."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise SpecError(f"override {text!r}: expected KEY=VALUE, e.g. noise.rate=0.6")
    if key.split(".")[0] not in SECTIONS:
        raise SpecError(f"override {key!r}: unknown field (keys start with one of {', '.join(SECTIONS)})")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw  # not YAML: keep it as the string the user typed
    return Override(key, value)


def load_experiments(path: Path = DEFAULT_CONFIG) -> dict[str, ExperimentSpec]:
    """Read and validate every experiment in a YAML file."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: no such experiments file")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(error, "problem", None) or "invalid YAML"
        raise SpecError(f"{path}{where}: malformed YAML: {problem}") from None
    if not isinstance(raw, dict) or not raw:
        raise SpecError(f"{path}: expected a mapping of experiment names to specs")
    experiments = {}
    for name, body in raw.items():
        try:
            experiments[str(name)] = ExperimentSpec.model_validate(body or {})
        except ValidationError as error:
            raise SpecError(f"{path}: {describe_validation_error(error, str(name))}") from None
    return experiments


def get_experiment(name: str, path: Path = DEFAULT_CONFIG) -> ExperimentSpec:
    experiments = load_experiments(path)
    if name not in experiments:
        raise SpecError(f"{path}: no experiment {name!r}; defined: {', '.join(experiments)}")
    return experiments[name]


def set_dotted(tree: dict[str, Any], key: str, value: Any) -> None:
    """Set `a.b.c` in a nested dict, creating intermediate dicts (pydantic rejects unknown ones)."""
    *parents, leaf = key.split(".")
    node = tree
    for part in parents:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise SpecError(f"{key}: {part!r} is not a section")
        node = child
    node[leaf] = value


def expand(
    name: str,
    experiment: ExperimentSpec,
    overrides: list[Override] = (),
    seeds: int | None = None,
) -> list[RunSpec]:
    """The Cartesian product of the grid times the seeds, each validated as a RunSpec.

    An override sets its key in the base; when the key is a grid axis it replaces that axis by
    the single value, so `method.name=dividemix noise.type=sym` selects one cell.
    """
    base = experiment.base()
    grid = dict(experiment.grid)
    inside_axis = []  # overrides of a key inside a whole-section axis (`noise.rate` when `noise` is one)
    for override in overrides:
        if override.key in grid:
            grid[override.key] = [override.value]
        elif any(override.key.startswith(f"{axis}.") for axis in grid):
            inside_axis.append(override)
        else:
            set_dotted(base, override.key, override.value)
    seed_list = list(range(seeds)) if seeds is not None else experiment.seeds
    if seeds is not None and seeds < 1:
        raise SpecError("--seeds: must be at least 1")

    specs = []
    for cell in itertools.product(*grid.values()):
        tree = copy.deepcopy(base)
        for key, value in zip(grid, cell):
            set_dotted(tree, key, copy.deepcopy(value))
        for override in inside_axis:  # applied after the cell, so the override wins
            set_dotted(tree, override.key, override.value)
        for seed in seed_list:
            try:
                specs.append(RunSpec.model_validate({**tree, "experiment": name, "seed": seed}))
            except ValidationError as error:
                where = ", ".join(f"{k}={v}" for k, v in zip(grid, cell))
                suffix = f" (grid cell {where})" if where else ""
                raise SpecError(f"{name}: {describe_validation_error(error)}{suffix}") from None
    return specs
