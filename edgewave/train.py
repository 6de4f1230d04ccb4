"""Training: spec -> Keras model fitted on the train split, scored on the test split."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import dataset, lpc, modeldir
from .errors import UserError
from .graph import Graph
from .metrics import mulaw_decode, prediction_gain_db
from .spec import Spec, to_graph
from .tfimport import tensorflow

LPC_ORDER = 32

# Feedback-loop fine-tuning (`--horizon`): epochs of `steps_per_epoch` free-run batches, early-stopped on the
# validation value of the same loss (free-run MSE + the one-step MSE on the same windows, which keeps one-step gain).
HORIZON_EPOCHS = 12
HORIZON_PATIENCE = 4
HORIZON_LR_FACTOR = 1 / 3  # of the spec's learning rate (1e-3 for the default spec): a fine-tune
HORIZON_ONE_STEP = 0.5    # weight of the teacher-forced loss next to the free-run loss
HORIZON_SPECTRAL = 0.0    # weight of a log-spectral (phase-free) loss on the generated samples
HORIZON_VAL_WINDOWS = 64


def configure_devices(cpu_devices: int) -> None:
    """Split the CPU into logical devices (tests distributed training without GPUs)."""
    tf = tensorflow()

    if cpu_devices > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * cpu_devices)


@dataclass(frozen=True)
class Role:
    """This process's place in a TF_CONFIG cluster."""
    workers: int
    index: int  # of this task in its job
    chief: bool  # writes MODEL_DIR; the other workers save to a temporary directory that is deleted


LOCAL = Role(workers=1, index=0, chief=True)


def parse_tf_config(text: str) -> Role:
    """Check a TF_CONFIG value and say where this process stands; a UserError names what is malformed.

    TensorFlow's own errors for these come late (or as a hang) and as tracebacks."""
    hint = ('; expected e.g. {"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
            '"task": {"type": "worker", "index": 0}}')
    try:
        cfg = json.loads(text)
    except ValueError as e:
        raise UserError(f"TF_CONFIG is not JSON ({e}){hint}") from None
    if not isinstance(cfg, dict) or not isinstance(cfg.get("cluster"), dict) or not isinstance(cfg.get("task"), dict):
        raise UserError(f"TF_CONFIG needs a \"cluster\" object and a \"task\" object{hint}")
    cluster, task = cfg["cluster"], cfg["task"]
    for job, addresses in cluster.items():
        if job not in ("chief", "worker"):
            raise UserError(f"TF_CONFIG cluster job {job!r} is not supported: training uses \"worker\" "
                            f"(and optionally one \"chief\") tasks{hint}")
        if not isinstance(addresses, list) or not addresses or not all(_is_address(a) for a in addresses):
            raise UserError(f"TF_CONFIG cluster {job!r} must be a non-empty list of \"host:port\" strings, "
                            f"got {json.dumps(addresses)}")
    if "worker" not in cluster and "chief" not in cluster:
        raise UserError(f"TF_CONFIG cluster lists no \"worker\" tasks{hint}")
    if len(cluster.get("chief", [])) > 1:
        raise UserError("TF_CONFIG cluster may have at most one \"chief\"")
    kind, index = task.get("type"), task.get("index")
    if kind not in cluster:
        raise UserError(f"TF_CONFIG task type {kind!r} is not a job of the cluster ({', '.join(cluster)})")
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(cluster[kind]):
        raise UserError(f"TF_CONFIG task index {index!r} is out of range: the cluster has {len(cluster[kind])} "
                        f"{kind!r} task(s), indices 0 to {len(cluster[kind]) - 1}")
    chief = kind == "chief" or (kind == "worker" and index == 0 and "chief" not in cluster)
    return Role(workers=sum(len(a) for a in cluster.values()), index=index, chief=chief)


def _is_address(a) -> bool:
    host, _, port = str(a).rpartition(":") if isinstance(a, str) else ("", "", "")
    return bool(host) and port.isdigit() and 0 < int(port) < 65536


def role() -> Role:
    """LOCAL without TF_CONFIG, else this task's Role (a malformed TF_CONFIG is a UserError)."""
    text = os.environ.get("TF_CONFIG", "").strip()
    return parse_tf_config(text) if text else LOCAL


def make_strategy():
    """MultiWorkerMirrored when TF_CONFIG describes a cluster, else Mirrored over local devices."""
    import tensorflow as tf

    if role() is not LOCAL:
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    devices = gpus or tf.config.list_logical_devices("CPU")
    return tf.distribute.MirroredStrategy(devices=[d.name for d in devices])


