"""The model-independent half of `edgewave anomaly`: scoring, calibration, metrics, injection, baselines."""

import importlib.util
import itertools

import numpy as np
import pytest
from scipy.signal import lfilter

from edgewave.anomaly import baselines, evaluate, inject, realdata
from edgewave.anomaly.score import Calibration, calibrate, causal_moving_mean, score, smoothed_energy
from edgewave.errors import UserError


def naive_smoothed_energy(err, window):
    return np.array([np.mean(err[max(0, t - window + 1):t + 1] ** 2) for t in range(len(err))])


def ar2(n, seed):
    """A resonant AR(2) process (poles at radius 0.89): predictable, but not trivially."""
    return lfilter([1.0], [1.0, -1.6, 0.8], np.random.default_rng(seed).normal(size=n))


def one_line_user_error(call, *fragments):
    with pytest.raises(UserError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    return message


# ---------------------------------------------------------------- smoothed energy

@pytest.mark.parametrize("n", [0, 1, 5, 63, 64, 65, 1000])
@pytest.mark.parametrize("window", [1, 2, 3, 7, 64, 500])
def test_smoothed_energy_matches_naive_loop(n, window):
    err = np.random.default_rng(n * 1000 + window).normal(size=n)
    got = smoothed_energy(err, window)
    assert got.dtype == np.float64 and got.shape == (n,)
    np.testing.assert_allclose(got, naive_smoothed_energy(err, window), rtol=1e-12, atol=0)


def test_smoothed_energy_accepts_float32_and_ints():
    err = np.arange(-5, 6, dtype=np.int16)
    np.testing.assert_allclose(smoothed_energy(err, 3), naive_smoothed_energy(err.astype(float), 3))
    np.testing.assert_allclose(smoothed_energy(err.astype(np.float32), 4),
                               naive_smoothed_energy(err.astype(float), 4))


def _spot_check(err, windows, indices):
    for window in windows:
        got = smoothed_energy(err, window)[indices]
        want = np.array([np.mean(err[max(0, t - window + 1):t + 1] ** 2) for t in indices])
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=0, err_msg=f"window {window}")


def test_smoothed_energy_does_not_drift_on_a_long_signal_with_dc_offset():
    # A whole-signal cumulative sum is off by ~1e-10 relative here: its differences cancel digits.
    n = 10 ** 6
    rng = np.random.default_rng(1)
    err = 1e4 + rng.normal(size=n)
    indices = np.concatenate((rng.integers(0, n, 300), np.arange(n - 30, n)))
    _spot_check(err, (1, 10, 1000), indices)


def test_smoothed_energy_recovers_after_a_loud_stretch():
    # Loud (DC 1e3) then near-silent: any running/cumulative sum keeps the loud part's rounding
    # error, which swamps an energy of 1e-6. Windows are exact whatever came before them.
    rng = np.random.default_rng(2)
    err = np.concatenate((1e3 + rng.normal(size=900_000), 1e-3 * rng.normal(size=100_000)))
    indices = np.concatenate((np.arange(899_990, 900_100), rng.integers(900_000, 10 ** 6, 200)))
    _spot_check(err, (1, 10, 1000), indices)


def test_causal_moving_mean_of_signed_values():
    values = np.random.default_rng(3).normal(size=777) + 50.0
    for window in (1, 5, 100):
        want = [values[max(0, t - window + 1):t + 1].mean() for t in range(len(values))]
        np.testing.assert_allclose(causal_moving_mean(values, window), want, rtol=1e-13)


def test_smoothed_energy_rejects_bad_input():
    one_line_user_error(lambda: smoothed_energy(np.array([1.0, np.nan, 2.0]), 2), "index 1")
    one_line_user_error(lambda: smoothed_energy(np.ones(4), 0), "window")
    one_line_user_error(lambda: smoothed_energy(np.ones(4), 2.5), "window")


# ---------------------------------------------------------------- calibration

@pytest.fixture(scope="module")
def ar2_predictor():
    return baselines.fit_lpc(ar2(100_000, seed=0), order=8)


