"""`edgewave demo` holds its promise: it fails when any integer backend differs from the numpy engine."""

import numpy as np
import pytest
from click.testing import CliRunner

from edgewave import cli
from edgewave import simulate as sim

from conftest import TINY_SPEC


# The passing demo is run by test_installed_wheel, from the installed wheel.
@pytest.mark.parametrize("broken", ["c", "tflm"])
def test_demo_fails_when_a_backend_differs(tmp_path, monkeypatch, broken):
    spec = tmp_path / "tiny.toml"
    spec.write_text(TINY_SPEC)
    real = sim.run_backend

    def run_backend(name, conv, x, progress=None):
        res = real(name, conv, x, progress)
        if name == broken:  # one output code off by one LSB, as a miscompiled kernel would give
            res.raw = res.raw.copy()
            res.raw[len(x) // 2, 0] += 1 if res.raw[len(x) // 2, 0] < np.iinfo(res.raw.dtype).max else -1
        return res

    monkeypatch.setattr(sim, "run_backend", run_backend)
    proc = CliRunner().invoke(cli.main, ["demo", "--spec", str(spec), "--samples", "1500", "--out",
                                         str(tmp_path / "demo")])
    table = [l for l in proc.stdout.splitlines() if l.split()[:1] and l.split()[0] in sim.BACKENDS]
    assert {"keras", "float", "int", "litert", "tflm", "c"} <= {l.split()[0] for l in table}, proc.stdout
    assert proc.exit_code == 2, proc.output
    err = proc.stderr.strip().splitlines()[-1]
    assert err.startswith("error: integer backends differ") and f"{broken} (max 1 LSB)" in err, err
    row = next(l for l in table if l.split()[0] == broken)
    assert row.split()[3] == "1", row
    assert "equals the numpy engine" not in proc.stdout
