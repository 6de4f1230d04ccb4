"""`edgewave anomaly`: the integer score is the device's (NAME_score_step on the host and on Cortex-M4 gives the
same window sums as the numpy engine), labels give AUC, delay and false alarms next to the baselines', and bad
input is one line."""

import json

import numpy as np
import pytest

from edgewave import ctools
from edgewave.anomaly import detect
from edgewave.simulate import Converted, load_data

from conftest import SPEECH, require, run_edgewave


@pytest.mark.parametrize("precision", ["int16x8", "int8"])
def test_device_window_sums_equal_the_engine(convert_tiny, precision):
    conv = Converted.load(str(convert_tiny(precision)))
    x = load_data(conv, str(SPEECH), limit=30000).astype(np.float64)
    window = 97
    energy, want = detect.model_energy(conv, "int", x, window)
    _, c = detect.model_energy(conv, "c", x, window)
    np.testing.assert_array_equal(c["window_sums"], want["window_sums"])
    # The sums are those of the errors the engine's outputs give, summed exactly.
    counts = np.minimum(np.arange(1, len(x) + 1), window)
    np.testing.assert_array_equal(want["window_sums"] / counts, energy)
    require(ctools.have_cortex_m_tools(), f"QEMU runs need the Arm toolchain ({ctools.INSTALL_HINT})")
    _, m4 = detect.model_energy(conv, "qemu-m4", x[:8000], window)
    np.testing.assert_array_equal(m4["window_sums"], want["window_sums"][:8000])
    assert m4["instructions_per_sample"] > 0


def test_window_sums_are_exact_moving_sums():
    err = np.random.default_rng(3).integers(-65535, 65536, 5000)
    got = detect.window_sums(err, 13)
    want = [sum(int(e) ** 2 for e in err[max(0, t - 12):t + 1]) for t in range(len(err))]
    assert got.tolist() == want


def test_anomaly_with_labels_reports_every_detector(convert_tiny, speech_with_anomalies, tmp_path):
    wav, labels_path, labels = speech_with_anomalies
    csv = tmp_path / "scores.csv"
    proc = run_edgewave("anomaly", convert_tiny("int16x8"), "--data", wav, "--labels", labels_path,
                        "--window-ms", "50", "--out", csv, "--json")
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    for m in (r, r["baselines"]["lpc32"], r["baselines"]["zscore"]):
        assert 0 <= m["auc"] <= 1 and m["events"] == 8 and m["false_alarms_per_hour"] >= 0
    assert r["device_alarm_if_window_sum_below"] < r["device_alarm_if_window_sum_above"]
    assert "first 20 %" in r["calibration"]
    rows = np.loadtxt(csv, delimiter=",", skiprows=1)
    assert rows.shape == (len(labels), 5)
    np.testing.assert_array_equal(rows[:, 4], labels)
    assert rows[:, 3].sum() == r["alarms"] + rows[:r["scored_from_sample"], 3].sum()


def test_the_same_through_the_c_backend(convert_tiny, speech_with_anomalies):
    wav, labels_path, _ = speech_with_anomalies
    out = {}
    for backend in ("int", "c"):
        proc = run_edgewave("anomaly", convert_tiny("int8"), "--data", wav, "--labels", labels_path,
                            "--window-ms", "50", "--backend", backend, "--json")
        assert proc.returncode == 0, proc.stderr
        out[backend] = json.loads(proc.stdout)
    for key in ("auc", "detection_delay_ms", "false_alarms_per_hour", "missed_events"):
        assert out["c"][key] == out["int"][key]
    assert out["c"]["device_alarm_if_window_sum_above"] == out["int"]["device_alarm_if_window_sum_above"]
