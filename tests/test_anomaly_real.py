"""Anomaly detection on a real signal that is not speech: heartpy's PPG recording (data3.csv, about 11 minutes
at 100 Hz). The default spec trains briefly on its first 40 %, calibrates on the next 10 %, and scores the last
half with flatlines, noise bursts, gain jumps and reversed segments injected here; the emitted C on the host gives
the same scores as the numpy engine. `make bench` (table 9) runs the same with a full training."""

import json

import numpy as np
import pytest

from conftest import IN_CI, run_edgewave

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ppg(tmp_path_factory):
    from edgewave import signals
    from edgewave.anomaly import inject, realdata
    from edgewave.errors import UserError

    try:
        x, rate = realdata.heartpy_ppg("data3.csv")
    except UserError as e:
        if IN_CI:
            raise
        pytest.skip(str(e))
    d = tmp_path_factory.mktemp("ppg")
    x = x - np.median(x)
    x = 0.5 * x / np.max(np.abs(x))
    n = len(x)
    test, labels, segments = inject.inject_segments(x[n // 2:], rate, seed=0)
    for name, v in (("train", x[:int(0.4 * n)]), ("calibrate", x[int(0.4 * n):n // 2]), ("test", test)):
        signals.write_wav(d / f"{name}.wav", np.clip(v, -1, 1), int(round(rate)))
    np.savetxt(d / "labels.txt", labels, fmt="%d")
    out = d / "model"
    proc = run_edgewave("train", "--data", d / "train.wav", "--out", out, "--seed", "0", "--max-minutes", "1.5",
                        timeout=900)
    assert proc.returncode == 0, proc.stderr
    proc = run_edgewave("convert", out, "--data", d / "train.wav", "--out", d / "int16x8", "--check-samples", "2000")
    assert proc.returncode == 0, proc.stderr
    return d, segments


def test_the_model_finds_every_kind_of_anomaly_on_real_ppg(ppg):
    d, segments = ppg
    runs = {}
    for backend in ("int", "c"):
        proc = run_edgewave("anomaly", d / "int16x8", "--data", d / "test.wav", "--labels", d / "labels.txt",
                            "--calibrate", d / "calibrate.wav", "--backend", backend, "--json")
        assert proc.returncode == 0, proc.stderr
        runs[backend] = json.loads(proc.stdout)
    r = runs["int"]
    for key in ("auc", "detection_delay_ms", "false_alarms_per_hour", "missed_events", "alarms"):
        assert runs["c"][key] == r[key], key
    print(f"\nreal PPG, {r['events']} events of {sorted({s.kind for s in segments})}: AUC edgewave {r['auc']:.3f}, "
          f"LPC-32 {r['baselines']['lpc32']['auc']:.3f}, z-score {r['baselines']['zscore']['auc']:.3f}")
    assert r["events"] == len(segments) >= 8
    # After 1.5 minutes of training the model is not the bench's, so the bound is below the bench's goal (0.9).
    assert r["auc"] >= 0.85
    assert r["auc"] > r["baselines"]["zscore"]["auc"]
    assert r["missed_events"] < r["events"] / 2
