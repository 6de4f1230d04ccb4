"""The `edgewave` command line.

Heavy imports (TensorFlow) happen inside commands so `--help` stays instant.
Every expected failure is a UserError: one line on stderr, exit status 2.
"""

from __future__ import annotations

import functools
import json
import sys

import click

from .errors import UserError

BACKEND_CHOICES = ["keras", "float", "int", "litert", "tflm", "c", "qemu-m4", "qemu-m7", "qemu-m33", "qemu-rv32"]


def command(fn):
    """Turn UserError into a one-line message and a non-zero exit, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)

    return wrapper


def print_json(obj: dict) -> None:
    click.echo(json.dumps(obj, indent=2, sort_keys=False, default=float))


def show(report: dict, as_json: bool, human) -> None:
    """A job's report: one JSON object with --json, else its human form."""
    if as_json:
        print_json(report)
    else:
        click.echo(human(report), nl=False)


# Where the jobs run: the numpy engines and the emitted C (the Python-driven TFLite runtimes have no job loop).
JOB_BACKENDS = ["float", "int", "c", "qemu-m4", "qemu-m7", "qemu-m33", "qemu-rv32"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="edgewave")
def main():
    """edgewave: causal, dilated 1-D conv nets from a WAV file to bit-exact streaming C.

    \b
    Typical path:
      edgewave train --data speech.wav --out model/        # float Keras model + metadata
      edgewave info model/                                 # layers, receptive field, MACs, gains
      edgewave convert model/ --data speech.wav --out int16x8/
      edgewave emit int16x8/ --out speech_c/ --prefix speech
      edgewave simulate int16x8/ --data speech.wav --backend c --compare int
    \b
    The jobs:
      edgewave conceal int16x8/ --data call.wav --loss 0.1 --frame-ms 20 --out concealed.wav
      edgewave anomaly int16x8/ --data sensor.wav --calibrate normal.wav --labels labels.txt
    """


@main.command()
@click.option("--data", required=True, metavar="PATH",
              help="Signal(s) to learn from: a WAV / .npy / one-column .csv file, a directory, or a glob.")
@click.option("--spec", "spec_path", metavar="SPEC.toml",
              help="Model spec (default: a gated WaveNet for speech; see `edgewave spec`).")
@click.option("--out", required=True, metavar="MODEL_DIR", help="Directory for model.keras and edgewave.json.")
@click.option("--epochs", type=click.IntRange(1), help="Maximum epochs (default: from the spec).")
@click.option("--steps-per-epoch", type=click.IntRange(1), help="Batches per epoch (default: from the spec).")
@click.option("--max-minutes", type=click.FloatRange(min=0, min_open=True),
              help="Stop after this much wall time (the best weights so far are kept and saved; a finished "
                   "run, so the next run with these arguments starts afresh).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for weights, windows and shuffling.")
@click.option("--channel", type=click.IntRange(0), help="Channel to use from multi-channel files.")
@click.option("--cpu-devices", type=click.IntRange(1), default=1, show_default=True,
              help="Split the CPU into N logical devices for MirroredStrategy (testing distributed training).")
@click.option("--horizon", type=click.IntRange(1), metavar="H",
              help="After the one-step fit, fine-tune through the feedback loop: from real context the model "
                   "generates the next H samples from its own predictions (as it does through a lost frame in "
                   "`edgewave conceal`) and learns from their error, mixed with the one-step loss. Use the lost "
                   "frame length, e.g. 160 for 20 ms at 8 kHz. Regression head only. Default: off.")
@click.option("--init", "init_dir", metavar="MODEL_DIR",
              help="Start from the weights of this trained MODEL_DIR (same --spec). With --horizon only the "
                   "feedback-loop fine-tuning runs.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object on stdout.")
