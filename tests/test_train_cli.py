"""Training, metadata, determinism, distributed training and the CLI's handling of bad input."""

import json
import wave

import numpy as np
import pytest

from edgewave import lpc, signals
from edgewave import spec as spec_mod
from edgewave import train as train_mod
from edgewave.metrics import mulaw_decode, mulaw_encode, prediction_gain_db

from conftest import SPEECH, TINY_SPEC, assert_one_line_error, run_edgewave


def test_lpc_recovers_an_autoregressive_process():
    rng = np.random.default_rng(0)
    a = np.array([1.6, -0.8])
    x = np.zeros(20000)
    e = rng.normal(size=len(x))
    for t in range(2, len(x)):
        x[t] = a[0] * x[t - 1] + a[1] * x[t - 2] + e[t]
    coeffs = lpc.fit([x[:10000], x[10000:]], order=4)
    np.testing.assert_allclose(coeffs, [1.6, -0.8, 0, 0], atol=0.03)
    gain = prediction_gain_db(x[4:], lpc.predict(x, coeffs))
    assert gain == pytest.approx(10 * np.log10(np.var(x) / 1.0), abs=0.2)


def test_mulaw_round_trip_is_within_one_level():
    x = np.linspace(-1, 1, 1001)
    y = mulaw_decode(mulaw_encode(x, 8), 8)
    step = np.abs(np.diff(mulaw_decode(np.arange(256), 8))).max()
    assert np.abs(x - y).max() <= step / 2 + 1e-6
    assert mulaw_encode(np.array([-1.0, 0.0, 1.0]), 8).tolist() == [0, 128, 255]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    spec = spec_mod.parse(__import__("tomllib").loads(TINY_SPEC))
    first = train_mod.fit(spec, str(SPEECH), seed=3, quiet=True)
    second = train_mod.fit(spec, str(SPEECH), seed=3, quiet=True)
    return first, second


def test_training_is_deterministic_for_a_seed(trained):
    (_, g1, m1), (_, g2, m2) = trained
    for name in g1.weights:
        np.testing.assert_array_equal(g1.weights[name][0], g2.weights[name][0])
    assert m1["metrics"] == m2["metrics"]


def test_metadata_holds_what_later_steps_need(trained):
    (_, graph, meta) = trained[0]
    assert meta["sample_rate"] == 16000 and meta["receptive_field"] == graph.receptive_field == 8
    n = signals.signal_info(SPEECH)[0]
    assert meta["data"]["samples"] == n
    norm = signals.NormStats.from_dict(meta["normalization"])
    x = signals.load_signal(SPEECH).samples
    train_part = x[signals.split_by_time(n)[0]]
    assert norm.offset == pytest.approx(train_part.mean(), abs=1e-6)
    assert norm.scale == pytest.approx(train_part.std(), rel=1e-4)
    m = meta["metrics"]
    assert np.isfinite(m["prediction_gain_db"]) and m["lpc32_gain_db"] > 5  # speech is very predictable
    assert m["test_samples"] == n - signals.split_by_time(n)[2].start - max(32, graph.receptive_field)


def test_cli_train_json_and_info(tmp_path, tiny_spec):
    out = tmp_path / "model"
    proc = run_edgewave("train", "--data", SPEECH, "--spec", tiny_spec, "--out", out, "--json", "--seed", "1")
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout)
    for key in ("receptive_field", "params", "macs_per_sample", "prediction_gain_db", "lpc32_gain_db"):
        assert key in res
    assert "epoch 1/2" in proc.stderr  # progress goes to stderr
    assert sorted(p.name for p in out.iterdir()) == ["edgewave.json", "model.keras"]
    info = run_edgewave("info", out, "--json")
    assert info.returncode == 0, info.stderr
    got = json.loads(info.stdout)
    assert got["receptive_field"] == res["receptive_field"] and got["prediction_gain_db"] == res["prediction_gain_db"]
    assert {r["name"] for r in got["layers"]} >= {"gated1_tanh", "gated1_sigmoid", "skips1", "head"}


def test_distributed_training_on_two_logical_cpus(tmp_path, tiny_spec):
    proc = run_edgewave("train", "--data", SPEECH, "--spec", tiny_spec, "--out", tmp_path / "m", "--json",
                        "--cpu-devices", "2")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["training"]["replicas"] == 2


def test_many_files_from_a_directory(tmp_path, tiny_spec):
    x = signals.load_signal(SPEECH).samples
    (tmp_path / "data").mkdir()
    for i in range(3):
        signals.write_wav(tmp_path / "data" / f"part{i}.wav", x[i * 50000:(i + 1) * 50000], 16000)
    proc = run_edgewave("train", "--data", tmp_path / "data", "--spec", tiny_spec, "--out", tmp_path / "m", "--json")
    assert proc.returncode == 0, proc.stderr
    meta = json.loads((tmp_path / "m" / "edgewave.json").read_text())
    assert len(meta["data"]["sources"]) == 3 and meta["data"]["samples"] == 150000
    t = json.loads(proc.stdout)["training"]
    assert t["files"] == 3 and t["samples_per_second"] > 0


