"""Resumable training: the state of a one-step fit after every epoch, kept beside MODEL_DIR, restored by
a fit started again with the same arguments, and discarded when it belongs to another training."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .cluster import Role, role
from .graph import Graph


def backup_dir(out: str | Path, who: Role | None = None) -> Path:
    """Where `train --out OUT` keeps its resumable state: beside OUT, never inside it (OUT is written
    once, whole, by modeldir.atomic_dir). Each worker of a cluster keeps its own, so workers sharing
    a disk (or a machine) never write the same file."""
    out, who = Path(out).absolute(), who or role()
    return out.with_name(f".{out.name}.train" + ("" if who.chief else f"-worker{who.index}"))


class Backup:
    """The state of a one-step fit after its last completed epoch, in DIR/epoch-NNNN/: weights with the
    optimizer's state (its step count drives the learning-rate schedule), EarlyStopping's state and best
    weights, the history and training seconds so far. An epoch directory is written under a temporary
    name and renamed, so a kill leaves the previous complete one."""

    def __init__(self, path: Path, fingerprint: str):
        self.path, self.fingerprint = Path(path), fingerprint

    def _epochs(self) -> list[Path]:
        return sorted(self.path.glob("epoch-[0-9]*")) if self.path.is_dir() else []

    def load(self, model, quiet: bool) -> dict | None:
        """Restore the model from the latest epoch; its state dict, or None to start afresh."""
        found = self._epochs()
        if not found:
            return None
        state = json.loads((found[-1] / "state.json").read_text())
        if state.get("fingerprint") != self.fingerprint:
            if not quiet:
                print(f"{self.path} holds the state of another training (spec, data, seed or cluster); "
                      "starting afresh", file=sys.stderr)
            self.remove()
            return None
        model.optimizer.build(model.trainable_variables)  # so that its saved state has somewhere to go
        model.load_weights(found[-1] / "model.weights.h5")
        best = np.load(found[-1] / "best.npz")
        state["early"]["best_weights"] = [best[f"w{i}"] for i in range(len(best.files))] or None
        return state

    def save(self, model, early, state: dict) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".epoch.", dir=self.path))
        model.save_weights(tmp / "model.weights.h5")
        np.savez(tmp / "best.npz", **{f"w{i}": w for i, w in enumerate(early.best_weights or [])})
        early_state = {k: getattr(early, k) for k in ("wait", "stopped_epoch", "best", "best_epoch")}
        (tmp / "state.json").write_text(json.dumps({**state, "early": early_state, "fingerprint": self.fingerprint}))
        final = self.path / f"epoch-{state['epoch']:04d}"
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        for old in self._epochs():
            if old != final:
                shutil.rmtree(old, ignore_errors=True)

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def history_callback(backup: Backup | None, early, restored: dict | None):
    """Keras callback: the history of the whole fit (restored epochs included), saved with `backup` (if any) after
    every epoch."""
    import keras

    class Record(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.t0 = time.monotonic()
            self.history = dict(restored["history"]) if restored else {"loss": [], "val_loss": []}
            self.before = restored["seconds"] if restored else 0.0
            if restored:  # EarlyStopping.on_train_begin (an earlier callback) has just reset its state
                for k, v in restored["early"].items():
                    setattr(early, k, v)

        def on_epoch_end(self, epoch, logs=None):
            for k in self.history:
                self.history[k] = [*self.history[k], float((logs or {}).get(k, np.nan))]
            if backup is not None:
                backup.save(self.model, early, {"epoch": epoch + 1, "stopped": bool(self.model.stop_training),
                                                "history": self.history, "seconds": self.seconds()})

        def seconds(self) -> float:
            return self.before + time.monotonic() - self.t0

    return Record()


def fingerprint(graph: Graph, cfg: dict, seed: int, sources, channel, replicas: int, init) -> str:
    """What a resumed fit must share with the interrupted one for the two to be one fit."""
    what = {"graph": graph.to_dict(), "train": cfg, "seed": seed, "channel": channel, "replicas": replicas,
            "init": str(init) if init else None, "data": [[s.path, s.length] for s in sources]}
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()