def _multi_worker_fit_workaround(model, strategy) -> None:
    """Let Keras 3 `fit` run under MultiWorkerMirroredStrategy (keras-team/keras#20585), in two places.

    Before the first step Keras builds the model symbolically from one batch, which it gets by
    `strategy.reduce("MEAN", batch)` of the nested (x, y, weight) batch; the multi-worker strategy
    cannot reduce a nest and fails with "Attempt to convert a value (PerReplica...)". Only the
    batch's shapes matter there, so take this worker's first replica's part instead. The batch is
    still taken from the iterator, as Keras does, so the data stream is the same as on one machine.

    After each step Keras reduces every per-replica log value (the loss) with
    `strategy.reduce("MEAN", v, axis=0)`, which a scalar does not have ("Invalid reduction
    dimension 0"): give each value an axis of length 1, so the reduce averages over all replicas
    of all workers, and every worker's EarlyStopping sees the same val_loss."""
    import tensorflow as tf

    def rank_one(step):
        return lambda data: tf.nest.map_structure(lambda v: tf.reshape(v, [1]), step(data))

    model.train_step, model.test_step = rank_one(model.train_step), rank_one(model.test_step)

    def build(iterator=None, data_batch=None):
        if iterator is not None:
            for _, _, it in iterator:
                data_batch = tf.nest.map_structure(lambda v: strategy.experimental_local_results(v)[0], next(it))
                break
        with strategy.scope():
            model._symbolic_build(data_batch=data_batch)

    model._maybe_symbolic_build = build


def _agree(strategy, flag: bool) -> bool:
    """True on every worker when `flag` is true on any: a decision taken from a local clock (the
    time limit) must be the same everywhere, or one worker waits forever for the others' next step."""
    import tensorflow as tf

    if strategy is None or role() is LOCAL:
        return flag
    votes = strategy.run(lambda: tf.constant(float(flag)))
    return float(strategy.reduce(tf.distribute.ReduceOp.SUM, votes, axis=None)) > 0


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
                if max_minutes is not None and _agree(strategy, elapsed > 60 * max_minutes):
                    if not quiet:
                        print(f"time limit of {max_minutes:g} min reached; stopping", file=sys.stderr)
                    self.model.stop_training = True

        return Progress()


def backup_dir(out: str | Path, who: Role | None = None) -> Path:
    """Where `train --out OUT` keeps its resumable state: beside OUT, never inside it (OUT is written
    once, whole, by modeldir.atomic_dir). Each worker of a cluster keeps its own, so workers sharing
    a disk (or a machine) never write the same file."""
    out, who = Path(out).absolute(), who or role()
    return out.with_name(f".{out.name}.train" + ("" if who.chief else f"-worker{who.index}"))


class _Backup:
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


def _backup_callback(backup: _Backup, early, restored: dict | None):
    """Keras callback: the history of the whole fit (restored epochs included), saved after every epoch."""
    import keras

    class Backup(keras.callbacks.Callback):
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

    return Backup()


def _fingerprint(graph: Graph, cfg: dict, seed: int, sources, channel, replicas: int, init) -> str:
    """What a resumed fit must share with the interrupted one for the two to be one fit."""
    what = {"graph": graph.to_dict(), "train": cfg, "seed": seed, "channel": channel, "replicas": replicas,
            "init": str(init) if init else None, "data": [[s.path, s.length] for s in sources]}
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()


