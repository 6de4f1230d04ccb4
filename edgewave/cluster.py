"""Training over several processes: where this one stands in a TF_CONFIG cluster (with one-line errors
for a malformed value), the distribution strategy, what Keras 3 needs to fit under the multi-worker
strategy, sharding the data stream over the workers, and a cluster of worker processes on loopback."""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass

from .errors import UserError
from .tfimport import tensorflow


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


def multi_worker_fit_workaround(model, strategy) -> None:
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


def agree(strategy, flag: bool) -> bool:
    """True on every worker when `flag` is true on any: a decision taken from a local clock (the
    time limit) must be the same everywhere, or one worker waits forever for the others' next step."""
    import tensorflow as tf

    if strategy is None or role() is LOCAL:
        return flag
    votes = strategy.run(lambda: tf.constant(float(flag)))
    return float(strategy.reduce(tf.distribute.ReduceOp.SUM, votes, axis=None)) > 0


def whole_replica_batches(val, strategy, batch: int):
    """`val` without a last, partial batch smaller than the replicas: it would leave one an empty batch, which
    the strategy passes to the model as is (and a convolution rejects). Unchanged on one replica."""
    windows, replicas = sum(int(x.shape[0]) for x, *_ in val), strategy.num_replicas_in_sync
    if replicas == 1:
        return val
    if windows < replicas:
        raise UserError(f"the validation split holds {windows} training window(s), fewer than the {replicas} "
                        "replicas; use longer recordings or a smaller [train] window")
    short = windows % batch if windows % batch < replicas else 0
    return val.unbatch().take(windows - short).batch(batch)


def shard(train, val):
    """(train, val) for a worker of a cluster: its share of every step's batch, of the same seeded streams."""
    import tensorflow as tf

    # A generator has no files to shard by: each worker keeps every n-th batch of the same seeded stream.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return train.with_options(options), val.with_options(options)


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
    """Run `edgewave` ARGV[i] as worker i of a loopback cluster (one machine, e.g. for tests and the bench);
    subprocess.CompletedProcess of each.

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