@command
def train(data, spec_path, out, epochs, steps_per_epoch, max_minutes, seed, channel, cpu_devices, horizon, init_dir,
          as_json):
    """Train a next-sample predictor on a signal.

    The data are split by time into train/validation/test (80/10/10 per file);
    training stops early when the validation loss stops improving. Results are
    deterministic for a fixed --seed. Training runs under tf.distribute
    (MirroredStrategy over local devices, MultiWorkerMirroredStrategy when
    TF_CONFIG is set).

    An interrupted run resumes: after every epoch the state is kept in .OUT.train
    beside OUT; the same command again continues from the last completed epoch
    (same final weights) and removes it when OUT is written.

    \b
    Several hosts: start the same command on each, with the same --data and
    --seed, and a TF_CONFIG that lists every worker (host:port, open between
    the hosts) and says which one this is:
      host1$ TF_CONFIG='{"cluster": {"worker": ["host1:12345", "host2:12345"]},
                         "task": {"type": "worker", "index": 0}}' edgewave train ...
      host2$ TF_CONFIG='... same cluster ..., "task": {"type": "worker", "index": 1}}' edgewave train ...
    Worker 0 (the chief) writes OUT; the others write nothing there. Each step's
    batch is split over the workers (and their --cpu-devices).
    """
    from . import modeldir
    from . import spec as spec_mod
    from . import train as train_mod
    from .cluster import role
    from .resume import backup_dir

    modeldir.check_output_dir(out, modeldir.META_FILE)
    spec = spec_mod.load(spec_path) if spec_path else spec_mod.default()
    model, graph, meta = train_mod.fit(spec, data, channel=channel, epochs=epochs, max_minutes=max_minutes,
                                       seed=seed, cpu_devices=cpu_devices, quiet=False,
                                       steps_per_epoch=steps_per_epoch, horizon=horizon, init=init_dir,
                                       backup=backup_dir(out))
    train_mod.save(out, model, graph, meta)
    summary = _summary(graph, meta)
    if as_json:
        print_json(summary)
    else:
        m = meta["metrics"]
        saved = f"saved {out}" if role().chief else f"worker {role().index} done (the chief saved {out})"
        click.echo(f"{saved}: receptive field {graph.receptive_field}, {graph.params()} params, "
                   f"{graph.macs_per_sample()} MACs/sample")
        t = meta["training"]
        rate = f", {t['samples_per_second']:,} training samples/s" if t.get("samples_per_second") else ""
        click.echo(f"held-out prediction gain {m['prediction_gain_db']:.2f} dB "
                   f"(LPC-32 {m['lpc32_gain_db']:.2f} dB) in {t['seconds']:.0f} s on {t['files']} file(s){rate}")


def _summary(graph, meta) -> dict:
    m = meta.get("metrics", {})
    return {"receptive_field": graph.receptive_field, "params": graph.params(),
            "macs_per_sample": graph.macs_per_sample(), "state_elements": graph.state_elements(),
            "head": graph.head, "prediction_gain_db": m.get("prediction_gain_db"),
            "lpc32_gain_db": m.get("lpc32_gain_db"), "sample_rate": meta.get("sample_rate"),
            "training": meta.get("training")}


@main.command()
@click.argument("model", metavar="MODEL")
@click.option("--target", type=click.Choice(["cortex-m0plus", "cortex-m4", "cortex-m7", "cortex-m33", "riscv32"]),
              help="Also say whether MODEL runs in real time on this core (needs --clock-hz; --rate unless the "
                   "model knows its sample rate). riscv32: rv32imac, the portable C.")
@click.option("--clock-hz", type=click.FloatRange(min=0, min_open=True), metavar="HZ",
              help="Core clock for --target, e.g. 168e6.")
@click.option("--rate", type=click.FloatRange(min=0, min_open=True), metavar="HZ",
              help="Samples per second to keep up with (default: the training data's sample rate).")
