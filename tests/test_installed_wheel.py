"""What a user installs is what we test: the wheel built from this checkout, installed without -e
into its own venv, driven through its console command from a directory outside the checkout.

The venv borrows the dependencies (TensorFlow & co.) from the test venv's site-packages through a
plain path entry, so only edgewave itself comes from the wheel; the test checks that `edgewave`
imports from the new venv, not from the checkout.
"""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT, SPEECH, TINY_SPEC
from edgewave import tflm_tree

IN_CI = os.environ.get("CI") == "true"
HAVE_QEMU = bool(shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm"))


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv bin dir, wheel path) of edgewave installed from a freshly built wheel."""
    base = tmp_path_factory.mktemp("wheel")
    # Build from a copy without build/ and *.egg-info: setuptools would reuse a stale build/lib and
    # ship modules the package configuration no longer names.
    src = base / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".git", ".venv", "build", "dist", "runs", "*.egg-info",
                                                             "__pycache__", ".pytest_cache", ".hypothesis"))
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(base / "dist"), str(src)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    (wheel,) = (base / "dist").glob("edgewave-*.whl")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    vpy = venv / "bin" / "python"
    site = Path(subprocess.run([str(vpy), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    # A plain path line: the test venv's own .pth files (its editable edgewave) are not processed.
    (site / "zz_edgewave_test_deps.pth").write_text("".join(f"{p}\n" for p in sorted(deps)))
    inst = subprocess.run([sys.executable, "-m", "pip", "--python", str(vpy), "install", "--no-deps",
                           "--no-index", "-q", str(wheel)], capture_output=True, text=True)
    assert inst.returncode == 0, inst.stderr
    return venv / "bin", wheel


def user_env():
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return env


def ew(bindir, cwd, *args, timeout=900):
    return subprocess.run([str(bindir / "edgewave"), *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          env=user_env(), timeout=timeout)


def ok(proc):
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def test_wheel_holds_every_module_and_shipped_file(installed):
    _, wheel = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    for p in (ROOT / "edgewave").rglob("*"):
        if p.is_file() and "__pycache__" not in p.parts:
            assert p.relative_to(ROOT).as_posix() in names, f"{p.relative_to(ROOT)} is not in the wheel"
    for top in ("templates", "firmware"):
        files = [p for p in (ROOT / top).rglob("*") if p.is_file()]
        assert files, f"{top}/ is empty"
        for p in files:
            assert f"edgewave/{top}/{p.relative_to(ROOT / top).as_posix()}" in names
    entry = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "edgewave = edgewave.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()


def test_installed_cli_end_to_end(installed, tmp_path):
    """train -> info -> convert (int8, int16x8) -> emit -> simulate c (and qemu-m4) -> demo, as a user runs them."""
    bindir, _ = installed
    work = tmp_path / "user"
    work.mkdir()
    assert ROOT not in work.resolve().parents
    shutil.copy(SPEECH, work / "speech.wav")
    (work / "tiny.toml").write_text(TINY_SPEC)

    where = subprocess.run([str(bindir / "python"), "-c", "import edgewave, sys; print(edgewave.__file__)"],
                           capture_output=True, text=True, cwd=work, env=user_env())
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(bindir.parent), f"edgewave imported from {where.stdout}"

    ok(ew(bindir, work, "--version"))
    for cmd in ("train", "info", "convert", "emit", "simulate", "conceal", "anomaly", "demo", "spec"):
        assert "Usage:" in ok(ew(bindir, work, cmd, "--help")).stdout

    ok(ew(bindir, work, "train", "--data", "speech.wav", "--spec", "tiny.toml", "--out", "model", "--seed", "2"))
    info = json.loads(ok(ew(bindir, work, "info", "model", "--json")).stdout)
    assert info["receptive_field"] > 1 and info["prediction_gain_db"] is not None
    ok(ew(bindir, work, "info", "model", "--target", "cortex-m4", "--clock-hz", "168e6"))

    for precision in ("int8", "int16x8"):
        rep = json.loads(ok(ew(bindir, work, "convert", "model", "--data", "speech.wav", "--precision", precision,
                               "--out", precision, "--check-samples", "2000", "--json")).stdout)
        assert rep["engine_vs_tflm_max_lsb"] == 0, rep

    emitted = json.loads(ok(ew(bindir, work, "emit", "int16x8", "--out", "c", "--prefix", "speech",
                               "--target", "cortex-m4", "--json")).stdout)
    assert emitted["host_matches_engine"] is True
    for f in ("speech.h", "speech.c", "CMakeLists.txt", "edgewave_rt/include/edgewave_rt.h"):
        assert (work / "c" / f).is_file(), f
    if HAVE_QEMU or IN_CI:
        assert emitted["m4_instructions_per_sample"] > 0

    # A TFLM user's route: the arena measured on stock TFLM for the M4 (the cache shared with the checkout's
    # tests, so TFLM is compiled once per machine, not once per test).
    tflm_root = tflm_tree.find()
    if tflm_root is not None and (HAVE_QEMU or IN_CI):
        proc = subprocess.run([str(bindir / "edgewave"), "emit", "int16x8", "--out", "c-tflm", "--prefix", "speech",
                               "--tflm-dir", str(tflm_root), "--json"], capture_output=True, text=True, cwd=work,
                              env={**user_env(), tflm_tree.CACHE_ENV: str(ROOT / "build" / "cache")}, timeout=1800)
        tflm_emitted = json.loads(ok(proc).stdout)
        assert tflm_emitted["tflm_arena_measured_on"] == "cortex-m4"
        assert set(tflm_emitted["tflm_m4_arena_bytes"]) == {"reference", "cmsis_nn"}
        assert "speech_tflm_step" in (work / "c-tflm" / "speech_tflm.h").read_text()

    backends = ["c"] + (["qemu-m4"] if HAVE_QEMU or IN_CI else [])
    for backend in backends:
        sim = json.loads(ok(ew(bindir, work, "simulate", "int16x8", "--data", "speech.wav", "--backend", backend,
                               "--compare", "int", "--limit", "2000", "--json")).stdout)
        assert sim["max_lsb_diff"]["int"] == 0, (backend, sim)

    # The jobs, on the device API: the emitted C conceals and scores what the engine does.
    wavs = {}
    for backend in ("int", "c"):
        rep = json.loads(ok(ew(bindir, work, "conceal", "int16x8", "--data", "speech.wav", "--loss", "0.1",
                               "--frame-ms", "20", "--limit", "16000", "--backend", backend,
                               "--out", f"concealed-{backend}.wav", "--json")).stdout)
        assert rep["pesq"] > 1 and set(rep["baselines"]) == {"zero", "repeat", "g711"}
        wavs[backend] = (work / f"concealed-{backend}.wav").read_bytes()
    assert wavs["c"] == wavs["int"]
    scores = [json.loads(ok(ew(bindir, work, "anomaly", "int16x8", "--data", "speech.wav", "--window-ms", "20",
                               "--backend", backend, "--json")).stdout) for backend in ("int", "c")]
    assert scores[0]["alarms"] == scores[1]["alarms"] and scores[0]["threshold"] == scores[1]["threshold"]

    demo = ok(ew(bindir, work, "demo", "--spec", "tiny.toml", "--samples", "2000", "--out", "demo"))
    table = demo.stdout
    for backend in ("keras", "float", "int", "litert", "tflm", "c", *(["qemu-m4"] if HAVE_QEMU or IN_CI else [])):
        assert any(line.startswith(backend + " ") for line in table.splitlines()), (backend, table)
    assert "Every integer backend equals the numpy engine (0 LSB)" in table
