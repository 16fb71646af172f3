"""Specs and experiments.yaml: validation names the field; grids, overrides and seeds expand right."""

from __future__ import annotations

from pathlib import Path

import pytest

from nlx.config import expand, get_experiment, load_experiments, parse_override
from nlx.errors import SpecError
from nlx.specs import RunSpec

REPO = Path(__file__).resolve().parents[1]


def test_repository_experiments_file_is_valid():
    experiments = load_experiments(REPO / "experiments.yaml")
    quickstart = experiments["quickstart"]
    specs = expand("quickstart", quickstart)
    # The quickstart contract: rate 0.4 in the base, a grid over sym/asym, 3 seeds.
    assert {(s.noise.type, s.noise.rate) for s in specs} == {("sym", 0.4), ("asym", 0.4)}
    assert sorted({s.seed for s in specs}) == [0, 1, 2]
    assert len(specs) == 6
    for name, experiment in experiments.items():
        assert expand(name, experiment)


def test_grid_override_replaces_axis_and_base_override_sets_value(experiments_file):
    experiment = get_experiment("tiny", experiments_file)
    specs = expand("tiny", experiment, [parse_override("noise.type=asym"), parse_override("noise.rate=0.6")])
    assert [(s.noise.type, s.noise.rate) for s in specs] == [("asym", 0.6)]
    specs = expand("tiny", experiment, [parse_override("train.epochs=5")], seeds=3)
    assert len(specs) == 6 and {s.train.epochs for s in specs} == {5}
    assert [s.seed for s in specs] == [0, 1, 2, 0, 1, 2]


def test_overrides_are_typed_from_yaml():
    assert parse_override("noise.rate=0.6").value == 0.6
    assert parse_override("model.hidden=[64, 32]").value == [64, 32]
    assert parse_override("method.name=ce").value == "ce"
    with pytest.raises(SpecError, match="KEY=VALUE"):
        parse_override("noise.rate")
    with pytest.raises(SpecError, match="unknown field"):
        parse_override("nois.rate=0.4")


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ("noise.rate=1.0", "noise.rate"),
        ("noise.rate=-0.1", "noise.rate"),
        ("noise.rate=abc", "noise.rate"),
        ("noise.type=gaussian", "noise.type"),
        ("noise.rat=0.4", "noise.rat"),
        ("train.epochs=0", "train.epochs"),
        ("train.lr=fast", "train.lr"),
        ("data.name=imagenet", "data.name"),
        ("model.arch=transformer", "model.arch"),
        ("method.name=magic", "method"),
        ("method.params.label_smoothing=2", "method.params.label_smoothing"),
        ("method.params.nonsense=1", "method.params.nonsense"),
    ],
)
def test_bad_override_names_the_field(experiments_file, override, field):
    experiment = get_experiment("tiny", experiments_file)
    with pytest.raises(SpecError) as error:
        expand("tiny", experiment, [parse_override(override)])
    assert field in str(error.value)
    assert "\n" not in str(error.value)


def test_method_params_are_stored_with_defaults_filled():
    spec = RunSpec.model_validate({"method": {"name": "ce"}})
    assert spec.method.params == {"label_smoothing": 0.0}


def test_spec_hashes_group_seeds():
    a, b = RunSpec(seed=0), RunSpec(seed=1)
    assert a.config_hash() == b.config_hash()
    assert a.spec_hash() != b.spec_hash()
    assert RunSpec(experiment="x").spec_hash() == RunSpec(experiment="y").spec_hash()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tiny: [\n", "malformed YAML"),
        ("- a\n- b\n", "mapping of experiment names"),
        ("tiny:\n  noise: {rate: 0.4}\n  epochs: 3\n", "tiny.epochs: unknown field"),
        ("tiny:\n  seeds: 0\n", "tiny.seeds"),
        ("tiny:\n  grid: {noise.type: []}\n", "tiny.grid"),
        ("tiny:\n  grid: {'method.name, train.lr': [[ce, 0.1], [ce]]}\n", "zips 2 keys"),
    ],
)
def test_bad_files_are_refused_with_a_location(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(SpecError, match=message.replace(".", r"\.")):
        load_experiments(path)


def test_bad_grid_value_names_the_cell(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text("g:\n  grid: {noise.rate: [0.2, 1.5]}\n")
    with pytest.raises(SpecError, match=r"noise\.rate.*grid cell noise\.rate=1\.5"):
        expand("g", get_experiment("g", path))


def test_selection_experiment_covers_three_methods_four_noises_three_seeds():
    specs = expand("selection", load_experiments(REPO / "experiments.yaml")["selection"])
    cells = {(s.method.name, s.noise.label) for s in specs}
    assert cells == {(m, n) for m in ("ce", "coteaching", "dividemix") for n in ("sym0.2", "sym0.5", "sym0.8", "asym0.4")}
    assert len(specs) == 36 and {s.seed for s in specs} == {0, 1, 2}
    assert {s.data.name for s in specs} == {"digits"}


def test_override_inside_a_whole_section_axis_wins_over_the_cell():
    selection = load_experiments(REPO / "experiments.yaml")["selection"]
    specs = expand("selection", selection, [parse_override("noise.rate=0.3"), parse_override("method.name=ce")], seeds=1)
    assert sorted((s.noise.type, s.noise.rate) for s in specs) == [("asym", 0.3)] + [("sym", 0.3)] * 3
    assert selection.grid["noise"][0] == {"type": "sym", "rate": 0.2}  # the experiment itself is untouched


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"noise": {"type": "file"}}, "noise.path"),
        ({"noise": {"type": "file", "path": "n.npy", "rate": 0.4}}, "noise.rate"),
        ({"noise": {"type": "sym", "rate": 0.4, "path": "n.npy"}}, "noise.path"),
        ({"noise": {"type": "sym", "rate": 0.4, "key": "worse_label"}}, "noise.key"),
        ({"data": {"name": "npz"}}, "data.path"),
        ({"data": {"name": "digits", "path": "d.npz"}}, "data.path"),
    ],
)
def test_file_fields_are_validated_where_they_belong(fields, field):
    from pydantic import ValidationError

    from nlx.errors import describe_validation_error

    with pytest.raises(ValidationError) as info:
        RunSpec.model_validate(fields)
    assert describe_validation_error(info.value).startswith(f"{field}: ")


