"""simulate: every backend through one interface, plots, generation, bad input."""

import json
import wave

import numpy as np
import pytest
from click.testing import CliRunner

from edgewave import ctools, signals
from edgewave import simulate as sim
from edgewave.cli import main

from conftest import SPEECH, assert_one_line_error, require, run_edgewave


@pytest.fixture(scope="module")
def out16(convert_tiny):
    return convert_tiny("int16x8")


QEMU_MISSING = f"the QEMU backends need arm-none-eabi-gcc and qemu-system-arm ({ctools.INSTALL_HINT})"


def test_every_backend_through_one_interface(out16):
    conv = sim.Converted.load(str(out16))
    try:
        x = sim.load_data(conv, str(SPEECH), limit=1500)
        results = {b: sim.run_backend(b, conv, x) for b in sim.BACKENDS if b not in sim.QEMU_TARGETS}
        for name, res in results.items():
            assert res.raw.shape == (1500, 1), name
            assert np.isfinite(sim.predictions(conv, res)).all()
        # the README: numpy engine, TFLM, LiteRT(BUILTIN_REF) and the C compute the same integers
        for name in ("tflm", "litert", "c"):
            np.testing.assert_array_equal(results[name].raw, results["int"].raw, err_msg=f"{name} != int")
        np.testing.assert_allclose(results["float"].raw, results["keras"].raw, rtol=1e-4, atol=1e-4)
        require(all(sim.have(b) for b in sim.QEMU_TARGETS), QEMU_MISSING)
        for name in sim.QEMU_TARGETS:
            res = sim.run_backend(name, conv, x)
            np.testing.assert_array_equal(res.raw, results["int"].raw, err_msg=f"{name} != int")
            assert res.extra["instructions_per_sample"] > 0
    finally:
        sim.cleanup(conv)


def test_simulate_json_and_plot(out16, tmp_path):
    png = tmp_path / "sim.png"
    proc = run_edgewave("simulate", out16, "--data", SPEECH, "--backend", "c", "--compare", "int", "--compare",
                        "tflm", "--limit", "3000", "--plot", png, "--json")
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    for key in ("backend", "samples", "prediction_gain_db", "snr_vs_float_db", "max_lsb_diff", "us_per_sample",
                "ram_bytes"):
        assert key in r
    assert r["samples"] == 3000 and r["max_lsb_diff"] == {"int": 0.0, "tflm": 0.0}
    import matplotlib.pyplot as plt

    img = plt.imread(png)
    assert img.shape[0] >= 800 and img.shape[1] >= 1000
    assert img[..., :3].std() > 0.05  # not blank
    colours = {tuple(np.round(c, 1)) for c in img[..., :3].reshape(-1, 3)[::7]}
    for rgb in ((0.1, 0.5, 0.7), (1.0, 0.5, 0.1), (0.2, 0.6, 0.2)):  # matplotlib's first three series colours
        assert any(np.allclose(rgb, c, atol=0.11) for c in colours), rgb


def test_generation_is_a_deterministic_wav(out16, tmp_path):
    files = []
    for i in range(2):
        wav = tmp_path / f"gen{i}.wav"
        proc = run_edgewave("simulate", out16, "--data", SPEECH, "--limit", "2000", "--generate", "800", "--out", wav,
                            "--seed", "5", "--json")
        assert proc.returncode == 0, proc.stderr
        files.append(wav)
    with wave.open(str(files[0])) as w:
        assert w.getnframes() == 800 and w.getframerate() == 16000 and w.getsampwidth() == 2
    y = signals.load_signal(files[0]).samples
    assert np.isfinite(y).all() and y.std() > 0
    assert files[0].read_bytes() == files[1].read_bytes()


def test_generation_runs_on_every_backend(out16):
    conv = sim.Converted.load(str(out16))
    prime = sim.load_data(conv, str(SPEECH), limit=600)
    gen = {b: sim.generate(conv, b, prime, 60, seed=3) for b in sim.BACKENDS if b not in sim.QEMU_TARGETS}
    for b, y in gen.items():
        assert y.shape == (60,) and np.isfinite(y).all(), b
    for b in ("tflm", "litert", "c"):  # the same integers, fed back the same way
        np.testing.assert_array_equal(gen[b], gen["int"], err_msg=b)
    np.testing.assert_allclose(gen["keras"], gen["float"], atol=1e-4)
    require(all(sim.have(b) for b in sim.QEMU_TARGETS), QEMU_MISSING)
    for b in sim.QEMU_TARGETS:
        np.testing.assert_array_equal(sim.generate(conv, b, prime, 60, seed=3), gen["int"], err_msg=b)


def test_categorical_generation_draws_the_same_levels_on_every_integer_backend(tmp_path):
    from conftest import TINY_SPEC

    spec = tmp_path / "mulaw.toml"
    spec.write_text('mulaw_bits = 4\n' + TINY_SPEC.replace('head = "regression"', 'head = "mulaw"'))
    model, out = tmp_path / "m", tmp_path / "o"
    assert run_edgewave("train", "--data", SPEECH, "--spec", spec, "--out", model, "--epochs", "1").returncode == 0
    proc = run_edgewave("convert", model, "--data", SPEECH, "--precision", "int8", "--out", out,
                        "--check-samples", "2000")
    assert proc.returncode == 0, proc.stderr
    conv = sim.Converted.load(str(out))
    prime = sim.load_data(conv, str(SPEECH), limit=400)
    gen = {b: sim.generate(conv, b, prime, 40, seed=7) for b in ("int", "tflm", "litert", "c")}
    levels = set(sim.IntegerSampler(conv.prog, 7).values.tolist())
    assert set(gen["int"].tolist()) <= levels and len(set(gen["int"].tolist())) > 1
    for b in gen:
        np.testing.assert_array_equal(gen[b], gen["int"], err_msg=b)
    assert not np.array_equal(sim.generate(conv, "int", prime, 40, seed=8), gen["int"])
    require(sim.have("qemu-m4"), QEMU_MISSING)
    np.testing.assert_array_equal(sim.generate(conv, "qemu-m4", prime, 40, seed=7), gen["int"], err_msg="qemu-m4")


def test_simulate_bad_input(out16, tmp_path, tiny_model, monkeypatch):
    assert_one_line_error(run_edgewave("simulate", tiny_model, "--data", SPEECH), "not an OUT_DIR")
    slow = tmp_path / "8k.wav"
    signals.write_wav(slow, signals.load_signal(SPEECH).samples[:40000], 8000)
    assert_one_line_error(run_edgewave("simulate", out16, "--data", slow), "8000 Hz")
    assert_one_line_error(run_edgewave("simulate", out16, "--data", SPEECH, "--limit", "99999999"), "beyond")
    monkeypatch.setattr(ctools, "have_tools", lambda target: False)
    res = CliRunner().invoke(main, ["simulate", str(out16), "--data", str(SPEECH), "--backend", "qemu-m4",
                                    "--limit", "2000"])
    assert res.exit_code != 0 and "apt-get install gcc-arm-none-eabi" in res.output
