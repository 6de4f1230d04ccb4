"""MODEL_DIR: the trained Keras model plus everything later steps need to know about it."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from . import __version__
from .errors import UserError
from .graph import Graph

MODEL_FILE = "model.keras"
META_FILE = "edgewave.json"


def check_output_dir(out: str | Path, marker: str) -> Path:
    """Refuse an output directory we must not replace, before any long work starts.

    An existing `out` is replaced only if it holds `marker` (our own earlier
    output); anything else is left alone with an error, never half-overwritten.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} exists and is a file; choose another output directory")
    if out.is_dir() and any(out.iterdir()) and not (out / marker).is_file():
        raise UserError(f"{out} exists and was not written by edgewave; choose an empty or new directory")
    parent = next((p for p in (out.absolute(), *out.absolute().parents) if p.exists()), None)
    if parent is None or not parent.is_dir() or not os.access(parent, os.W_OK):
        raise UserError(f"cannot write to {out}: {parent} is not a writable directory; choose another output path")
    return out


@contextmanager
def atomic_dir(out: str | Path, marker: str):
    """Build a directory under a temporary name and move it into place only on success."""
    out = check_output_dir(out, marker)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    except OSError as e:
        raise UserError(f"cannot write to {out.parent} ({e.strerror}); choose a writable output directory")
    try:
        yield tmp
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def save(out: str | Path, model, graph: Graph, meta: dict) -> None:
    with atomic_dir(out, META_FILE) as tmp:
        model.save(tmp / MODEL_FILE)
        meta = {"edgewave_version": __version__, "graph": graph.to_dict(), **meta}
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")


def load(path: str | Path) -> tuple[Graph, dict]:
    """Graph with weights, and metadata, from a MODEL_DIR or a bare .keras file."""
    from .frontend.importer import import_model, load_keras

    path = Path(path)
    if path.is_dir():
        if not (path / META_FILE).is_file() or not (path / MODEL_FILE).is_file():
            raise UserError(f"{path} is not a MODEL_DIR (no {META_FILE} / {MODEL_FILE}); "
                            "create one with `edgewave train`")
        try:
            meta = json.loads((path / META_FILE).read_text())
        except ValueError:  # not UTF-8 or not JSON
            raise UserError(f"{path / META_FILE} is corrupt; retrain with `edgewave train`") from None
        graph = import_model(load_keras(path / MODEL_FILE))
        saved = Graph.from_dict(meta["graph"])
        for n in graph.nodes:  # keep the conceptual stride/dilation the spec was written with
            if n.name in saved.by_name:
                n.spec_stride = saved.node(n.name).spec_stride
                n.spec_dilation = saved.node(n.name).spec_dilation
        graph.head, graph.mulaw_bits = saved.head, saved.mulaw_bits
        return graph, meta
    graph = import_model(load_keras(path))
    return graph, {"edgewave_version": __version__, "graph": graph.to_dict()}
