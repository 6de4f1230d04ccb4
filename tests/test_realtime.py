"""`edgewave info --target`: real-time sizing from the measured Cortex-M cost model."""
import json

import numpy as np
import pytest

from conftest import assert_one_line_error, run_edgewave
from edgewave import realtime
from edgewave import spec as spec_mod


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


def test_features_count_the_calls_the_emitter_generates():
    graph = spec_mod.to_graph(spec_mod.default())
    for precision in realtime.PRECISIONS:
        prog = realtime.sizing_program(graph, precision)
        count = realtime.features(prog)
        fcs = [op for op in prog.ops if op.kind == "fc"]
        # every MAC is in a prepared kernel's input pairs, rows padded to blocks of 4
        assert count["mac_pair"] >= sum(op.weights.size for op in fcs) / 2
        assert count["gate_out"] == 4 * 12  # 4 gated units of 12 channels, each one fused call
        assert count["addfc_out"] + count["addfc_any_out"] == 3 * 12  # 3 residual sums, fused with their FC
        assert count["fc_call"] == 1 + 4 + 3 + 2  # the input lift, gates, residual FCs, the skip and output layers
        assert count["step"] == 1 and count["pool_tap"] == 0
    # deterministic: the same spec is sized the same every time
    assert realtime.features(realtime.sizing_program(graph, "int8")) == count


def test_sizing_program_uses_trained_weights_when_there_are_some():
    graph = spec_mod.to_graph(spec_mod.default())
    spec_prog = realtime.sizing_program(graph, "int16x8")
    assert not graph.weights  # the spec's graph is left as it was
    by = graph.by_name
    rng = np.random.default_rng(3)
    graph.weights = {n.name: (rng.normal(0, 0.05, (n.kernel, by[n.inputs[0]].channels, n.channels)).astype(np.float32),
                              np.zeros(n.channels, np.float32) if n.use_bias else None)
                     for n in graph.nodes if n.op == "conv"}
    own = realtime.sizing_program(graph, "int16x8")
    assert [op.kind for op in own.ops] == [op.kind for op in spec_prog.ops]
    assert not all(np.array_equal(a.weights, b.weights) for a, b in zip(own.ops, spec_prog.ops) if a.kind == "fc")


def test_estimate_scales_with_clock_and_rate():
    graph = spec_mod.to_graph(spec_mod.default())
    costs = {"costs": {"cortex-m4": {"int8": {"mac_pair": 2.0, "gate_out": 10.0}}}}
    count = realtime.features(realtime.sizing_program(graph, "int8"))
    want = 2 * count["mac_pair"] + 10 * count["gate_out"]
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
            assert set(c) == set(realtime.FEATURES) and min(c.values()) >= 0 and c["mac_pair"] > 0
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
    rv = json.loads(run_edgewave("info", spec, "--target", "riscv32", "--clock-hz", "160e6", "--rate", "8000",
                                 "--precision", "int8", "--json").stdout)["realtime"]
    assert rv["target"] == "riscv32" and rv["instructions_per_sample"] > r["instructions_per_sample"]
    assert_one_line_error(run_edgewave("info", spec, "--target", "cortex-m4", "--rate", "8000"), "--clock-hz")
    assert_one_line_error(run_edgewave("info", spec, "--target", "cortex-m4", "--clock-hz", "1e8"), "--rate")
    assert_one_line_error(run_edgewave("info", spec, "--clock-hz", "1e8"), "add --target")