@pytest.mark.parametrize("false_alarm_rate", [0.01, 0.05])
@pytest.mark.parametrize("seed", [1, 2])
def test_calibration_gives_the_target_false_alarm_rate_on_fresh_normal_data(ar2_predictor, false_alarm_rate,
                                                                            seed):
    window = 32
    normal = baselines.lpc_residual(ar2(200_000, seed), ar2_predictor)[8:]
    cal = calibrate(normal, window, false_alarm_rate, "AR(2) calibration run")
    assert isinstance(cal, Calibration) and cal.source == "AR(2) calibration run" and cal.window == window
    # On its own data the threshold hits the rate exactly (up to quantile interpolation).
    own = score(normal, cal)[window - 1:]
    assert abs(np.mean(own > cal.threshold) - false_alarm_rate) < 1e-4
    # Score 0 is the typical (median) normal energy, and the score is two-sided around it.
    energy = smoothed_energy(normal, window)[window - 1:]
    assert np.median(energy) == pytest.approx(cal.level)
    assert np.mean(energy < cal.energy_bounds()[0]) > 0 and np.mean(energy > cal.energy_bounds()[1]) > 0
    fresh = baselines.lpc_residual(ar2(200_000, seed + 100), ar2_predictor)[8:]
    observed = np.mean(score(fresh, cal)[window - 1:] > cal.threshold)
    # Smoothed scores are correlated over ~window samples, so the sampling spread is wide-ish.
    assert 0.6 * false_alarm_rate < observed < 1.5 * false_alarm_rate


def test_calibration_is_scale_free():
    err = np.random.default_rng(4).normal(size=5000)
    a = calibrate(err, 16, 0.01, "x")
    b = calibrate(1000.0 * err, 16, 0.01, "x")
    assert b.level == pytest.approx(1e6 * a.level) and b.threshold == pytest.approx(a.threshold)
    np.testing.assert_allclose(score(1000.0 * err, b), score(err, a), rtol=1e-9, atol=1e-9)


def test_calibration_errors():
    err = np.random.default_rng(5).normal(size=100)
    for bad_rate in (0.0, -0.1, 0.6, float("nan")):
        one_line_user_error(lambda: calibrate(err, 8, bad_rate, "x"), "false-alarm rate")
    calibrate(err, 8, 0.5, "x")  # the upper end is allowed
    one_line_user_error(lambda: calibrate(err, 0, 0.01, "x"), "window")
    one_line_user_error(lambda: calibrate(err[:7], 8, 0.01, "val split"), "7 samples", "val split", "window of 8")
    calibrate(err[:8], 8, 0.01, "x")  # exactly one full window is enough
    one_line_user_error(lambda: calibrate(np.zeros(50), 8, 0.01, "x"), "zero")
    one_line_user_error(lambda: calibrate(np.array([0.0, np.inf] * 20), 8, 0.01, "x"), "NaN/Inf")


# ---------------------------------------------------------------- metrics

def brute_force_auc(score_, labels):
    pos, neg = score_[labels == 1], score_[labels == 0]
    wins = sum((p > q) + 0.5 * (p == q) for p, q in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


@pytest.mark.parametrize("seed", range(8))
def test_auc_matches_brute_force_pair_count_with_ties(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 60))
    score_ = rng.integers(0, 5, n).astype(float)  # few distinct values: plenty of ties
    labels = rng.integers(0, 2, n)
    labels[:2] = [0, 1]
    assert evaluate.roc_auc(score_, labels) == pytest.approx(brute_force_auc(score_, labels), abs=1e-12)


def test_auc_obvious_cases():
    labels = np.array([0, 0, 0, 1, 1])
    assert evaluate.roc_auc(np.array([1, 2, 3, 4, 5.0]), labels) == 1.0
    assert evaluate.roc_auc(np.array([5, 4, 3, 2, 1.0]), labels) == 0.0
    assert evaluate.roc_auc(np.full(5, 7.0), labels) == 0.5
    assert np.isnan(evaluate.roc_auc(np.arange(5.0), np.zeros(5)))
    assert np.isnan(evaluate.roc_auc(np.arange(5.0), np.ones(5)))
    one_line_user_error(lambda: evaluate.roc_auc(np.arange(5.0), np.arange(4) % 2), "5 samples", "4")
    one_line_user_error(lambda: evaluate.roc_auc(np.arange(3.0), np.array([0, 2, 1])), "0 (normal) or 1")


def test_events_are_half_open_runs_of_ones():
    assert evaluate.events(np.array([1, 1, 0, 0, 1, 0, 1, 1, 1])) == [(0, 2), (4, 5), (6, 9)]
    assert evaluate.events(np.zeros(4)) == []
    assert evaluate.events(np.array([], dtype=int)) == []


