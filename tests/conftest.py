import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

IN_CI = os.environ.get("CI") == "true"

# Hypothesis: under CI=true the "ci" profile runs the same properties reproducibly (derandomized,
# no example database) and with more cases; HYPOTHESIS_PROFILE picks a profile by name.
# Properties that set their own max_examples scale it with examples() below.
settings.register_profile("ci", derandomize=True, max_examples=250, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if IN_CI else "default"))


def examples(n: int) -> int:
    """max_examples for a property that runs n cases under the default profile: n locally,
    2.5 n under the ci profile (scaled by the profile's max_examples against Hypothesis' 100)."""
    return max(1, round(n * settings.default.max_examples / 100))


def require(condition, reason: str, module_level: bool = False) -> None:
    """A check the README guarantees needs `reason` (a tool, a runtime): skip the test when it is
    missing on this machine, but fail it under CI=true, where every guaranteed check must run."""
    __tracebackhide__ = True  # report the caller's line
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI=true, so this check must run, but {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=module_level)


@pytest.fixture(scope="session")
def tflm_root():
    """A TensorFlow Lite Micro tree, which edgewave never ships: a user points EDGEWAVE_TFLM_DIR at theirs, this
    project's CI has ../shared/tflm-m4. Without one the TFLM checks skip, also under CI=true."""
    from edgewave import tflm_tree

    root = tflm_tree.find()
    if root is None:
        pytest.skip(f"no TensorFlow Lite Micro tree: set {tflm_tree.ENV} to an unpacked tflite-micro "
                    "(or a .tar.xz of one) with its third-party downloads")
    return root


@pytest.fixture(scope="session")
def tflm_m4_root(tflm_root):
    """tflm_root, and the Arm tools that build TFLM for the Cortex-M4 and run it on QEMU."""
    from edgewave import ctools

    require(ctools.have_cortex_m_tools(), f"building TFLM for the Cortex-M4 needs the Arm tools ({ctools.INSTALL_HINT})")
    return tflm_root


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


@pytest.fixture(scope="session")
def speech_with_anomalies(tmp_path_factory):
    """The bundled speech with anomalies of every kind after its first 20 %, and their labels."""
    from edgewave import signals
    from edgewave.anomaly import inject

    d = tmp_path_factory.mktemp("anomaly")
    x = signals.load_signal(SPEECH).samples.astype(np.float64)[:64000]
    xa, labels = inject.inject(x, 16000, duration_s=0.1, seed=1, start_after=16000, per_kind=2)
    signals.write_wav(d / "a.wav", np.clip(xa, -1, 1), 16000)
    np.savetxt(d / "labels.txt", labels, fmt="%d")
    return d / "a.wav", d / "labels.txt", labels


def pytest_terminal_summary(terminalreporter):
    """Print how many cases the properties ran, in every run (CI logs included), not only with -s
    (--hypothesis-show-statistics shows the same for the properties pytest runs directly)."""
    fuzz = sys.modules.get("test_fuzz")
    if fuzz is not None and fuzz.COUNTS:
        terminalreporter.write_line("fuzz cases per parser: " + ", ".join(f"{k} {v}" for k, v in fuzz.COUNTS.items()))
    convert = sys.modules.get("test_convert")
    if convert is not None and any(convert.LITERT_VS_TFLM.values()):
        terminalreporter.write_line("random architectures checked against TFLM and LiteRT: " + ", ".join(
            f"{k} {len(v)}" for k, v in convert.LITERT_VS_TFLM.items()))
