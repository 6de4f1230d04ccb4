"""Packet-loss concealment: the batched concealer is the device's sample-by-sample loop, bit for bit, on
random architectures and loss patterns; `edgewave conceal` writes the concealed WAV and scores it against the
classic concealers; the emitted C (NAME_conceal / NAME_resume) on the host and on Cortex-M4 plays the same
bytes; bad input is one line."""

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.io import wavfile

from edgewave import ctools
from edgewave.convert import pipeline
from edgewave.convert.pipeline import quantize_input
from edgewave.plc import model as plc_model

from conftest import SPEECH, examples, require, run_edgewave
from strategies import specs
from test_convert import SPEECH_X, random_graph

CASES = {"int8": 0, "int16x8": 0, "float32": 0}


@pytest.mark.parametrize("precision", list(CASES))
@settings(max_examples=examples(5), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(spec_dict=specs(max_dilation=16, max_channels=8, heads=("regression", "mulaw")), seed=st.integers(0, 999),
       offset=st.integers(0, 100_000), frame=st.integers(1, 40), loss=st.floats(0.05, 0.6),
       fade=st.integers(1, 50), loss_seed=st.integers(0, 99))
def test_batched_concealment_is_the_stepwise_loop(precision, spec_dict, seed, offset, frame, loss, fade, loss_seed):
    graph, _ = random_graph(spec_dict, seed)
    x = SPEECH_X[offset:offset + 600]
    _, prog = pipeline.build(graph, x, precision)
    xs = quantize_input(prog, x) if prog.quantized else x.astype(np.float32)
    lost = np.repeat(np.random.default_rng(loss_seed).random(len(x) // frame + 1) < loss, frame)[:len(x)]
    garbage = np.array(xs)
    garbage[lost] = garbage[::-1][lost]  # what lost frames hold must not matter
    fast = plc_model.conceal(prog, garbage, lost, fade)
    want = plc_model.conceal_stepwise(prog, xs, lost, fade)
    if prog.quantized:
        np.testing.assert_array_equal(fast, want)
    else:  # float: the batched matrix products may add in another order
        np.testing.assert_allclose(fast, want, rtol=1e-4, atol=1e-4)
    received = ~plc_model.concealed(lost, fade)
    received[:plc_model.leading_silence(lost)] = False
    np.testing.assert_array_equal(fast[received], xs[received])
    CASES[precision] += 1


def test_fade_weights_and_blend_are_the_documented_integers(convert_tiny):
    _, prog, _ = pipeline.load(convert_tiny("int16x8"))
    rule = plc_model.Rule(prog)
    assert [plc_model.fade_weight(k, 3) for k in range(3)] == [8192, 16384, 24576]
    # Round half up, on offset codes: (w r + (1-w) p + 1/2) in Q15.
    assert rule.blend(np.array([-32768]), np.array([32767]), 16384)[0] == 0
    assert rule.blend(np.array([100]), np.array([-100]), 8192)[0] == -50
    assert rule.blend(np.array([7]), np.array([7]), 12345)[0] == 7


def _conceal(out_dir, tmp_path, name, *extra):
    wav = tmp_path / f"{name}.wav"
    proc = run_edgewave("conceal", out_dir, "--data", SPEECH, "--loss", "0.2", "--frame-ms", "10", "--limit", "24000",
                        "--out", wav, "--json", *extra)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout), wav


def test_conceal_writes_the_signal_and_scores_every_concealer(convert_tiny, tmp_path):
    report, wav = _conceal(convert_tiny("int16x8"), tmp_path, "int")
    rate, pcm = wavfile.read(wav)
    assert rate == 16000 and pcm.dtype == np.int16 and len(pcm) == 24000
    assert report["frame_ms"] == 10 and report["frame_samples"] == 160
    lost = np.array(report["lost_frames"])
    assert 0.1 < len(lost) / 150 < 0.3 and np.all(np.diff(lost) > 0)
    for scores in [report, *report["baselines"].values()]:
        assert {"pesq", "stoi", "snr_lost_db"} <= scores.keys()
        assert 1.0 <= scores["pesq"] <= 4.65 and 0 < scores["stoi"] <= 1
    assert set(report["baselines"]) == {"zero", "repeat", "g711"}
    assert report["baselines"]["zero"]["snr_lost_db"] == 0.0  # the error is the signal itself
    # Received frames are played as received, away from the fades.
    _, ref = wavfile.read(SPEECH)
    mask = np.zeros(24000, bool)
    for f in lost:
        mask[f * 160:(f + 1) * 160 + report["fade_samples"]] = True
    np.testing.assert_array_equal(pcm[~mask], ref[:24000][~mask])
    # The same seed loses the same frames; another seed others.
    again, _ = _conceal(convert_tiny("int16x8"), tmp_path, "again")
    other, _ = _conceal(convert_tiny("int16x8"), tmp_path, "other", "--seed", "5")
    assert again["lost_frames"] == report["lost_frames"] != other["lost_frames"]


def test_bursty_loss_makes_longer_gaps(convert_tiny, tmp_path):
    report, _ = _conceal(convert_tiny("int16x8"), tmp_path, "burst", "--burst", "4")
    lost = np.zeros(150, bool)
    lost[report["lost_frames"]] = True
    runs = np.diff(np.flatnonzero(np.diff(np.concatenate([[0], lost.astype(int), [0]]))))[::2]
    assert runs.mean() > 2


@pytest.mark.parametrize("precision", ["int16x8", "int8"])
def test_c_and_cortex_m4_conceal_the_same_bytes(convert_tiny, tmp_path, precision):
    out = convert_tiny(precision)
    want, want_wav = _conceal(out, tmp_path, f"int-{precision}")
    c, c_wav = _conceal(out, tmp_path, f"c-{precision}", "--backend", "c")
    assert c_wav.read_bytes() == want_wav.read_bytes()
    assert c["lost_frames"] == want["lost_frames"] and c["concealed_samples"] > 0
    require(ctools.have_cortex_m_tools(), f"QEMU runs need the Arm toolchain ({ctools.INSTALL_HINT})")
    m4, m4_wav = _conceal(out, tmp_path, f"m4-{precision}", "--backend", "qemu-m4")
    assert m4_wav.read_bytes() == want_wav.read_bytes()
    assert m4["concealed_samples"] == c["concealed_samples"] and m4["instructions_per_concealed_sample"] > 0


def test_conceal_and_score_run_clean_under_sanitizers(convert_tiny, tmp_path):
    """NAME_conceal, NAME_resume and NAME_score_step under AddressSanitizer + UndefinedBehaviorSanitizer, on
    gaps, fades cut short by the next gap, and a window longer than the runner's chunks."""
    from edgewave.anomaly import detect
    from edgewave.emit.pipeline import c_sources
    from edgewave.simulate import Converted, load_data

    conv = Converted.load(str(convert_tiny("int16x8")))
    x = load_data(conv, str(SPEECH), limit=12000)
    codes = quantize_input(conv.prog, x)
    lost = np.repeat(np.random.default_rng(7).random(12000 // 50 + 1) < 0.3, 50)[:12000]
    lost[:30] = True  # lost before anything was received: silence, as `conceal` plays it
    received = codes.copy()
    received[:plc_model.leading_silence(lost)] = plc_model.Rule(conv.prog).silence
    exe = ctools.build_host(*c_sources(conv.c_dir(), "model"), tmp_path, sanitize=True)
    script = ctools.plc_script(received, plc_model.plan(lost, 70), 70)
    np.testing.assert_array_equal(ctools.conceal_host(exe, script, len(codes), np.int16, {}),
                                  plc_model.conceal(conv.prog, codes, lost, 70))
    _, want = detect.model_energy(conv, "int", x.astype(np.float64), 300)
    np.testing.assert_array_equal(ctools.score_host(exe, codes, 300, {}), want["window_sums"])
