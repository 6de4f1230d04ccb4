"""Training: spec -> Keras model fitted on the train split, scored on the test split.

Training over several processes is in `cluster`, resuming an interrupted fit in `resume`."""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from . import dataset, lpc, modeldir, resume
from .cluster import (LOCAL, agree, configure_devices, make_strategy, multi_worker_fit_workaround, role, shard,
                      whole_replica_batches)
from .errors import UserError
from .graph import Graph
from .metrics import mulaw_decode, prediction_gain_db
from .spec import Spec, to_graph

LPC_ORDER = 32

# Feedback-loop fine-tuning (`--horizon`): epochs of `steps_per_epoch` free-run batches, early-stopped on the
# validation value of the same loss (free-run MSE + the one-step MSE on the same windows, which keeps one-step gain).
HORIZON_EPOCHS = 12
HORIZON_PATIENCE = 4
HORIZON_LR_FACTOR = 1 / 3  # of the spec's learning rate (1e-3 for the default spec): a fine-tune
HORIZON_ONE_STEP = 0.5    # weight of the teacher-forced loss next to the free-run loss
HORIZON_SPECTRAL = 0.0    # weight of a log-spectral (phase-free) loss on the generated samples
HORIZON_VAL_WINDOWS = 64


class _Progress:
    """Keras callback: one line per epoch on stderr (stdout stays clean for --json)."""

    def __new__(cls, epochs: int, max_minutes: float | None, quiet: bool, strategy=None):
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
                if max_minutes is not None and agree(strategy, elapsed > 60 * max_minutes):
                    if not quiet:
                        print(f"time limit of {max_minutes:g} min reached; stopping", file=sys.stderr)
                    self.model.stop_training = True

        return Progress()