def test_data_label_names_the_file_and_view_subset():
    assert RunSpec().data.label == "digits"
    assert RunSpec.model_validate({"data": {"name": "mfeat", "views": ["fou", 5]}}).data.label == "mfeat[fou,5]"
    assert RunSpec.model_validate({"data": {"name": "npz", "path": "x/reuters.npz"}}).data.label == "npz:reuters"


ZIPPED = """
z:
  method: {name: ce}
  train: {optimizer: sgd, lr: 0.05, epochs: 3}
  grid:
    method.name, train.optimizer, train.lr:
      - [ce, sgd, 0.05]
      - [coteaching, adam, 0.001]
    noise.type: [sym, asym]
"""


def test_zipped_axis_sets_its_keys_together_and_crosses_the_other_axes(tmp_path):
    path = tmp_path / "zip.yaml"
    path.write_text(ZIPPED)
    specs = expand("z", get_experiment("z", path))
    cells = sorted((s.method.name, s.train.optimizer, s.train.lr, s.noise.type) for s in specs)
    assert cells == [("ce", "sgd", 0.05, "asym"), ("ce", "sgd", 0.05, "sym"),
                     ("coteaching", "adam", 0.001, "asym"), ("coteaching", "adam", 0.001, "sym")]
    assert {s.train.epochs for s in specs} == {3}  # the rest of the section is the base's


def test_override_of_a_zipped_key_selects_rows_or_else_sets_every_row(tmp_path):
    path = tmp_path / "zip.yaml"
    path.write_text(ZIPPED)
    experiment = get_experiment("z", path)
    picked = expand("z", experiment, [parse_override("method.name=coteaching"), parse_override("noise.type=sym")])
    assert [(s.method.name, s.train.optimizer, s.train.lr) for s in picked] == [("coteaching", "adam", 0.001)]
    # No row holds lr 0.01: it is set in every row, after the row (the override wins).
    every = expand("z", experiment, [parse_override("train.lr=0.01"), parse_override("noise.type=sym")])
    assert sorted((s.method.name, s.train.optimizer, s.train.lr) for s in every) == [("ce", "sgd", 0.01), ("coteaching", "adam", 0.01)]
    # The paper optimiser's control: CE under Co-teaching's optimiser.
    control = expand("z", experiment, [parse_override(o) for o in ("method.name=ce", "train.optimizer=adam", "train.lr=0.001", "noise.type=sym")])
    assert [(s.method.name, s.train.optimizer, s.train.lr) for s in control] == [("ce", "adam", 0.001)]


def test_selection_experiment_runs_coteaching_per_class_under_the_shared_optimiser():
    specs = expand("selection", load_experiments(REPO / "experiments.yaml")["selection"], seeds=1)
    assert {(s.train.optimizer, s.train.lr) for s in specs} == {("sgd", 0.05)}
    per_class = {s.method.name: s.method.params.get("per_class") for s in specs}
    assert per_class == {"ce": None, "coteaching": True, "dividemix": None}
    picked = expand("selection", load_experiments(REPO / "experiments.yaml")["selection"], [parse_override("method.name=coteaching")], seeds=1)
    assert {s.method.name for s in picked} == {"coteaching"} and len(picked) == 4


def test_dividemix_tune_sweeps_the_six_hyperparameters_on_sym06():
    from nlx.sweeps import plan_sweep

    plan = plan_sweep("dividemix_tune", REPO / "experiments.yaml", [])
    assert plan.base.method.name == "dividemix" and plan.base.noise.label == "sym0.6" and plan.base.data.name == "digits"
    assert set(plan.sweep.params) == {
        "method.params.warm_up", "method.params.p_threshold", "method.params.alpha", "method.params.lambda_u",
        "train.lr", "train.weight_decay",
    }
    assert plan.sweep.objective == "best_val_acc" and plan.sweep.pruner.name == "median" and plan.sweep.sampler.name == "tpe"