def hand_made_case():
    """1000 Hz (1 sample = 1 ms). Events [10,20), [30,40), [50,60)."""
    labels = np.zeros(100, dtype=int)
    labels[10:20] = labels[30:40] = labels[50:60] = 1
    flags = np.zeros(100, dtype=bool)
    flags[13:16] = True   # event 1 found after 3 ms
    flags[28:32] = True   # starts 2 samples early: a false alarm, though event 2 is "found" at 0 ms
    flags[70:72] = True   # false alarm
    flags[58:65] = True   # event 3 found after 8 ms; the tail past 60 is not a new alarm
    return flags, labels


def test_detection_delay_on_hand_made_flags():
    flags, labels = hand_made_case()
    delays = evaluate.detection_delay_ms(flags, labels, rate=1000.0)
    assert delays == {"mean": pytest.approx(11 / 3), "median": 3.0, "max": 8.0, "missed": 0, "events": 3}
    flags[58:65] = False
    delays = evaluate.detection_delay_ms(flags, labels, rate=500.0)  # 2 ms per sample
    assert delays == {"mean": 3.0, "median": 3.0, "max": 6.0, "missed": 1, "events": 3}
    none = evaluate.detection_delay_ms(np.zeros(100, bool), labels, rate=1000.0)
    assert np.isnan(none["mean"]) and np.isnan(none["max"]) and none["missed"] == 3


def test_false_alarms_per_hour_on_hand_made_flags():
    flags, labels = hand_made_case()
    # Onsets at 13 (inside), 28 (outside), 58 (inside), 70 (outside): 2 false alarms in 70 normal
    # samples; at 1000 Hz that is 70 ms of normal signal.
    hours = 70 / 1000 / 3600
    assert evaluate.false_alarms_per_hour(flags, labels, 1000.0) == pytest.approx(2 / hours)
    flags[0] = True  # an alarm already on at the first sample is an onset too
    assert evaluate.false_alarms_per_hour(flags, labels, 1000.0) == pytest.approx(3 / hours)
    assert np.isnan(evaluate.false_alarms_per_hour(flags, np.ones(100, int), 1000.0))
    np.testing.assert_array_equal(evaluate.alarm_onsets(flags), [0, 13, 28, 58, 70])


def test_evaluate_combines_the_metrics_and_skips_the_warm_up():
    flags, labels = hand_made_case()
    score_ = np.where(flags, 2.0, 0.0)
    score_[:5] = 10.0  # garbage before the receptive field is filled
    result = evaluate.evaluate(score_, 1.0, labels, rate=1000.0, skip=5)
    assert set(result) == {"auc", "detection_delay_ms", "delays", "false_alarms_per_hour", "flagged_fraction"}
    assert result["delays"]["events"] == 3 and result["detection_delay_ms"] == pytest.approx(11 / 3)
    assert result["false_alarms_per_hour"] == pytest.approx(2 / (65 / 1000 / 3600))
    assert result["flagged_fraction"] == pytest.approx(flags[5:].mean())
    assert result["auc"] == pytest.approx(evaluate.roc_auc(score_[5:], labels[5:]))
    unskipped = evaluate.evaluate(score_, 1.0, labels, rate=1000.0)
    assert unskipped["false_alarms_per_hour"] > result["false_alarms_per_hour"]
    missed_all = evaluate.evaluate(np.zeros(100), 1.0, labels, rate=1000.0)
    assert np.isnan(missed_all["detection_delay_ms"]) and missed_all["delays"]["missed"] == 3


# ---------------------------------------------------------------- injection

def test_inject_changes_exactly_the_labelled_segments():
    rate = 200.0
    x = np.random.default_rng(6).normal(size=40_000) + 3.0
    x_anom, labels, segments = inject.inject_segments(x, rate, duration_s=0.5, seed=11, start_after=5000)
    length = 100
    assert len(segments) == 4 * inject.MAX_AUTO_PER_KIND
    assert sorted(s.kind for s in segments) == sorted(inject.KINDS * inject.MAX_AUTO_PER_KIND)
    # Labels are exactly the union of the segments, which are separate and after start_after.
    expected = np.zeros(x.size, dtype=np.int8)
    for s in segments:
        assert s.end - s.start == length and s.start >= 5000 + length
        expected[s.start:s.end] = 1
    np.testing.assert_array_equal(labels, expected)
    assert evaluate.events(labels) == sorted((s.start, s.end) for s in segments)
    starts = sorted(s.start for s in segments)
    assert min(np.diff(starts)) >= 2 * length
    # Everything outside is bit-identical; the original is untouched.
    normal = labels == 0
    assert x_anom.dtype == x.dtype and x_anom[normal].tobytes() == x[normal].tobytes()
    noise_rms = np.std(x)
    for s in segments:
        seg, orig = x_anom[s.start:s.end], x[s.start:s.end]
        if s.kind == "flatline":
            assert np.all(seg == orig[0])
        elif s.kind == "gain_jump":
            np.testing.assert_array_equal(seg, orig * inject.GAIN)
        elif s.kind == "reversed":
            np.testing.assert_array_equal(seg, orig[::-1])
        else:
            assert 0.7 * noise_rms < np.std(seg - orig) < 1.3 * noise_rms
        assert not np.array_equal(seg, orig)


