"""`edgewave demo`: the whole path on one recording, and the table that shows it held.

Train, convert, emit and simulate on every backend installed here; every integer
backend must equal the numpy integer engine sample for sample, or the demo fails.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Callable

from . import simulate as sim
from .errors import UserError

BACKENDS = ("keras", "float", "int", "litert", "tflm", "c", "qemu-m4")
FLOAT_BACKENDS = ("keras", "float")
# How each backend's cost is measured, so a reader does not compare a batch with a step.
COST_NOTES = {
    "keras": "one batched call over the whole sequence, per sample",
    "float": "numpy float engine, whole signal at once, per sample",
    "int": "numpy integer engine, whole signal at once, per sample",
    "litert": "Python loop over invoke(), per sample",
    "tflm": "Python loop over invoke(), per sample",
    "c": "the step alone, timed inside the host program",
    "qemu-m4": "exact instructions per step on an emulated Cortex-M4",
}


def bundled_recording() -> str:
    """Real speech, 8 kHz telephony (edgewave/data/README.md says where it comes from)."""
    return str(resources.files("edgewave").joinpath("data/speech8k_fr.wav"))


@dataclass
class Row:
    backend: str
    gain_db: float
    snr_vs_float_db: float
    max_lsb_vs_int: float | None
    cost: str


@dataclass
class DemoResult:
    out: Path
    summary: list[str]
    rows: list[Row] = field(default_factory=list)
    conceal: dict = field(default_factory=dict)  # backend -> `edgewave conceal` report
    conceal_differs: list[str] = field(default_factory=list)  # device backends whose WAV is not int's
    seconds: float = 0.0

    def differing(self) -> list[Row]:
        """Integer backends whose outputs are not the numpy engine's."""
        return [r for r in self.rows if r.max_lsb_vs_int not in (None, 0.0)]


def run(out: str, precision: str = "int16x8", samples: int = 20000, seed: int = 0, data: str | None = None,
        spec_path: str | None = None, say: Callable[[str], None] = lambda s: None) -> DemoResult:
    from . import spec as spec_mod
    from . import train as train_mod
    from .convert.pipeline import convert as run_convert
    from .emit.pipeline import write_c

    data = data or bundled_recording()
    spec = spec_mod.load(spec_path) if spec_path else spec_mod.default()
    out = Path(out)
    t0 = time.monotonic()
    say(f"[1/5] train {'the default spec' if spec_path is None else spec_path} on {Path(data).name}")
    model, graph, meta = train_mod.fit(spec, data, seed=seed)
    train_mod.save(str(out / "model"), model, graph, meta)
    say(f"[2/5] convert to {precision}")
    conv_report = run_convert(str(out / "model"), data, precision, str(out / precision))
    say("[3/5] emit C, build it for the host (and Cortex-M4 under QEMU when installed)")
    emit_report = write_c(str(out / precision), str(out / "c"), "speech", "cortex-m4")
    say("[4/5] simulate on every available backend")
    conv = sim.Converted.load(str(out / precision))
    try:
        x = sim.load_data(conv, data)[-samples:]
        names = [b for b in BACKENDS if sim.have(b)]
        results = {b: sim.run_backend(b, conv, x, sim.progress_printer(b, len(x), False)) for b in names}
    finally:
        sim.cleanup(conv)
    if "int" not in results:
        raise UserError("the numpy integer engine did not run; nothing to compare the backends with")
    float_pred = sim.predictions(conv, results["float"])
    m = meta["metrics"]
    summary = [
        f"model: receptive field {graph.receptive_field}, {emit_report['macs_per_sample']} MACs/sample; "
        f"held-out gain {m['prediction_gain_db']:.2f} dB vs LPC-32 {m['lpc32_gain_db']:.2f} dB "
        f"(trained in {meta['training']['seconds']:.0f} s)",
        f"{precision}: gain {conv_report['quant_gain_db']:.2f} dB vs float {conv_report['float_gain_db']:.2f} dB",
        f"C: RAM {emit_report['ram_bytes']} B vs TFLite Micro {emit_report['tflm_ram_bytes']} B "
        f"(arena measured on this 64-bit host)"
        + (f", flash {emit_report['flash_bytes']} B" if "flash_bytes" in emit_report else ""),
    ]
    result = DemoResult(out, summary)
    for name, res in results.items():
        r = sim.compare(conv, res, [] if name in FLOAT_BACKENDS else [results["int"]], x, float_pred)
        cost = (f"{r['instructions_per_sample']:.0f} instr" if "instructions_per_sample" in r
                else f"{r['us_per_sample']:.2f} us")
        result.rows.append(Row(name, r["prediction_gain_db"], r.get("snr_vs_float_db", float("nan")),
                               r["max_lsb_diff"].get("int"), cost))
    say(f"[5/5] conceal {LOSS:.0%} loss of {FRAME_MS:g} ms frames on the same samples (int, c"
        + (", qemu-m4)" if sim.have("qemu-m4") else ")"))
    conceal_demo(result, conv.path, data, x_tail=len(x))
    result.seconds = time.monotonic() - t0
    return result


