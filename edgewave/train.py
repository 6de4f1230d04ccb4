"""Training: spec -> Keras model fitted on the train split, scored on the test split."""

from __future__ import annotations

import os
import sys
import time

import numpy as np

from . import dataset, lpc, modeldir
from .errors import UserError
from .graph import Graph
from .metrics import mulaw_decode, prediction_gain_db
from .spec import Spec, to_graph
from .tfimport import tensorflow

LPC_ORDER = 32


def configure_devices(cpu_devices: int) -> None:
    """Split the CPU into logical devices (tests distributed training without GPUs)."""
    tf = tensorflow()

    if cpu_devices > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * cpu_devices)


def make_strategy():
    """MultiWorkerMirrored when TF_CONFIG describes a cluster, else Mirrored over local devices."""
    import tensorflow as tf

    if os.environ.get("TF_CONFIG"):
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    devices = gpus or tf.config.list_logical_devices("CPU")
    return tf.distribute.MirroredStrategy(devices=[d.name for d in devices])


class _Progress:
    """Keras callback: one line per epoch on stderr (stdout stays clean for --json)."""

    def __new__(cls, epochs: int, max_minutes: float | None, quiet: bool):
        import keras

        class Progress(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                self.t0 = time.monotonic()

            def on_epoch_end(self, epoch, logs=None):
                logs = logs or {}
                elapsed = time.monotonic() - self.t0
                if not quiet:
                    print(f"epoch {epoch + 1}/{epochs}  loss {logs.get('loss', float('nan')):.5f}  "
                          f"val_loss {logs.get('val_loss', float('nan')):.5f}  {elapsed:.0f} s",
                          file=sys.stderr, flush=True)
                if max_minutes is not None and elapsed > 60 * max_minutes:
                    if not quiet:
                        print(f"time limit of {max_minutes:g} min reached; stopping", file=sys.stderr)
                    self.model.stop_training = True

        return Progress()


def fit(spec: Spec, data: str, *, channel: int | None = None, epochs: int | None = None,
        max_minutes: float | None = None, seed: int = 0, cpu_devices: int = 1, quiet: bool = False,
        steps_per_epoch: int | None = None) -> tuple[object, Graph, dict]:
    """Train `spec` on `data`; returns (keras model, graph with weights, metadata)."""
    configure_devices(cpu_devices)
    import keras
    import tensorflow as tf

    from .frontend.build import build_model, get_weights

    graph = to_graph(spec)
    cfg = {**spec.train}
    if epochs is not None:
        cfg["epochs"] = epochs
    if steps_per_epoch is not None:
        cfg["steps_per_epoch"] = steps_per_epoch
    rf = graph.receptive_field
    cfg["window"] = max(cfg["window"], 2 * rf)
    sources = dataset.scan(data, channel, min_length=10 * rf)
    norm = dataset.norm_stats(sources, graph.head)

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    strategy = make_strategy()
    with strategy.scope():
        model = build_model(graph)
        loss = (keras.losses.SparseCategoricalCrossentropy(from_logits=True) if graph.head == "mulaw"
                else keras.losses.MeanSquaredError())
        # Cosine decay: the last epochs refine at a small step.
        schedule = keras.optimizers.schedules.CosineDecay(cfg["learning_rate"], cfg["epochs"] * cfg["steps_per_epoch"],
                                                          alpha=0.02)
        model.compile(optimizer=keras.optimizers.Adam(schedule, clipnorm=1.0), loss=loss)
    args = (norm, cfg["window"], cfg["batch"])
    train = dataset.train_dataset(sources, *args, seed, graph.head, graph.mulaw_bits)
    val = dataset.eval_dataset(sources, *args[:1], 1, cfg["window"], cfg["batch"], graph.head, graph.mulaw_bits)
    # The first rf-1 outputs of a window see zero padding instead of signal; a streaming model never does.
    # Leave them out of the loss so every step fits the full-context prediction that is deployed and scored.
    mask = tf.constant(np.arange(cfg["window"]) >= rf - 1, tf.float32)[None, :]
    train, val = (d.map(lambda x, y: (x, y, tf.broadcast_to(mask, tf.shape(y)[:2]))) for d in (train, val))
    callbacks = [keras.callbacks.EarlyStopping("val_loss", patience=cfg["patience"], restore_best_weights=True),
                 _Progress(cfg["epochs"], max_minutes, quiet)]
    t0 = time.monotonic()
    history = model.fit(train, validation_data=val, epochs=cfg["epochs"], steps_per_epoch=cfg["steps_per_epoch"],
                        callbacks=callbacks, verbose=0)
    seconds = time.monotonic() - t0
    graph.weights = get_weights(model, graph)

    metrics = evaluate(graph, model, sources, norm)
    meta = {
        "normalization": norm.to_dict(),
        "sample_rate": sources[0].sample_rate,
        "receptive_field": rf,
        "data": {"sources": [s.path for s in sources], "channel": channel,
                 "samples": sum(s.length for s in sources),
                 "split": {"train": 0.8, "validation": 0.1, "test": 0.1}},
        "training": {**cfg, "seed": seed, "epochs_run": len(history.history["loss"]),
                     "seconds": round(seconds, 1), "replicas": strategy.num_replicas_in_sync,
                     "best_val_loss": float(min(history.history.get("val_loss", [np.nan])))},
        "metrics": metrics,
    }
    return model, graph, meta


def predict_sequence(model, x: np.ndarray, rf: int, chunk: int = 1 << 16) -> np.ndarray:
    """Model outputs for a long normalised signal, chunk by chunk with rf-1 samples of context."""
    outs = []
    for start in range(0, len(x), chunk):
        lo = max(0, start - (rf - 1))
        y = model(x[None, lo:start + chunk, None], training=False)
        outs.append(np.asarray(y)[0, start - lo:])
    return np.concatenate(outs)


def to_value(graph: Graph, out: np.ndarray) -> np.ndarray:
    """Model output -> predicted normalised sample (argmax level for the categorical head)."""
    if graph.head == "mulaw":
        return mulaw_decode(np.argmax(out, axis=-1), graph.mulaw_bits)
    return out[..., 0]


def evaluate(graph: Graph, model, sources, norm) -> dict:
    """Held-out prediction gain of the model and of LPC-32, skipping the first receptive field."""
    rf = graph.receptive_field
    skip = max(rf, LPC_ORDER)  # score both predictors on the same samples
    coeffs = lpc.fit(((b - norm.offset) / norm.scale for s in sources for b in s.blocks(0)), LPC_ORDER)
    targets, preds, lpc_preds = [], [], []
    for src in sources:
        x = (src.read(src.splits[2].start, src.splits[2].stop) - norm.offset) / norm.scale
        if len(x) <= skip + 1:
            raise UserError(f"{src.path}: the test split ({len(x)} samples) is shorter than the receptive field "
                            f"({rf}); use a longer recording")
        pred = to_value(graph, predict_sequence(model, x, rf))
        targets.append(x[skip:])
        preds.append(pred[skip - 1:-1])                             # output at t predicts x[t+1]
        lpc_preds.append(lpc.predict(x, coeffs)[skip - LPC_ORDER:])  # predictions of x[t], t >= order
    target = np.concatenate(targets)
    return {"prediction_gain_db": round(prediction_gain_db(target, np.concatenate(preds)), 3),
            "lpc32_gain_db": round(prediction_gain_db(target, np.concatenate(lpc_preds)), 3),
            "test_samples": int(len(target))}


def save(out: str, model, graph: Graph, meta: dict) -> None:
    modeldir.save(out, model, graph, meta)
