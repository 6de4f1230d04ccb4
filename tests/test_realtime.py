"""`edgewave info --target`: real-time sizing from the measured Cortex-M cost model."""
import json

import numpy as np
import pytest

from conftest import assert_one_line_error, run_edgewave
from edgewave import realtime
from edgewave import spec as spec_mod
from edgewave.convert import lowering


def test_fit_recovers_non_negative_per_op_costs():
    rng = np.random.default_rng(5)
    truth = {k: (0.0 if i % 4 == 3 else float(rng.uniform(0.2, 40))) for i, k in enumerate(realtime.FEATURES)}
    rows = []
    for _ in range(30):
        count = {k: int(rng.integers(0, 5000)) for k in realtime.FEATURES}
        count["step"] = 1
        rows.append((count, realtime.predict(count, truth)))
    got = realtime.fit(rows)
    assert got == pytest.approx(truth, abs=1e-6) and min(got.values()) >= 0


def test_features_count_what_the_lowered_program_computes():
    graph = spec_mod.to_graph(spec_mod.default())
    count = realtime.features(graph)
    prog = lowering.lower_structure(graph)
    fcs = [op for op in prog.ops if op.kind == "fc"]
    assert count["mac"] == lowering.runtime_macs(graph) == sum(op.weights.size for op in fcs)
    assert count["fc_call"] == len(fcs) and count["fc_output"] == sum(op.weights.shape[0] for op in fcs)
    assert count["lut_value"] == 8 * 12  # 4 gated units, a tanh and a sigmoid of 12 channels each
    assert count["mul_value"] == 4 * 12 and count["add_value"] == 3 * 12  # gates; residual sums
    assert count["step"] == 1 and count["pool_tap"] == 0


def test_estimate_scales_with_clock_and_rate():
    graph = spec_mod.to_graph(spec_mod.default())
    costs = {"costs": {"cortex-m4": {"int8": {"mac": 1.0, "lut_value": 10.0}}}}
    count = realtime.features(graph)
    want = count["mac"] + 10 * count["lut_value"]
    fast = realtime.estimate(graph, "cortex-m4", "int8", want * 16000 * 1.01, 16000, costs)
    slow = realtime.estimate(graph, "cortex-m4", "int8", want * 16000 * 0.99, 16000, costs)
    assert fast["instructions_per_sample"] == round(want)
    assert fast["realtime"] and not slow["realtime"]
    assert fast["max_rate_hz"] >= 16000 > slow["max_rate_hz"]
    with pytest.raises(Exception, match="no measured costs"):
        realtime.estimate(graph, "cortex-m7", "int8", 1e8, 16000, costs)


def test_packaged_cost_model_covers_every_target_with_its_held_out_error():
    doc = realtime.load_costs()
    assert doc["features"] == list(realtime.FEATURES)
    for target in realtime.TARGETS:
        for precision in realtime.PRECISIONS:
            c = doc["costs"][target][precision]
            assert set(c) == set(realtime.FEATURES) and min(c.values()) >= 0 and c["mac"] > 0
            assert doc["held_out_max_error_pct"][target][precision] >= 0


def test_info_target_cli(tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text(spec_mod.default_text())
    p = run_edgewave("info", spec, "--target", "cortex-m4", "--clock-hz", "168e6", "--rate", "16000", "--json")
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)["realtime"]
    assert r["budget_instructions_per_sample"] == 10500 and r["realtime"] == (r["instructions_per_sample"] <= 10500)
    text = run_edgewave("info", spec, "--target", "cortex-m0plus", "--clock-hz", "16e6", "--rate", "16000")
    assert "real time on cortex-m0plus at 16 MHz" in text.stdout and ": NO" in text.stdout
    assert_one_line_error(run_edgewave("info", spec, "--target", "cortex-m4", "--rate", "8000"), "--clock-hz")
    assert_one_line_error(run_edgewave("info", spec, "--target", "cortex-m4", "--clock-hz", "1e8"), "--rate")
    assert_one_line_error(run_edgewave("info", spec, "--clock-hz", "1e8"), "add --target")