def test_a_directory_skips_short_clips_and_says_so(tmp_path, tiny_spec):
    x = signals.load_signal(SPEECH).samples
    (tmp_path / "data").mkdir()
    for i in range(2):
        signals.write_wav(tmp_path / "data" / f"long{i}.wav", x[i * 50000:(i + 1) * 50000], 16000)
    signals.write_wav(tmp_path / "data" / "click.wav", x[:100], 16000)
    proc = run_edgewave("train", "--data", tmp_path / "data", "--spec", tiny_spec, "--out", tmp_path / "m", "--json")
    assert proc.returncode == 0, proc.stderr
    assert "skipped 1 of 3 files shorter than" in proc.stderr and "click.wav" in proc.stderr
    assert json.loads(proc.stdout)["training"]["files"] == 2
    # Only short clips: nothing to train on is an error, not an empty model.
    (tmp_path / "short").mkdir()
    signals.write_wav(tmp_path / "short" / "a.wav", x[:100], 16000)
    signals.write_wav(tmp_path / "short" / "b.wav", x[:200], 16000)
    assert_one_line_error(run_edgewave("train", "--data", tmp_path / "short", "--spec", tiny_spec, "--out",
                                       tmp_path / "o"), "too short")


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("make,phrase", [
    (lambda d: d / "missing.wav", "not found"),
    (lambda d: _write(d / "empty.wav", b""), "empty"),
    (lambda d: _write(d / "corrupt.wav", b"RIFF\x10\x00\x00\x00WAVEfmt garbage"), "wav"),
    (lambda d: _write(d / "notes.txt", b"hello"), "unsupported"),
])
def test_bad_data_files(tmp_path, tiny_spec, make, phrase):
    out = tmp_path / "out"
    proc = run_edgewave("train", "--data", make(tmp_path), "--spec", tiny_spec, "--out", out)
    assert_one_line_error(proc, phrase)
    assert not out.exists()


def test_nan_and_short_signals(tmp_path, tiny_spec):
    x = np.random.default_rng(0).normal(size=5000)
    x[1234] = np.nan
    np.save(tmp_path / "nan.npy", x)
    np.save(tmp_path / "short.npy", np.random.default_rng(0).normal(size=50))
    for name, phrase in (("nan.npy", "nan"), ("short.npy", "too short")):
        proc = run_edgewave("train", "--data", tmp_path / name, "--spec", tiny_spec, "--out", tmp_path / "o")
        assert_one_line_error(proc, phrase)
        assert not (tmp_path / "o").exists()


def test_bad_spec_and_models(tmp_path):
    spec = tmp_path / "bad.toml"
    spec.write_text('[[layers]]\ntype = "conv"\nfilters = 2\nkernal = 3\n')
    assert_one_line_error(run_edgewave("train", "--data", SPEECH, "--spec", spec, "--out", tmp_path / "o"),
                          "unknown key 'kernal'")
    spec.write_text("this is = not toml [")
    assert_one_line_error(run_edgewave("info", spec), "not valid toml")
    import keras
    inp = keras.Input((None, 1))
    keras.Model(inp, keras.layers.Conv1D(1, 3, padding="same")(inp)).save(tmp_path / "same.keras")
    assert_one_line_error(run_edgewave("info", tmp_path / "same.keras"), "padding='same'")
    inp = keras.Input((None, 1))
    keras.Model(inp, keras.layers.LSTM(1, return_sequences=True)(inp)).save(tmp_path / "lstm.keras")
    assert_one_line_error(run_edgewave("info", tmp_path / "lstm.keras"), "recurrent")
    (tmp_path / "junk.keras").write_bytes(b"not a zip")
    assert_one_line_error(run_edgewave("info", tmp_path / "junk.keras"), "cannot load")


def test_output_path_that_is_a_file(tmp_path, tiny_spec):
    target = tmp_path / "taken"
    target.write_text("keep me")
    assert_one_line_error(run_edgewave("train", "--data", SPEECH, "--spec", tiny_spec, "--out", target), "is a file")
    assert target.read_text() == "keep me"


def test_stereo_needs_channel(tmp_path, tiny_spec):
    path = tmp_path / "stereo.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes((np.random.default_rng(0).normal(size=(4000, 2)) * 3000).astype("<i2").tobytes())
    assert_one_line_error(run_edgewave("train", "--data", path, "--spec", tiny_spec, "--out", tmp_path / "o"),
                          "--channel")
