"""train.compile: networks compiled in place run a whole training run on the CPU, keep their
checkpoint keys, and leave the spec hashes of runs stored before the option existed unchanged."""

from __future__ import annotations

import json

import pytest
import torch

from nlx.engine import load_checkpoint
from nlx.runs import execute_runs
from nlx.specs import RunSpec
from nlx.store.db import open_db
from nlx.store.repo import Store

SPEC = {
    "data": {"name": "digits"},
    "noise": {"type": "sym", "rate": 0.2},
    "model": {"arch": "mlp", "hidden": [16]},
    "train": {"epochs": 1, "batch_size": 256, "device": "cpu", "compile": True},
}


def test_compile_off_leaves_the_spec_hash_as_before():
    spec = RunSpec.model_validate({k: v for k, v in SPEC.items() if k != "train"})
    assert "compile" not in spec.content()["train"]  # as a spec stored before train.compile existed
    assert RunSpec.model_validate(SPEC).spec_hash() != spec.spec_hash()


def test_a_compiled_run_trains_and_checkpoints_plain_keys(db_path):
    if not hasattr(torch.nn.Module, "compile") or not torch._dynamo.is_dynamo_supported():
        pytest.skip("torch.compile is not available here")
    spec = RunSpec.model_validate(SPEC)
    with Store(open_db(str(db_path), create=True)) as store:
        [outcome] = execute_runs([spec], store)
        if outcome.status == "failed" and "compil" in (outcome.error or "").lower():
            pytest.skip(f"torch.compile cannot build here: {outcome.error.splitlines()[0]}")
        assert outcome.status == "finished", outcome.error
        run = store.get_run(outcome.run_id)
        assert json.loads(run.spec_json)["train"]["compile"] is True
        assert run.epochs_done == 1 and run.last_test_acc is not None
        blob = store.load_checkpoint(outcome.run_id, "last")
    keys = list(load_checkpoint(blob)["method"]["tracked"]["net"])
    assert keys and not any("_orig_mod" in key for key in keys)  # loads into an uncompiled net