@click.option("--precision", type=click.Choice(["int16x8", "int8"]), default="int16x8", show_default=True,
              help="Precision the model will be converted to, for --target.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
@command
def info(model, target, clock_hz, rate, precision, as_json):
    """Show a model: layers in conceptual and trained form, receptive field, cost, metrics.

    MODEL is a MODEL_DIR from `edgewave train`, a user .keras file, or a spec .toml.
    With --target, also estimate instructions per sample on that core from instruction
    counts measured by `make bench` (the C it would get is counted call by call; a spec
    is quantized with fixed pseudo-random weights first), and say whether it keeps up
    with --rate at --clock-hz — size a spec before spending time training it:

        edgewave info spec.toml --target cortex-m4 --clock-hz 168e6 --rate 16000
    """
    from .graph import describe

    graph, meta = _load_any(model)
    from .convert.lowering import runtime_macs

    summary = {**_summary(graph, meta), "runtime_macs_per_sample": runtime_macs(graph), "layers": describe(graph)}
    if target:
        from . import realtime

        rate = rate or summary["sample_rate"]
        if clock_hz is None or rate is None:
            missing = "--clock-hz" if clock_hz is None else "--rate (the model has no sample rate)"
            raise UserError(f"--target {target} needs {missing}, e.g. --clock-hz 168e6 --rate 16000")
        summary["realtime"] = realtime.estimate(graph, target, precision, clock_hz, rate)
    elif clock_hz is not None or rate is not None:
        raise UserError("--clock-hz and --rate size the model for a core; add --target, e.g. --target cortex-m4")
    if as_json:
        print_json(summary)
        return
    click.echo(f"{'layer':<18}{'op':<9}{'ch':>4}{'k':>4}{'stride':>7}{'dil':>6}{'trained dil':>12}"
               f"{'act':>9}{'MACs':>7}  inputs")
    for r in summary["layers"]:
        click.echo(f"{r['name']:<18}{r['op']:<9}{r['channels']:>4}{r['kernel']:>4}{r['stride']:>7}"
                   f"{r['dilation']:>6}{r['trained_dilation']:>12}{r['activation']:>9}{r['macs']:>7}  "
                   f"{', '.join(r['inputs'])}")
    lowered = summary["runtime_macs_per_sample"]
    click.echo(f"receptive field {graph.receptive_field} samples, {graph.params()} params, "
               f"{graph.macs_per_sample()} MACs/sample"
               + (f" ({lowered} as run: linear lifts folded into the layers reading them)"
                  if lowered != graph.macs_per_sample() else "")
               + f", ring state {graph.state_elements()} values")
    if summary["prediction_gain_db"] is not None:
        click.echo(f"held-out prediction gain {summary['prediction_gain_db']:.2f} dB, "
                   f"LPC-32 {summary['lpc32_gain_db']:.2f} dB")
    if target:
        click.echo(realtime.describe(summary["realtime"]))


def _load_any(path: str):
    from . import modeldir
    from . import spec as spec_mod

    if path.endswith(".toml"):
        return spec_mod.to_graph(spec_mod.load(path)), {}
    return modeldir.load(path)


@main.command()
@click.argument("model", metavar="MODEL")
@click.option("--data", required=True, metavar="PATH",
              help="Signal for calibration and checks (the training recording works: calibration uses its "
                   "training split, accuracy its test split).")
@click.option("--precision", type=click.Choice(["int16x8", "int8", "float32"]), default="int16x8", show_default=True,
              help="int16x8: 16-bit activations, 8-bit weights (near-float accuracy, fastest on Cortex-M DSP "
                   "cores); int8: 8-bit activations (half the ring-state RAM, some gain lost: see the README's "
                   "precision table); "
                   "float32: no quantization.")
@click.option("--int8-input", "input_stage", type=click.Choice(["int16", "int8"]), default="int16", show_default=True,
              help="int8 only. int16: the input sample, and linear layers computed from it alone, stay 16-bit "
                   "(int16x8 layers, then int8 throughout): raw audio needs more than 256 levels. int8: int8 from "
                   "the input on, for int8-only pipelines (loses more gain than int16: see the README).")
@click.option("--out", required=True, metavar="OUT_DIR", help="Directory for the .tflite models, manifest and report.")
@click.option("--window", type=click.IntRange(1), default=1024, show_default=True,
              help="Time steps of model_full.tflite (whole-window inference for batch validation).")
@click.option("--channel", type=click.IntRange(0), help="Channel to use from multi-channel files.")
@click.option("--check-samples", type=click.IntRange(1), default=20000, show_default=True,
              help="Consecutive samples on which every runtime is compared.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object on stdout.")
@command
def convert(model, data, precision, input_stage, out, window, channel, check_samples, as_json):
    """Quantize MODEL into streaming and full-window TFLite models, proven on real samples.

    MODEL is a MODEL_DIR from `edgewave train` or a Keras 3 .keras file. The
    streaming model takes one sample (`x`) plus the ring-buffer taps it needs
    (`tap_<tensor>_<delay>`) and returns the prediction (`y`) and the values to
    push into each ring (`new_<tensor>`), all addressed by signature name. The
    numpy integer engine, TensorFlow Lite Micro and LiteRT are run on the same
    samples and their differences reported.
    """
    from .convert.pipeline import convert as run_convert
    from .convert.pipeline import human_report

    report = run_convert(model, data, precision, out, window=window, channel=channel, check_samples=check_samples,
                         input_stage=input_stage, quiet=as_json)
    if as_json:
        print_json(report)
    else:
        click.echo(human_report(report), nl=False)


@main.command("emit")
@click.argument("out_dir", metavar="OUT_DIR")
@click.option("--out", "c_dir", required=True, metavar="C_DIR", help="Directory for the generated C.")
@click.option("--prefix", default="model", show_default=True,
              help="C identifier prefix of the API (NAME_init, NAME_step_q, NAME_state).")
@click.option("--target", type=click.Choice(["portable", "cortex-m4", "cortex-m7", "cortex-m33", "cortex-m0plus",
                                             "riscv32"]),
              default="portable", show_default=True,
              help="Core the files are for: its CMake toolchain file and build line go in C_DIR, and the "
                   "code is also built, run and counted on it (flash size and --flash-budget too). "
                   "portable: a toolchain file for every core, measured on the host and Cortex-M4. "
                   "riscv32: rv32imac (ESP32-C3/C6, CH32V, GD32VF103), measured on QEMU's RISC-V virt board. "
                   "The C is the same for every core; cores with DSP take SMLAD paths at compile time.")
@click.option("--no-measure", is_flag=True, help="Only write the files: skip the host/QEMU build, check and count.")
@click.option("--ram-budget", type=click.IntRange(1), metavar="BYTES",
              help="Fail (and write nothing) if the model's RAM exceeds this.")
@click.option("--flash-budget", type=click.IntRange(1), metavar="BYTES",
              help="Fail (and write nothing) if the model's flash on the --target core (Cortex-M4 for "
                   "portable) exceeds this.")
@click.option("--tflm-dir", metavar="DIR", envvar="EDGEWAVE_TFLM_DIR", show_envvar=True,
              help="A TensorFlow Lite Micro tree (or a .tar.xz of one) to measure NAME_TENSOR_ARENA_SIZE on: "
                   "the smallest arena AllocateTensors accepts on the Cortex-M4 build with reference kernels "
                   "and with CMSIS-NN, under QEMU, plus 5 %. The first run builds the kernels the model needs "
                   "(a few minutes, cached). Without it the arena comes from TFLM's Python interpreter on "
                   "this 64-bit host, plus 25 % (as with --no-measure, which builds nothing).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object on stdout.")
@command
def emit_cmd(out_dir, c_dir, prefix, target, no_measure, ram_budget, flash_budget, tflm_dir, as_json):
    """Generate interpreter-free streaming C from a converted OUT_DIR.

    Writes NAME.h / NAME.c (const weights, one kernel call per op, all state in
    a user-owned NAME_state), the edgewave C runtime, TensorFlow Lite Micro glue
    (the .tflite as a C array, op resolver, arena size), a CMakeLists.txt and a
    README. Unless --no-measure, the code is compiled for the host and checked
    against the numpy integer engine, and when arm-none-eabi-gcc and
    qemu-system-arm are installed, run on an emulated Cortex-M4 to count
    instructions per sample (and on the --target core, e.g. riscv32 with
    riscv64-unknown-elf-gcc, picolibc and qemu-system-riscv32).
    """
    from .emit.pipeline import write_c

    report = write_c(out_dir, c_dir, prefix, target, measure=not no_measure, ram_budget=ram_budget,
                      flash_budget=flash_budget, tflm_dir=tflm_dir, progress=lambda m: click.echo(m, err=True))
    if as_json:
        print_json(report)
        return
    click.echo(f"wrote {len(report['files'])} files to {c_dir}")
    click.echo(f"  RAM {report['ram_bytes']} B (ring history {report['min_state_bytes']} B); "
               f"TFLite Micro would need {report['tflm_ram_bytes']} B (arena {report['tflm_arena_bytes']} B, measured "
               f"on {report['tflm_arena_measured_on']}, + state)")
    if "flash_bytes" in report:
        click.echo(f"  flash {report['flash_bytes']} B on {report['flash_core']} "
                   f"(model_stream.tflite is {report['tflite_bytes']} B)")
    if "m4_instructions_per_sample" in report:
        click.echo(f"  Cortex-M4: {report['m4_instructions_per_sample']} instructions/sample, "
                   f"{report['m4_instructions_per_mac']} per MAC ({report['macs_per_sample']} MACs)")
    key = f"{target.replace('cortex-', '')}_instructions_per_sample"  # --target's own count, e.g. on riscv32
    if target not in ("portable", "cortex-m4") and key in report:
        click.echo(f"  {target}: {report[key]} instructions/sample")


@main.command()
@click.argument("out_dir", metavar="OUT_DIR")
@click.option("--data", required=True, metavar="PATH", help="Signal to stream (WAV / .npy / .csv).")
@click.option("--backend", type=click.Choice(BACKEND_CHOICES), default="int", show_default=True,
              help="Where to run: keras/float (float reference), int (numpy integer engine), litert, tflm, "
                   "c (emitted C on this machine), qemu-m4/m7/m33 (emitted C on an emulated Cortex-M), "
                   "qemu-rv32 (on an emulated rv32imac).")
@click.option("--compare", multiple=True, type=click.Choice(BACKEND_CHOICES), metavar="BACKEND",
              help="Also run these backends and report the LSB difference to each (repeatable).")
@click.option("--limit", type=click.IntRange(1), help="Only the first N samples.")
@click.option("--channel", type=click.IntRange(0), help="Channel to use from multi-channel files.")
@click.option("--plot", "plot_path", metavar="FILE.png", help="Draw signal, predictions, error and its histogram.")
@click.option("--generate", type=click.IntRange(1), metavar="N",
              help="After streaming the data (the priming), generate N samples by feeding predictions back.")
@click.option("--out", "gen_out", metavar="FILE.wav", help="Where --generate writes its samples.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for sampling in --generate.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object on stdout.")
@command
def simulate(out_dir, data, backend, compare, limit, channel, plot_path, generate, gen_out, seed,
             as_json):
    """Stream a signal sample by sample through a converted model, as the device will.

    Reports the prediction gain against the signal, the SNR of the prediction
    against the float model's, the LSB difference to every --compare backend,
    time per sample (desktop backends) or exact instructions per sample (QEMU),
    and RAM/flash of the emitted C.
    """
    from . import simulate as sim

    if generate and not gen_out:
        raise UserError("--generate needs --out FILE.wav for the generated samples")
    conv = sim.Converted.load(out_dir)
    try:
        x = sim.load_data(conv, data, channel, limit)
        names = [backend] + [b for b in compare if b != backend]
        if "float" not in names:
            names.append("float")
        results = {}
        for name in names:
            results[name] = sim.run_backend(name, conv, x, sim.progress_printer(name, len(x), as_json))
        float_pred = sim.predictions(conv, results["float"])
        main_res = results[backend]
        report = sim.compare(conv, main_res, [results[b] for b in compare if b != backend], x, float_pred)
        report["backends"] = {name: res.extra for name, res in results.items()}
        rf = conv.manifest["receptive_field"]
        pred = sim.predictions(conv, main_res)
        norm = conv.manifest["normalization"]
        if plot_path:
            from .plot import plot

            shown = {backend: pred, **{b: sim.predictions(conv, results[b]) for b in compare if b != backend}}
            plot(plot_path, x, shown, rf, conv.manifest.get("sample_rate"), norm["scale"], norm["offset"])
            report["plot"] = plot_path
        if generate:
            from .signals import write_wav

            gen = sim.generate(conv, backend, x, generate, seed,
                               progress=sim.progress_printer(f"generate on {backend}", generate, as_json))
            rate = conv.manifest.get("sample_rate") or 16000
            write_wav(gen_out, gen * norm["scale"] + norm["offset"], rate)
            report["generated"] = {"file": gen_out, "samples": int(generate)}
    finally:
        sim.cleanup(conv)
    if as_json:
        print_json(report)
        return
    click.echo(f"{report['backend']}: {report['samples']} samples, prediction gain {report['prediction_gain_db']:.2f} dB"
               + (f", SNR vs float {report['snr_vs_float_db']:.1f} dB" if "snr_vs_float_db" in report else ""))
    for other, d in report["max_lsb_diff"].items():
        click.echo(f"  vs {other}: max {d:g}, mean {report['mean_lsb_diff'][other]:.3g} LSB")
    for key in ("us_per_sample", "instructions_per_sample", "ram_bytes", "flash_bytes", "anomalies", "plot"):
        if key in report:
            click.echo(f"  {key.replace('_', ' ')}: {report[key]}")


@main.command()
@click.argument("out_dir", metavar="OUT_DIR")
@click.option("--data", required=True, metavar="PATH", help="Recording to lose frames of (WAV at the model's rate).")
@click.option("--loss", required=True, type=float, metavar="P",
              help="Share of frames lost, in [0, 1): each frame independently, or in bursts with --burst.")
@click.option("--frame-ms", required=True, type=float, metavar="F", help="Frame (packet) length in ms, e.g. 20.")
@click.option("--burst", type=float, metavar="B",
              help="Mean burst length in frames: losses follow a Gilbert-Elliott model with this mean burst "
                   "and the --loss rate.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the loss pattern.")
@click.option("--limit", type=click.IntRange(1), help="Only the first N samples.")
@click.option("--channel", type=click.IntRange(0), help="Channel to use from multi-channel files.")
@click.option("--backend", type=click.Choice(JOB_BACKENDS), default="int",
              show_default=True,
              help="Where the model conceals: float or int (numpy engines), c (the emitted C, NAME_conceal, on "
                   "this machine), qemu-m4/m7/m33/rv32 (the same C on an emulated Cortex-M or rv32imac; reports "
                   "instructions per concealed sample).")
@click.option("--fade-ms", type=click.FloatRange(min=0, min_open=True), default=4.0, show_default=True,
              help="Length of the cross-fade from the model's continuation back into the received signal.")
@click.option("--out", "wav_out", required=True, metavar="FILE.wav",
              help="The whole signal with the lost frames concealed, 16-bit PCM at the model's rate.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object on stdout.")
@command
def conceal(out_dir, data, loss, frame_ms, burst, seed, limit, channel, backend, fade_ms, wav_out, as_json):
    """Lose frames of a recording and conceal them with the model, against the classic concealers.

    \b
    During a gap the model runs on its own predictions (its ring state goes on
    through the gap, as on the device), then cross-fades back into the received
    signal. On the same lost frames, in the same run: zero fill, previous-frame
    repetition and ITU-T G.711 Appendix I (pitch-period replication). Scores:
    PESQ (ITU-T P.862: narrowband at 8 kHz, wideband at 16 kHz), STOI, and the
    SNR over the lost frames, all on the 16-bit signal as written.

    \b
    Example, 10 % of 20 ms frames lost, and bursts of 3 frames on average:
      edgewave conceal out/ --data call.wav --loss 0.1 --frame-ms 20 --out concealed.wav
      edgewave conceal out/ --data call.wav --loss 0.1 --frame-ms 20 --burst 3 --out bursty.wav
    """
    from .conceal import conceal as run_conceal
    from .conceal import human_report

    show(run_conceal(out_dir, data, loss=loss, frame_ms=frame_ms, burst=burst, seed=seed, limit=limit,
                     backend=backend, out=wav_out, channel=channel, fade_ms=fade_ms), as_json, human_report)


@main.command()
@click.argument("out_dir", metavar="OUT_DIR")
@click.option("--data", required=True, metavar="PATH", help="Recording to score (WAV at the model's rate).")
@click.option("--labels", "labels_path", metavar="FILE",
              help="Ground truth: a text file with one 0 (normal) or 1 (anomalous) per sample of --data. "
                   "With it, AUC, detection delay and false alarms are reported, with the baselines'.")
@click.option("--calibrate", "calibrate_path", metavar="PATH",
              help="A normal recording to calibrate the score's level and threshold on (default: the first "
                   "20 % of --data, assumed normal).")
@click.option("--backend", type=click.Choice(JOB_BACKENDS), default="int",
              show_default=True,
              help="Where the model scores: float or int (numpy engines), c (the emitted C, NAME_score_step, "
                   "on this machine), qemu-m4/m7/m33/rv32 (the same C on an emulated Cortex-M or rv32imac).")
@click.option("--window-ms", type=float, default=500.0, show_default=True,
              help="Smoothing window of the squared prediction error (a causal moving average).")
@click.option("--false-alarm-rate", type=float, default=0.001, show_default=True, metavar="R",
              help="Share of normal calibration samples allowed above the threshold.")
@click.option("--channel", type=click.IntRange(0), help="Channel to use from multi-channel files.")
@click.option("--out", "csv_out", metavar="FILE.csv", help="Per-sample signal, score, alarm (and label).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object on stdout.")
@command
def anomaly(out_dir, data, labels_path, calibrate_path, backend, window_ms, false_alarm_rate, channel, csv_out,
            as_json):
    """Raise an alarm where a signal stops looking like itself.

    \b
    Score: the causal moving average of the model's squared one-step prediction
    error over --window-ms, as |ln(energy / normal level)|: far from normal in
    either direction (unpredictable: noise, gain jumps, a distorted shape; or
    too predictable: a flatline, a stuck sensor). Level and threshold come from
    normal data (--calibrate, or the first 20 % of --data) and the target
    --false-alarm-rate. Baselines with the same smoothing and calibration:
    LPC-32 fitted on the same normal data, and a moving z-score of the signal.
    On integer backends the error is in input codes, so the device computes the
    same window sums (NAME_score_step).

    \b
    Example:
      edgewave anomaly out/ --data pump.wav --labels pump_labels.txt --json
    """
    from .anomaly.detect import detect, human_report

    show(detect(out_dir, data, labels_path=labels_path, backend=backend, window_ms=window_ms,
                false_alarm_rate=false_alarm_rate, calibrate_path=calibrate_path, out=csv_out, channel=channel),
         as_json, human_report)


@main.command()
@click.option("--out", default="runs/demo", show_default=True, metavar="DIR", help="Where every step writes.")
@click.option("--precision", type=click.Choice(["int16x8", "int8"]), default="int16x8", show_default=True,
              help="Precision to convert to.")
@click.option("--samples", type=click.IntRange(1000), default=20000, show_default=True,
              help="How many samples (the end of the recording, holding the test split) to simulate.")
@click.option("--data", metavar="PATH", help="Recording to train and simulate on (default: the bundled one).")
@click.option("--spec", "spec_path", metavar="SPEC.toml", help="Model spec (default: `edgewave spec`).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for training.")
@command
def demo(out, precision, samples, data, spec_path, seed):
    """The whole pipeline on one recording: train, convert, emit, build, simulate, conceal, results.

    The default recording is real 8 kHz telephony speech (bundled). Every integer
    backend (numpy engine, LiteRT, TFLite Micro, the emitted C on this machine
    and on an emulated Cortex-M4) must compute the same numbers, and concealing
    10 % lost 20 ms frames must write the same WAV on the C as on the engine; if
    any differs, the tables are printed and the demo exits with status 2.
    """
    from . import demo as demo_mod

    result = demo_mod.run(out, precision, samples, seed, data=data, spec_path=spec_path,
                          say=lambda line: click.echo(line, err=True))
    click.echo("")
    for line in result.summary:
        click.echo(line)
    click.echo("")
    for line in demo_mod.table(result):
        click.echo(line)
    click.echo("")
    for line in demo_mod.conceal_table(result):
        click.echo(line)
    demo_mod.check(result)
    click.echo(f"\nEvery integer backend equals the numpy engine (0 LSB). Total {result.seconds:.0f} s; "
               f"outputs in {result.out}/")


@main.command("spec")
@command
def spec_cmd():
    """Print the default model spec (TOML), a starting point for --spec."""
    from . import spec as spec_mod

    click.echo(spec_mod.default_text(), nl=False)


if __name__ == "__main__":
    main()