LOSS, FRAME_MS = 0.1, 20.0
MIN_CONCEAL_S = 3


def conceal_demo(result: DemoResult, out_dir: Path, data: str, x_tail: int) -> None:
    """`edgewave conceal` on the simulated samples, on the engine and on the device's C."""
    from . import signals
    from .conceal import conceal

    sig = signals.load_signal(data)
    tail = result.out / "held_out.wav"
    # PESQ needs a few seconds of speech to find utterances in.
    signals.write_wav(tail, sig.samples[-max(x_tail, MIN_CONCEAL_S * (sig.sample_rate or 0)):], sig.sample_rate)
    wavs = {}
    for backend in ("int", "c", "qemu-m4"):
        if not sim.have(backend):
            continue
        wav = result.out / f"concealed_{backend}.wav"
        result.conceal[backend] = conceal(str(out_dir), str(tail), loss=LOSS, frame_ms=FRAME_MS, backend=backend,
                                          out=str(wav))
        wavs[backend] = wav.read_bytes()
    result.conceal_differs = [b for b, w in wavs.items() if w != wavs["int"]]


def table(result: DemoResult) -> list[str]:
    header = f"{'backend':<9}{'gain dB':>9}{'SNR vs float':>14}{'max LSB vs int':>16}{'cost per sample':>18}  how"
    lines = [header, "-" * len(header)]
    for r in result.rows:
        lsb = "-" if r.max_lsb_vs_int is None else f"{r.max_lsb_vs_int:g}"
        lines.append(f"{r.backend:<9}{r.gain_db:>9.2f}{r.snr_vs_float_db:>14.1f}{lsb:>16}{r.cost:>18}  "
                     f"{COST_NOTES[r.backend]}")
    return lines


def conceal_table(result: DemoResult) -> list[str]:
    r = result.conceal.get("int")
    if not r:
        return []
    from .conceal import human_report

    lines = human_report(r).splitlines()[:-2]  # without the timing and the file: both are said below
    same = [b for b in result.conceal if b != "int" and b not in result.conceal_differs]
    if same:
        lines.append(f"  {', '.join(same)} wrote the same WAV as int, byte for byte")
    return lines


def check(result: DemoResult) -> None:
    """The demo's promise: every integer backend computes the numpy engine's numbers."""
    if result.conceal_differs:
        raise UserError(f"concealment on {', '.join(result.conceal_differs)} differs from the numpy engine's; this is "
                        f"a bug in edgewave, please report it with the files in {result.out}/")
    bad = result.differing()
    if bad:
        which = ", ".join(f"{r.backend} (max {r.max_lsb_vs_int:g} LSB)" for r in bad)
        raise UserError(f"integer backends differ from the numpy engine: {which}; this is a bug in edgewave, "
                        f"please report it with the files in {result.out}/")
