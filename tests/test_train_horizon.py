"""`edgewave train --horizon`: fine-tuning through the feedback loop runs, moves the weights and
keeps the model convertible."""

import json
import tomllib

import numpy as np
import pytest

from edgewave import modeldir
from edgewave import spec as spec_mod
from edgewave import train as train_mod
from edgewave.errors import UserError

from conftest import SPEECH, TINY_SPEC, run_edgewave


def test_horizon_fine_tunes_an_existing_model_and_it_still_converts(tmp_path):
    spec = spec_mod.parse(tomllib.loads(TINY_SPEC))
    model, graph, meta = train_mod.fit(spec, str(SPEECH), seed=1, quiet=True, epochs=1)
    train_mod.save(tmp_path / "base", model, graph, meta)
    (tmp_path / "tiny.toml").write_text(TINY_SPEC)

    proc = run_edgewave("train", "--data", SPEECH, "--spec", tmp_path / "tiny.toml", "--out", tmp_path / "h",
                        "--init", tmp_path / "base", "--horizon", 12, "--steps-per-epoch", 3, "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    h = summary["training"]["horizon"]
    assert h["samples"] == 12 and h["epochs_run"] >= 1
    assert np.isfinite(h["best_val_loss"]) and np.isfinite(h["val_free_run_loss"])
    assert np.isfinite(summary["prediction_gain_db"])

    tuned, _ = modeldir.load(tmp_path / "h")
    assert tuned.weights.keys() == graph.weights.keys()
    assert any(not np.allclose(tuned.weights[k][0], graph.weights[k][0]) for k in graph.weights)

    proc = run_edgewave("convert", tmp_path / "h", "--data", SPEECH, "--out", tmp_path / "c",
                        "--check-samples", 2000, "--json")
    assert proc.returncode == 0, proc.stderr


def test_horizon_needs_a_regression_head():
    spec = spec_mod.parse({**tomllib.loads(TINY_SPEC), "head": "mulaw"})
    with pytest.raises(UserError, match="regression"):
        train_mod.fit(spec, str(SPEECH), quiet=True, horizon=8)
