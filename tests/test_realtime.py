"""`edgewave info --target`: real-time sizing from the measured Cortex-M cost model."""
import json

import numpy as np
import pytest

from conftest import assert_one_line_error, run_edgewave
from edgewave import realtime
from edgewave import spec as spec_mod
from edgewave.convert import program


def test_fit_reproduces_its_measurements():
    rng = np.random.default_rng(5)
    per_mac, per_value = rng.uniform(0.3, 3), rng.uniform(5, 60)
    pts = [(m, v, per_mac * m + per_value * v) for m, v in ((5000, 400), (20000, 800), (9000, 700))]
    got = realtime.fit(pts)
    assert got["per_mac"] == pytest.approx(per_mac) and got["per_value"] == pytest.approx(per_value)
    assert realtime.fit(pts[:1]) == {"per_mac": pytest.approx(pts[0][2] / 5000), "per_value": 0.0}


def test_estimate_scales_with_clock_and_rate():
    graph = spec_mod.to_graph(spec_mod.default())
    costs = {"costs": {"cortex-m4": {"int8": {"per_mac": 1.0, "per_value": 10.0}}}}
    want = program.runtime_macs(graph) + 10 * graph.values_per_sample()  # the MACs the lowered program runs
    fast = realtime.estimate(graph, "cortex-m4", "int8", want * 16000 * 1.01, 16000, costs)
    slow = realtime.estimate(graph, "cortex-m4", "int8", want * 16000 * 0.99, 16000, costs)
    assert fast["instructions_per_sample"] == round(want)
    assert fast["realtime"] and not slow["realtime"]
    assert fast["max_rate_hz"] >= 16000 > slow["max_rate_hz"]
    with pytest.raises(Exception, match="no measured costs"):
        realtime.estimate(graph, "cortex-m7", "int8", 1e8, 16000, costs)


def test_packaged_cost_model_covers_every_target():
    costs = realtime.load_costs()["costs"]
    for target in realtime.TARGETS:
        for precision in realtime.PRECISIONS:
            c = costs[target][precision]
            assert c["per_mac"] > 0 and c["per_value"] >= 0


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
