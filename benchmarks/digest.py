"""Digests of everything edgewave generates for a fixed set of models: the default spec and random
architectures, in int8 and int16x8 — the streaming and full-window .tflite, and every file `emit` renders.
A refactor that must change no output compares the digests before and after:

    python benchmarks/digest.py --write before.json
    ...                                              # the refactor
    python benchmarks/digest.py --check before.json  # exit 1, naming the files that changed

Weights are random (numpy, seeded), calibrated on the bundled recording; nothing is trained, so a run takes
about a minute.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import sys
import tomllib
from pathlib import Path

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH_DIR))

RANDOM_SPECS = 20
SEED = 5


def models() -> dict[str, dict]:
    import cost_model

    rng = np.random.default_rng(SEED)
    default = tomllib.loads((ROOT / "edgewave" / "specs" / "default.toml").read_text())
    return {"default": default, **{f"random-{i:02d}": cost_model.random_spec(rng) for i in range(RANDOM_SPECS)}}


def random_weights(graph, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    by = graph.by_name
    weights = {}
    for n in graph.nodes:
        if n.op == "conv":
            cin = by[n.inputs[0]].channels
            kernel = rng.normal(0, 1 / np.sqrt(n.kernel * cin), (n.kernel, cin, n.channels)).astype(np.float32)
            bias = rng.normal(0, 0.3, n.channels).astype(np.float32) if n.use_bias else None
            weights[n.name] = (kernel, bias)
    return weights


def digests() -> dict[str, str]:
    from edgewave import signals
    from edgewave import spec as spec_mod
    from edgewave.convert import export, pipeline
    from edgewave.emit import pipeline as emit_pipeline

    x = signals.load_signal(str(ROOT / "edgewave" / "data" / "speech8k_fr.wav")).samples / 0.1
    out = {}
    for i, (name, spec) in enumerate(models().items()):
        graph = spec_mod.to_graph(spec_mod.parse(copy.deepcopy(spec), source=name))
        graph.weights = random_weights(graph, i)
        for precision in ("int8", "int16x8"):
            _, prog = pipeline.build(graph, x[:8000], precision)
            stream = export.stream_model(prog)
            files = {"model_stream.tflite": stream, "model_full.tflite": export.full_model(prog, 256)}
            rendered, _ = emit_pipeline.render({"receptive_field": graph.receptive_field,
                                                "normalization": {"offset": 0.0, "scale": 1.0}, "sample_rate": 8000},
                                               prog, stream, "model")
            files.update({rel: text.encode() for rel, text in rendered.items()})
            for rel, blob in files.items():
                out[f"{name} {precision} {rel}"] = hashlib.sha256(blob).hexdigest()
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    group = ap.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", type=Path, metavar="FILE.json", help="write the digests")
    group.add_argument("--check", type=Path, metavar="FILE.json", help="compare with digests written before")
    args = ap.parse_args(argv)
    now = digests()
    if args.write:
        args.write.write_text(json.dumps(now, indent=1, sort_keys=True) + "\n")
        print(f"{len(now)} digests of {len(models())} models written to {args.write}")
        return 0
    before = json.loads(args.check.read_text())
    changed = sorted(k for k in before.keys() | now.keys() if before.get(k) != now.get(k))
    for k in changed[:20]:
        print(f"differs: {k}")
    print(f"{len(now) - len(changed)} of {len(before.keys() | now.keys())} outputs identical")
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())
