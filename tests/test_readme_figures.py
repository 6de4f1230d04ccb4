"""Every measured figure in the README comes from benchmarks/results.json.

The README's measured numbers stand in sections that benchmarks/readme.py renders from the
results file `make bench` writes; outside them, prose and code carry no measured figure.
"""

import importlib.util
import json
import re

from conftest import ROOT

spec = importlib.util.spec_from_file_location("bench_readme", ROOT / "benchmarks" / "readme.py")
readme = importlib.util.module_from_spec(spec)
spec.loader.exec_module(readme)

TEXT = (ROOT / "README.md").read_text()
RESULTS = json.loads((ROOT / "benchmarks" / "results.json").read_text())
# A number with a unit of something measured: gain, time, size, speed-up, instruction counts.
MEASURED = re.compile(r"(?<![\w.^/-])\d[\d  ,.]*\s?(dB|µs|us|ms|s|min|MHz|B|KB|kB|MB|GB|×|instructions|instr)"
                      r"(?![\w/])")


def test_readme_sections_are_rendered_from_results_json():
    assert set(readme.sections(TEXT)) == set(readme.RENDER), "README sections and renderers disagree"
    assert readme.render(TEXT, RESULTS) == TEXT, "README.md is stale: run python benchmarks/readme.py"


def test_no_measured_figure_outside_the_rendered_sections():
    outside = readme.SECTION.sub("", TEXT)
    hits = [m.group(0) for m in MEASURED.finditer(outside)]
    assert not hits, f"measured figures outside the results sections: {hits}"


def test_the_checker_sees_figures():
    # The pattern must catch what a hand-written figure looks like, or the test above proves nothing.
    for figure in ("18.69 dB", "6 684 instructions", "1.0 us", "17 334 B", "8.9×", "245 s", "107 MHz"):
        assert MEASURED.search(f"text {figure} text"), figure
    for setting in ("16 kHz", "int16x8", "80 / 10 / 10 %", "--window 1024", "2^32 − 3 samples"):
        assert not MEASURED.search(f"text {setting} text"), setting
    changed = json.loads(json.dumps(RESULTS))
    readme.row(changed["tables"]["4"], "default", "int16x8", "cortex-m4")["per_sample"] += 1
    assert readme.render(TEXT, changed) != TEXT