def test_inject_is_deterministic_per_seed_and_keeps_float32():
    x = np.random.default_rng(7).normal(size=20_000).astype(np.float32)
    a, la = inject.inject(x, 100.0, seed=3)
    b, lb = inject.inject(x, 100.0, seed=3)
    c, lc = inject.inject(x, 100.0, seed=4)
    assert a.tobytes() == b.tobytes() and np.array_equal(la, lb)
    assert not np.array_equal(la, lc)
    assert a.dtype == np.float32 and la.dtype == np.int8
    ints, _ = inject.inject(np.arange(20_000, dtype=np.int16), 100.0, kinds=("gain_jump",))
    assert ints.dtype == np.float64 and ints.max() > np.iinfo(np.int16).max  # not clipped


def test_inject_layout_limits():
    x = np.zeros(1000)
    # 1000 samples hold one 100-sample anomaly of each of 4 kinds at most with per_kind=1 (slot 2x).
    assert len(inject.plan_segments(len(x), 100.0, per_kind=1)) == 4
    one_line_user_error(lambda: inject.plan_segments(len(x), 100.0, per_kind=2), "per_kind")
    one_line_user_error(lambda: inject.plan_segments(len(x), 100.0, start_after=500), "start_after")
    one_line_user_error(lambda: inject.plan_segments(len(x), 100.0, kinds=("spike",)), "spike", "flatline")
    one_line_user_error(lambda: inject.plan_segments(len(x), 100.0, duration_s=0.01), "duration")


# ---------------------------------------------------------------- label files

def test_load_labels(tmp_path):
    good = tmp_path / "good.txt"
    good.write_text("0\n1\n 1 \n0\n")
    np.testing.assert_array_equal(inject.load_labels(good, 4), [0, 1, 1, 0])
    one_line_user_error(lambda: inject.load_labels(good, 5), str(good), "4 label lines", "5 samples")
    bad = tmp_path / "bad.txt"
    bad.write_text("0\n1\n0.5\n0\n")
    one_line_user_error(lambda: inject.load_labels(bad, 4), str(bad), "line 3", "'0.5'")
    blank = tmp_path / "blank.txt"
    blank.write_text("0\n\n1\n")
    one_line_user_error(lambda: inject.load_labels(blank, 3), "line 2")
    one_line_user_error(lambda: inject.load_labels(tmp_path / "missing.txt", 3), "missing.txt")


# ---------------------------------------------------------------- baselines

def test_lpc_residual_is_aligned_and_zero_before_the_order():
    x = ar2(5000, seed=8)
    coeffs = baselines.fit_lpc(x, order=4)
    err = baselines.lpc_residual(x, coeffs)
    assert err.shape == x.shape and np.all(err[:4] == 0)
    t = 100
    assert err[t] == pytest.approx(x[t] - coeffs @ x[t - 1:t - 5:-1])
    assert np.std(err[4:]) == pytest.approx(1.0, abs=0.05)  # the innovation: it really predicts
    one_line_user_error(lambda: baselines.fit_lpc(x[:63], order=32), "64", "63")


def test_moving_zscore_matches_naive_and_is_finite_on_constant_stretches():
    x = np.random.default_rng(9).normal(size=300) * 5 + 1000.0
    window = 20
    z = baselines.moving_zscore(x, window)
    for t in (5, 19, 20, 21, 150, 299):
        past = x[max(0, t - window):t]
        assert z[t] == pytest.approx(abs(x[t] - past.mean()) / past.std(), rel=1e-9)
    assert z[0] == 0.0
    flat = np.concatenate((np.full(100, 3.0), [4.0], np.full(100, 3.0)))
    zf = baselines.moving_zscore(flat, 10)
    assert np.all(np.isfinite(zf)) and zf[100] > 10 and np.all(zf[:100] == 0)
    assert np.all(baselines.moving_zscore(np.zeros(50), 10) == 0)