def fit(spec: Spec, data: str, *, channel: int | None = None, epochs: int | None = None,
        max_minutes: float | None = None, seed: int = 0, cpu_devices: int = 1, quiet: bool = False,
        steps_per_epoch: int | None = None, horizon: int | None = None, init: str | None = None,
        horizon_options: dict | None = None, backup: str | Path | None = None) -> tuple[object, Graph, dict]:
    """Train `spec` on `data`; returns (keras model, graph with weights, metadata).

    `backup` (a directory, see `resume.backup_dir`) keeps the one-step fit's state after every epoch; a fit
    started again with the same arguments continues from there and ends with the same weights.

    `horizon` (samples) adds feedback-loop training after the one-step fit: see `fit_horizon`.
    `init` (a MODEL_DIR) starts from that model's weights; with `horizon`, only the feedback-loop
    phase runs then (the model is already a one-step predictor)."""
    who = role()  # a malformed TF_CONFIG is a one-line error before any TensorFlow work
    configure_devices(cpu_devices)
    import keras
    import tensorflow as tf

    from .frontend.build import build_model, get_weights

    graph = to_graph(spec)
    if horizon is not None and graph.head != "regression":
        raise UserError(f"--horizon trains through the feedback loop, which needs a differentiable output; "
                        f"the {graph.head!r} head feeds back an argmax. Use head = \"regression\"")
    if horizon is not None and horizon < 1:
        raise UserError(f"--horizon must be at least 1 sample, got {horizon}")
    cfg = {**spec.train}
    if epochs is not None:
        cfg["epochs"] = epochs
    if steps_per_epoch is not None:
        cfg["steps_per_epoch"] = steps_per_epoch
    rf = graph.receptive_field
    cfg["window"] = max(cfg["window"], 2 * rf)
    # A file's test split (its last 10 %) must outlast the first receptive field that scoring skips.
    sources = dataset.scan(data, channel, min_length=10 * (max(rf, LPC_ORDER) + 3))
    norm = dataset.norm_stats(sources, graph.head)

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    strategy = make_strategy()
    if cfg["batch"] < strategy.num_replicas_in_sync:
        raise UserError(f"[train] batch = {cfg['batch']} is split over {strategy.num_replicas_in_sync} replicas "
                        "(workers times --cpu-devices); use a batch of at least one window per replica")
    with strategy.scope():
        model = build_model(graph)
        if init is not None:
            _load_init(model, graph, init)
        loss = (keras.losses.SparseCategoricalCrossentropy(from_logits=True) if graph.head == "mulaw"
                else keras.losses.MeanSquaredError())
        # Cosine decay: the last epochs refine at a small step.
        schedule = keras.optimizers.schedules.CosineDecay(cfg["learning_rate"], cfg["epochs"] * cfg["steps_per_epoch"],
                                                          alpha=0.02)
        model.compile(optimizer=keras.optimizers.Adam(schedule, clipnorm=1.0), loss=loss)
        if backup is not None:
            backup = resume.Backup(backup, resume.fingerprint(graph, cfg, seed, sources, channel,
                                                              strategy.num_replicas_in_sync, init))
        restored = backup.load(model, quiet) if backup is not None else None
    if who is not LOCAL:
        multi_worker_fit_workaround(model, strategy)
    start = 0
    if restored:
        start = cfg["epochs"] if restored["stopped"] else restored["epoch"]
        if not quiet:
            print(f"resuming from {backup.path}: {restored['epoch']} epoch(s) done", file=sys.stderr, flush=True)
    args = (norm, cfg["window"], cfg["batch"])
    # Skip the batches the completed epochs fitted: the seeded stream then goes on where it stopped.
    train = dataset.train_dataset(sources, *args, seed, graph.head, graph.mulaw_bits).skip(start * cfg["steps_per_epoch"])
    val = dataset.eval_dataset(sources, *args[:1], 1, cfg["window"], cfg["batch"], graph.head, graph.mulaw_bits)
    # The first rf-1 outputs of a window see zero padding instead of signal; a streaming model never does.
    # Leave them out of the loss so every step fits the full-context prediction that is deployed and scored.
    mask = tf.constant(np.arange(cfg["window"]) >= rf - 1, tf.float32)[None, :]
    train, val = (d.map(lambda x, y: (x, y, tf.broadcast_to(mask, tf.shape(y)[:2]))) for d in (train, val))
    val = whole_replica_batches(val, strategy, cfg["batch"])
    if who is not LOCAL:
        train, val = shard(train, val)
    early = keras.callbacks.EarlyStopping("val_loss", patience=cfg["patience"], restore_best_weights=True)
    record = resume.history_callback(backup, early, restored)
    callbacks = [early, _Progress(cfg["epochs"], max_minutes, quiet, strategy), record]
    t0 = time.monotonic()
    if init is not None and horizon is not None:
        history = {"loss": [], "val_loss": []}
    else:
        model.fit(train, validation_data=val, epochs=cfg["epochs"], steps_per_epoch=cfg["steps_per_epoch"],
                  callbacks=callbacks, verbose=0, initial_epoch=start)
        history = record.history
    seconds = time.monotonic() - t0
    # Samples this run's one-step epochs fitted (the windows of every batch they ran), per second of fitting.
    ran = len(history["loss"]) - (len(restored["history"]["loss"]) if restored else 0)
    fitted = ran * cfg["steps_per_epoch"] * cfg["batch"] * cfg["window"]
    samples_per_second = fitted / seconds if fitted and seconds > 0 else None
    seconds += restored["seconds"] if restored else 0.0
    horizon_meta = None
    if horizon is not None:
        horizon_meta = fit_horizon(model, graph, sources, norm, cfg, horizon, strategy, seed=seed, max_minutes=max_minutes,
                                   quiet=quiet, **(horizon_options or {}))
        seconds += horizon_meta["seconds"]
    graph.weights = get_weights(model, graph)

    metrics = evaluate(graph, model, sources, norm)
    meta = {
        "normalization": norm.to_dict(),
        "sample_rate": sources[0].sample_rate,
        "receptive_field": rf,
        "data": {"sources": [s.path for s in sources], "channel": channel,
                 "samples": sum(s.length for s in sources),
                 "split": {"train": 0.8, "validation": 0.1, "test": 0.1}},
        "training": {**cfg, "seed": seed, "epochs_run": len(history["loss"]),
                     "seconds": round(seconds, 1), "replicas": strategy.num_replicas_in_sync,
                     "workers": who.workers,
                     "samples_per_second": round(samples_per_second) if samples_per_second else None,
                     "files": len(sources),
                     "best_val_loss": float(min(history.get("val_loss") or [np.nan]))},
        "metrics": metrics,
    }
    if init is not None:
        meta["training"]["init"] = str(init)
    if restored:
        meta["training"]["resumed_after_epoch"] = restored["epoch"]
    if horizon_meta is not None:
        meta["training"]["horizon"] = horizon_meta
    return model, graph, meta


