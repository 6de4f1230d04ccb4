"""A non-editable wheel carries the package data, templates/ and firmware/, and a console command."""

import subprocess
import sys
import zipfile
from pathlib import Path

from conftest import ROOT


def test_wheel_ships_templates_firmware_and_data(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    (wheel,) = tmp_path.glob("edgewave-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for top, inside in (("templates", "edgewave/templates"), ("firmware", "edgewave/firmware")):
        files = [p for p in (ROOT / top).rglob("*") if p.is_file()]
        assert files, f"{top}/ is empty"
        for p in files:
            assert f"{inside}/{p.relative_to(ROOT / top).as_posix()}" in names
    assert {"edgewave/data/speech16k.wav", "edgewave/specs/default.toml", "edgewave/cli.py"} <= names
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "edgewave = edgewave.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()


def test_cli_help_is_complete():
    for args in ([], ["train"], ["info"], ["convert"], ["spec"]):
        proc = subprocess.run([sys.executable, "-m", "edgewave.cli", *args, "--help"], capture_output=True, text=True)
        assert proc.returncode == 0 and "Usage:" in proc.stdout, proc.stderr
        assert "Traceback" not in proc.stderr