def fit(spec: Spec, data: str, *, channel: int | None = None, epochs: int | None = None,
        max_minutes: float | None = None, seed: int = 0, cpu_devices: int = 1, quiet: bool = False,
        steps_per_epoch: int | None = None, horizon: int | None = None, init: str | None = None,
        horizon_options: dict | None = None, backup: str | Path | None = None) -> tuple[object, Graph, dict]:
    """Train `spec` on `data`; returns (keras model, graph with weights, metadata).

    `backup` (a directory, see `backup_dir`) keeps the one-step fit's state after every epoch; a fit
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
            backup = _Backup(backup, _fingerprint(graph, cfg, seed, sources, channel, strategy.num_replicas_in_sync,
                                                  init))
        restored = backup.load(model, quiet) if backup is not None else None
    if who is not LOCAL:
        _multi_worker_fit_workaround(model, strategy)
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
    if who is not LOCAL:
        # A generator has no files to shard by: each worker keeps every n-th batch of the same seeded stream.
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        # A last, partial validation batch smaller than the replicas would leave one an empty batch, which the
        # multi-worker strategy passes to the model as is (and a convolution rejects): drop such a batch.
        windows, replicas = sum(int(x.shape[0]) for x, *_ in val), strategy.num_replicas_in_sync
        if windows < replicas:
            raise UserError(f"the validation split holds {windows} training window(s), fewer than the {replicas} "
                            "replicas; use longer recordings or a smaller [train] window")
        short = windows % cfg["batch"] if windows % cfg["batch"] < replicas else 0
        val = val.unbatch().take(windows - short).batch(cfg["batch"])
        train, val = train.with_options(options), val.with_options(options)
    early = keras.callbacks.EarlyStopping("val_loss", patience=cfg["patience"], restore_best_weights=True)
    record = _backup_callback(backup, early, restored)
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
        if max_minutes is not None and _agree(strategy, elapsed > 60 * max_minutes):
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


def loopback_tf_configs(workers: int) -> list[str]:
    """TF_CONFIG values for a cluster of `workers` processes on this machine, on free 127.0.0.1 ports."""
    import socket
    from contextlib import ExitStack

    with ExitStack() as stack:  # hold every socket open until all are bound, so the ports differ
        socks = [stack.enter_context(socket.socket()) for _ in range(workers)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        hosts = [f"127.0.0.1:{sock.getsockname()[1]}" for sock in socks]
    return [json.dumps({"cluster": {"worker": hosts}, "task": {"type": "worker", "index": i}})
            for i in range(workers)]


def run_local_cluster(argvs: list[list[str]], timeout: float = 600) -> list:
    """Run `edgewave` ARGV[i] as worker i of a loopback cluster; subprocess.CompletedProcess of each.

    A worker whose peer died waits for it forever, so all of them are killed at the end, whatever happens."""
    import subprocess

    procs, results = [], []
    try:
        for argv, config in zip(argvs, loopback_tf_configs(len(argvs))):
            procs.append(subprocess.Popen([sys.executable, "-m", "edgewave.cli", *map(str, argv)],
                                          env={**os.environ, "TF_CONFIG": config}, text=True,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE))
        deadline = time.monotonic() + timeout
        for p in procs:
            out, err = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
            results.append(subprocess.CompletedProcess(p.args, p.returncode, out, err))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return results


def throughput(data: str, *, workers: int = 1, cpu_devices: int = 1, spec_path: str | None = None,
               max_minutes: float = 1.0, seed: int = 0) -> dict:
    """Training samples per second of `edgewave train` (fresh processes, as a user runs it) with
    `workers` loopback workers of `cpu_devices` logical CPUs each, stopped by --max-minutes.

    The batch is the spec's, split over all replicas (workers x cpu_devices): the same samples per
    step in every configuration, so the figures compare directly. For the bench."""
    import subprocess

    with tempfile.TemporaryDirectory(prefix="edgewave-throughput-") as tmp:
        argvs = [["train", "--data", data, "--out", Path(tmp) / f"m{i}", "--json", "--seed", seed,
                  "--max-minutes", max_minutes, "--cpu-devices", cpu_devices, *(["--spec", spec_path] if spec_path else [])]
                 for i in range(workers)]
        timeout = 60 * max_minutes * 3 + 300  # the last epoch overruns the limit, and start-up and scoring add more
        if workers == 1:
            procs = [subprocess.run([sys.executable, "-m", "edgewave.cli", *map(str, argvs[0])], capture_output=True,
                                    text=True, timeout=timeout)]
        else:
            procs = run_local_cluster(argvs, timeout)
    for p in procs:
        if p.returncode != 0:
            raise RuntimeError(f"edgewave train failed: {p.stderr.strip().splitlines()[-1:]}")
    t = json.loads(procs[0].stdout)["training"]  # the chief's figures; every worker ran the same steps
    return {"workers": workers, "cpu_devices": cpu_devices, "replicas": t["replicas"], "batch": t["batch"],
            "batch_per_replica": t["batch"] / t["replicas"], "window": t["window"], "epochs_run": t["epochs_run"],
            "samples_per_second": t["samples_per_second"]}


def save(out: str, model, graph: Graph, meta: dict) -> None:
    """Write MODEL_DIR, then drop the resumable state (`backup_dir`). In a cluster only the chief writes
    OUT; the other workers save to a temporary directory that is deleted (as in TensorFlow's multi-worker
    guide, every worker saves)."""
    who = role()
    if who.chief:
        modeldir.save(out, model, graph, meta)
    else:
        with tempfile.TemporaryDirectory(prefix="edgewave-worker-") as tmp:
            modeldir.save(Path(tmp) / "model", model, graph, meta)
    shutil.rmtree(backup_dir(out, who), ignore_errors=True)
