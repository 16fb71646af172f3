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


def axis_keys(axis: str) -> list[str]:
    """The dotted keys a grid axis sets: `noise.type` sets one; a zipped axis
    `method.name, train.optimizer, train.lr` sets several, each value being one row of them."""
    return [key.strip() for key in axis.split(",")]


def expand(
    name: str,
    experiment: ExperimentSpec,
    overrides: list[Override] = (),
    seeds: int | None = None,
) -> list[RunSpec]:
    """The Cartesian product of the grid times the seeds, each validated as a RunSpec.

    An override sets its key in the base; when the key is a grid axis it replaces that axis by
    the single value, so `method.name=dividemix noise.type=sym` selects one cell. A zipped axis
    (several comma-separated keys, each value a list setting them together) is one factor of
    the product; an override of one of its keys keeps the rows holding that value.
    """
    base = experiment.base()
    grid = {axis: [row if len(axis_keys(axis)) > 1 else [row] for row in values] for axis, values in experiment.grid.items()}
    inside_axis = []  # overrides of a key inside a whole-section axis (`noise.rate` when `noise` is one)
    for override in overrides:
        zipped = next((axis for axis in grid if override.key in axis_keys(axis)), None)
        if override.key in grid:
            grid[override.key] = [override.value if len(axis_keys(override.key)) > 1 else [override.value]]
        elif zipped is not None and len(axis_keys(zipped)) > 1:
            # A key of a zipped axis selects the rows that hold its value; a value no row holds
            # is set in every row instead (applied after the cell, like an override inside a section).
            position = axis_keys(zipped).index(override.key)
            rows = [row for row in grid[zipped] if row[position] == override.value]
            if rows:
                grid[zipped] = rows
            else:
                inside_axis.append(override)
        elif any(override.key.startswith(f"{key}.") for axis in grid for key in axis_keys(axis)):
            inside_axis.append(override)
        else:
            set_dotted(base, override.key, override.value)
    seed_list = list(range(seeds)) if seeds is not None else experiment.seeds
    if seeds is not None and seeds < 1:
        raise SpecError("--seeds: must be at least 1")

    specs = []
    for cell in itertools.product(*grid.values()):
        tree = copy.deepcopy(base)
        for axis, row in zip(grid, cell):
            for key, value in zip(axis_keys(axis), row):
                set_dotted(tree, key, copy.deepcopy(value))
        for override in inside_axis:  # applied after the cell, so the override wins
            set_dotted(tree, override.key, override.value)
        for seed in seed_list:
            try:
                specs.append(RunSpec.model_validate({**tree, "experiment": name, "seed": seed}))
            except ValidationError as error:
                where = ", ".join(f"{k}={v}" for axis, row in zip(grid, cell) for k, v in zip(axis_keys(axis), row))
                suffix = f" (grid cell {where})" if where else ""
                raise SpecError(f"{name}: {describe_validation_error(error)}{suffix}") from None
    return specs