def _load_init(model, graph: Graph, init: str) -> None:
    """Copy the weights of a trained MODEL_DIR into `model` (built from the same spec)."""
    from .frontend.build import set_weights

    init_graph, _ = modeldir.load(init)
    mine = {n.name: (n.op, n.channels, n.kernel, n.dilation) for n in graph.nodes}
    theirs = {n.name: (n.op, n.channels, n.kernel, n.dilation) for n in init_graph.nodes}
    if mine != theirs:
        raise UserError(f"--init {init} was trained from another spec; pass the same --spec it was trained with")
    graph.weights = init_graph.weights
    set_weights(model, graph)


def fit_horizon(model, graph: Graph, sources, norm, cfg: dict, horizon: int, strategy, *, seed: int = 0,
                max_minutes: float | None = None, quiet: bool = False, epochs: int = HORIZON_EPOCHS,
                steps_per_epoch: int | None = None, learning_rate: float | None = None,
                one_step: float = HORIZON_ONE_STEP, spectral: float = HORIZON_SPECTRAL,
                patience: int = HORIZON_PATIENCE, val_windows: int = HORIZON_VAL_WINDOWS) -> dict:
    """Fine-tune `model` through its own feedback loop (in place); returns the phase's metadata.

    Each training window holds rf real samples of context and the next `horizon` samples. From the
    context the model predicts sample rf, that prediction becomes its next input, and so on for
    `horizon` steps, exactly as it runs through a lost frame (each step re-runs the causal model on
    the last rf samples, which is all its next output can see). The loss is the MSE of the generated
    samples against the real ones, plus `one_step` times the ordinary teacher-forced MSE on the same
    window, plus `spectral` times a log-magnitude STFT distance of the generated stretch (which does
    not punish a continuation for drifting out of phase, only for losing its spectrum or energy).
    The weights with the best validation value of this loss are kept (the starting ones if none is better).
    """
    import keras
    import tensorflow as tf

    rf = graph.receptive_field
    steps = steps_per_epoch or cfg["steps_per_epoch"]
    lr = learning_rate if learning_rate is not None else cfg["learning_rate"] * HORIZON_LR_FACTOR
    window = rf + horizon - 1  # inputs; the targets of the last `horizon` outputs end one sample later
    train = dataset.train_dataset(sources, norm, window, cfg["batch"], seed + 1, graph.head, graph.mulaw_bits)
    val = dataset.eval_dataset(sources, norm, 1, window, cfg["batch"], graph.head, graph.mulaw_bits,
                               limit=val_windows)
    with strategy.scope():
        optimizer = keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(lr, epochs * steps, alpha=0.1),
                                          clipnorm=1.0)
        optimizer.build(model.trainable_variables)
    replicas = strategy.num_replicas_in_sync
    frame = min(64, horizon)

    def free_run(x):
        ctx = x[:, :rf, :]
        out = tf.TensorArray(tf.float32, size=horizon)
        for k in tf.range(horizon):
            y = model(ctx, training=False)[:, -1:, :]
            out = out.write(k, y[:, 0, 0])
            ctx = tf.concat([ctx[:, 1:, :], y], axis=1)
        return tf.transpose(out.stack())  # [batch, horizon]

    def losses(x, y, training=True):
        target = y[:, rf - 1:, 0]
        gen = free_run(x)
        free = tf.reduce_mean(tf.square(gen - target))
        teacher = tf.reduce_mean(tf.square(model(x, training=training)[:, rf - 1:, 0] - target))
        total = free + one_step * teacher
        if spectral > 0:
            spec = lambda s: tf.math.log(tf.abs(tf.signal.stft(s, frame, max(1, frame // 4), fft_length=frame)) + 1e-3)
            total += spectral * tf.reduce_mean(tf.abs(spec(gen) - spec(target)))
        return total, free

    def replica_step(x, y):
        with tf.GradientTape() as tape:
            total, free = losses(x, y)
            scaled = total / replicas  # gradients are summed over replicas
        grads = tape.gradient(scaled, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)
        return total, free

    @tf.function(reduce_retracing=True)
    def train_step(x, y):
        total, free = strategy.run(replica_step, args=(x, y))
        mean = tf.distribute.ReduceOp.MEAN
        return strategy.reduce(mean, total, axis=None), strategy.reduce(mean, free, axis=None)

    @tf.function(reduce_retracing=True)
    def val_step(x, y):
        return losses(x, y, training=False)

    def validate():
        """(the training objective, its free-run MSE part) on the validation windows."""
        run = [val_step(x, y) for x, y in val]
        return float(np.mean([float(t) for t, _ in run])), float(np.mean([float(f) for _, f in run]))

    t0 = time.monotonic()
    best, before = validate()
    best_free, best_weights, waited, history = before, model.get_weights(), 0, []
    if not quiet:
        print(f"horizon {horizon}: validation loss {best:.5f} (free-run MSE {before:.5f}) before fine-tuning",
              file=sys.stderr, flush=True)
    batches = iter(strategy.experimental_distribute_dataset(train))
    for epoch in range(epochs):
        run = [train_step(*next(batches)) for _ in range(steps)]
        loss = float(np.mean([float(t) for t, _ in run]))
        val_loss, val_free = validate()
        history.append(val_loss)
        elapsed = time.monotonic() - t0
        if not quiet:
            print(f"horizon epoch {epoch + 1}/{epochs}  loss {loss:.5f}  val_loss {val_loss:.5f}  "
                  f"val_free_run {val_free:.5f}  {elapsed:.0f} s", file=sys.stderr, flush=True)
        if val_loss < best:
            best, best_free, best_weights, waited = val_loss, val_free, model.get_weights(), 0
        else:
            waited += 1
        if waited >= patience:
            break
        if max_minutes is not None and agree(strategy, elapsed > 60 * max_minutes):
            if not quiet:
                print(f"time limit of {max_minutes:g} min reached; stopping", file=sys.stderr)
            break
    model.set_weights(best_weights)
    return {"samples": horizon, "epochs_run": len(history), "steps_per_epoch": steps, "learning_rate": lr,
            "one_step_weight": one_step, "spectral_weight": spectral, "seconds": round(time.monotonic() - t0, 1),
            "val_free_run_loss_before": round(before, 6), "val_free_run_loss": round(best_free, 6),
            "best_val_loss": round(best, 6)}


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
    """Write MODEL_DIR, then drop the resumable state (`resume.backup_dir`). In a cluster only the chief writes
    OUT; the other workers save to a temporary directory that is deleted (as in TensorFlow's multi-worker
    guide, every worker saves)."""
    who = role()
    if who.chief:
        modeldir.save(out, model, graph, meta)
    else:
        with tempfile.TemporaryDirectory(prefix="edgewave-worker-") as tmp:
            modeldir.save(Path(tmp) / "model", model, graph, meta)
    shutil.rmtree(resume.backup_dir(out, who), ignore_errors=True)