def _auc_per_kind(score_, labels, segments, skip):
    """AUC of each kind's samples against the normal samples (other kinds left out)."""
    result = {}
    for kind in sorted({s.kind for s in segments}):
        keep = labels == 0
        for s in segments:
            keep[s.start:s.end] |= s.kind == kind
        keep[:skip] = False
        result[kind] = evaluate.roc_auc(score_[keep], labels[keep])
    return result


def test_baselines_detect_a_noise_burst_in_an_ar2_process(ar2_predictor):
    rate, normal_len = 1000.0, 10_000
    x = ar2(60_000, seed=7)
    x_anom, labels = inject.inject(x, rate, kinds=("noise_burst",), duration_s=0.5, seed=3,
                                   start_after=normal_len)
    lpc_err = baselines.lpc_residual(x_anom, ar2_predictor)
    cal = calibrate(lpc_err[8:normal_len], 32, 0.01, "first 10 s")
    lpc = evaluate.evaluate(score(lpc_err, cal), cal.threshold, labels, rate, skip=normal_len)
    assert lpc["auc"] > 0.97 and lpc["delays"]["missed"] == 0 and lpc["detection_delay_ms"] < 50
    # The z-score needs a window longer than the burst, or it adapts to the noise within it.
    z = baselines.moving_zscore(x_anom, 2000)
    cal_z = calibrate(z[:normal_len], 128, 0.01, "first 10 s")
    zscore = evaluate.evaluate(score(z, cal_z), cal_z.threshold, labels, rate, skip=normal_len)
    assert zscore["auc"] > 0.75 and zscore["delays"]["missed"] <= 1
    print(f"\nAR(2) noise burst: lpc8 AUC {lpc['auc']:.3f}, zscore AUC {zscore['auc']:.3f}")


# ---------------------------------------------------------------- a real non-speech signal

HEARTPY = importlib.util.find_spec("heartpy") is not None


def test_heartpy_missing_says_how_to_install(monkeypatch):
    monkeypatch.setattr(realdata.importlib.util, "find_spec", lambda name: None)
    one_line_user_error(realdata.heartpy_ppg, "pip install heartpy")


@pytest.mark.skipif(not HEARTPY, reason="the heartpy package (real PPG recordings) is not installed")
def test_baselines_on_real_ppg():
    x, rate = realdata.heartpy_ppg("data3.csv")
    # ~100 Hz over ~11.4 min (timestamps tick at ~15.6 ms, so the rate comes from the whole span).
    assert len(x) == 68_476 and 99.0 < rate < 102.0
    half = len(x) // 2
    x_anom, labels, segments = inject.inject_segments(x, rate, duration_s=1.0, seed=0, start_after=half)
    window = int(round(0.5 * rate))
    coeffs = baselines.fit_lpc(x[:half], order=32)
    lpc_err = baselines.lpc_residual(x_anom, coeffs)
    cal = calibrate(lpc_err[32:half], window, 0.01, "first half of heartpy data3.csv")
    lpc_score = score(lpc_err, cal)
    lpc = evaluate.evaluate(lpc_score, cal.threshold, labels, rate, skip=half)
    z = baselines.moving_zscore(x_anom, int(round(2.0 * rate)))
    cal_z = calibrate(z[:half], window, 0.01, "first half of heartpy data3.csv")
    z_score = score(z, cal_z)
    zscore = evaluate.evaluate(z_score, cal_z.threshold, labels, rate, skip=half)
    lpc_kinds = _auc_per_kind(lpc_score, labels, segments, half)
    z_kinds = _auc_per_kind(z_score, labels, segments, half)
    print(f"\nheartpy data3.csv at {rate:.2f} Hz, {len(segments)} anomalies of 1 s in the second half")
    for name, result, kinds in (("lpc32", lpc, lpc_kinds), ("zscore", zscore, z_kinds)):
        per_kind = ", ".join(f"{k} {v:.3f}" for k, v in kinds.items())
        print(f"{name:7s} AUC {result['auc']:.3f} ({per_kind}); delay {result['detection_delay_ms']:.0f} ms, "
              f"missed {result['delays']['missed']}/{result['delays']['events']}, "
              f"{result['false_alarms_per_hour']:.0f} false alarms/h")
    assert lpc["auc"] > 0.5 and zscore["auc"] > 0.5
    assert lpc_kinds["noise_burst"] > 0.9 and z_kinds["noise_burst"] > 0.7
