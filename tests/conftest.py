import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parent.parent
SPEECH = ROOT / "edgewave" / "data" / "speech16k.wav"
EDGEWAVE = [sys.executable, "-m", "edgewave.cli"]

TINY_SPEC = """
head = "regression"
[train]
window = 256
batch = 4
epochs = 2
steps_per_epoch = 4
patience = 2
[[layers]]
type = "dense"
units = 4
bias = false
[[layers]]
type = "residual"
skip = true
dilations = [1, 2, 4]
layers = [{ type = "gated", filters = 4, kernel = 2 }, { type = "dense", units = 4 }]
[[layers]]
type = "skips"
activation = "relu"
"""


@pytest.fixture(scope="session")
def tiny_spec(tmp_path_factory):
    p = tmp_path_factory.mktemp("spec") / "tiny.toml"
    p.write_text(TINY_SPEC)
    return p


def run_edgewave(*args, cwd=None, timeout=600):
    """Run the CLI in a fresh process, as a user would."""
    return subprocess.run([*EDGEWAVE, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=timeout)


def assert_one_line_error(proc, phrase):
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [l for l in proc.stderr.strip().splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert phrase.lower() in lines[0].lower(), lines[0]


def have_qemu():
    return shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm")


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, tiny_spec):
    """A tiny gated WaveNet trained for a few steps on the bundled speech (shared by the test files)."""
    out = tmp_path_factory.mktemp("tiny") / "model"
    proc = run_edgewave("train", "--data", SPEECH, "--spec", tiny_spec, "--out", out, "--seed", "2")
    assert proc.returncode == 0, proc.stderr
    return out


_CONVERTED = {}


@pytest.fixture(scope="session")
def convert_tiny(tiny_model, tmp_path_factory):
    """precision -> OUT_DIR of the tiny model, converted once per session."""

    def get(precision):
        if precision not in _CONVERTED:
            out = tmp_path_factory.mktemp(f"conv-{precision}") / "out"
            proc = run_edgewave("convert", tiny_model, "--data", SPEECH, "--precision", precision, "--out", out,
                                "--check-samples", "2000")
            assert proc.returncode == 0, proc.stderr
            _CONVERTED[precision] = out
        return _CONVERTED[precision]

    return get


def pytest_terminal_summary(terminalreporter):
    """Print the fuzzers' case counts in every run (CI logs included), not only with -s."""
    import sys

    fuzz = sys.modules.get("test_fuzz")
    if fuzz is not None and fuzz.COUNTS:
        terminalreporter.write_line("fuzz cases per parser: " + ", ".join(f"{k} {v}" for k, v in fuzz.COUNTS.items()))
