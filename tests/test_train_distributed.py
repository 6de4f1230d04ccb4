"""Training past one process: two workers over loopback (MultiWorkerMirroredStrategy from TF_CONFIG),
resuming a killed training, the time limit, and malformed TF_CONFIG values."""

import json
import os
import signal
import subprocess
import time

import numpy as np
import pytest

from edgewave import cluster, resume, signals

from conftest import EDGEWAVE, ROOT, assert_one_line_error, run_edgewave

FRENCH = ROOT / "edgewave" / "data" / "speech8k_fr.wav"
TIMEOUT = 180  # s per training process; a worker whose peer died waits for it forever


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    """A directory of three short recordings (2.5 s slices of the bundled French speech)."""
    d = tmp_path_factory.mktemp("recordings")
    x = signals.load_signal(FRENCH).samples
    for i in range(3):
        signals.write_wav(d / f"part{i}.wav", x[i * 20000:(i + 1) * 20000], 8000)
    return d


def train_cluster(outs, args) -> list[subprocess.CompletedProcess]:
    """`edgewave train ARGS --out OUTS[i] --json` as worker i of a loopback cluster."""
    return cluster.run_local_cluster([["train", *args, "--out", out, "--json"] for out in outs], timeout=TIMEOUT)


def weights(model_dir):
    import keras

    return keras.saving.load_model(model_dir / "model.keras", compile=False).get_weights()


def assert_same_weights(a, b):
    wa, wb = weights(a), weights(b)
    assert len(wa) == len(wb)
    for x, y in zip(wa, wb):
        np.testing.assert_array_equal(x, y)


def test_two_workers_over_loopback_train_once_and_deterministically(tmp_path, recordings, tiny_spec):
    args = ["--data", recordings, "--spec", tiny_spec, "--seed", "4"]
    chiefs = []
    for run in ("a", "b"):
        chief, worker = tmp_path / run / "chief" / "m", tmp_path / run / "worker" / "m"
        worker.parent.mkdir(parents=True)
        procs = train_cluster([chief, worker], args)
        for p in procs:
            assert p.returncode == 0, p.stderr
            assert "epoch 2/2" in p.stderr
        summaries = [json.loads(p.stdout) for p in procs]
        assert all(s["training"]["workers"] == 2 and s["training"]["replicas"] == 2 for s in summaries)
        # Synchronous data-parallel training: both workers end with the same model.
        assert summaries[0]["prediction_gain_db"] == summaries[1]["prediction_gain_db"]
        # The chief writes MODEL_DIR (and leaves no training state beside it); the other worker writes nothing.
        assert sorted(p.name for p in chief.parent.iterdir()) == ["m"]
        assert sorted(p.name for p in chief.iterdir()) == ["edgewave.json", "model.keras"]
        assert list(worker.parent.iterdir()) == []
        chiefs.append((chief, summaries[0]))
    # A fixed seed gives the same model again: the all-reduce of two workers sums in a fixed order.
    (a, sa), (b, sb) = chiefs
    assert sa["prediction_gain_db"] == sb["prediction_gain_db"]
    assert_same_weights(a, b)


def start_training(args, log):
    return subprocess.Popen([*EDGEWAVE, "train", *map(str, args)], stdout=subprocess.DEVNULL,
                            stderr=open(log, "w"), text=True)


def kill_after(proc, log, line: str, timeout: float = TIMEOUT) -> None:
    """SIGKILL `proc` as soon as `line` shows in its stderr log."""
    deadline = time.monotonic() + timeout
    try:
        while line not in log.read_text():
            assert proc.poll() is None, f"training ended before {line!r}: {log.read_text()}"
            assert time.monotonic() < deadline, f"no {line!r} within {timeout} s"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def test_a_killed_training_resumes_from_its_last_epoch_to_the_same_weights(tmp_path, recordings, tiny_spec):
    args = ["--data", recordings, "--spec", tiny_spec, "--seed", "5", "--epochs", "6", "--steps-per-epoch", "30"]
    ref = run_edgewave("train", *args, "--out", tmp_path / "ref", timeout=TIMEOUT)
    assert ref.returncode == 0, ref.stderr
    out, log = tmp_path / "m", tmp_path / "killed.log"
    kill_after(start_training([*args, "--out", out], log), log, "epoch 2/6")
    assert not out.exists()  # MODEL_DIR is written whole at the end, or not at all
    backup = resume.backup_dir(out)
    assert backup == tmp_path / ".m.train" and list(backup.glob("epoch-*"))
    again = run_edgewave("train", *args, "--out", out, timeout=TIMEOUT)
    assert again.returncode == 0, again.stderr
    assert "resuming from" in again.stderr and "epoch 1/6" not in again.stderr and "epoch 6/6" in again.stderr
    assert not backup.exists()  # removed once MODEL_DIR is in place
    assert_same_weights(out, tmp_path / "ref")
    meta = json.loads((out / "edgewave.json").read_text())
    assert meta["training"]["resumed_after_epoch"] >= 1
    assert meta["metrics"] == json.loads((tmp_path / "ref" / "edgewave.json").read_text())["metrics"]


def test_a_time_limit_finishes_the_run_and_leaves_no_state(tmp_path, recordings, tiny_spec):
    out = tmp_path / "m"
    proc = run_edgewave("train", "--data", recordings, "--spec", tiny_spec, "--out", out, "--epochs", "50",
                        "--max-minutes", "0.0001", "--json", timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    assert "time limit" in proc.stderr and json.loads(proc.stdout)["training"]["epochs_run"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


ONE_WORKER = {"cluster": {"worker": ["127.0.0.1:2222", "127.0.0.1:2223"]}, "task": {"type": "worker", "index": 0}}


@pytest.mark.parametrize("value,phrase", [
    ("{cluster: worker}", "TF_CONFIG is not JSON"),
    ("[1, 2]", 'needs a "cluster" object and a "task" object'),
    (json.dumps({"cluster": ONE_WORKER["cluster"]}), '"task" object'),
    (json.dumps({"task": ONE_WORKER["task"]}), '"cluster" object'),
    (json.dumps({**ONE_WORKER, "task": {"type": "worker", "index": 2}}), "task index 2 is out of range"),
    (json.dumps({**ONE_WORKER, "task": {"type": "worker"}}), "task index None is out of range"),
    (json.dumps({**ONE_WORKER, "task": {"type": "ps", "index": 0}}), "task type 'ps' is not a job"),
    (json.dumps({"cluster": {"worker": ["localhost"]}, "task": ONE_WORKER["task"]}), '"host:port"'),
    (json.dumps({"cluster": {"worker": []}, "task": ONE_WORKER["task"]}), "non-empty list"),
    (json.dumps({"cluster": {**ONE_WORKER["cluster"], "ps": ["127.0.0.1:2224"]}, "task": ONE_WORKER["task"]}),
     "job 'ps' is not supported"),
])
def test_a_malformed_tf_config_is_one_line(tmp_path, tiny_spec, recordings, value, phrase):
    proc = subprocess.run([*EDGEWAVE, "train", "--data", str(recordings), "--spec", str(tiny_spec),
                           "--out", str(tmp_path / "m")], env={**os.environ, "TF_CONFIG": value},
                          capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 2
    assert_one_line_error(proc, phrase)
    assert list(tmp_path.iterdir()) == []


def test_tf_config_roles():
    assert cluster.parse_tf_config(json.dumps(ONE_WORKER)) == cluster.Role(workers=2, index=0, chief=True)
    with_chief = {"cluster": {"chief": ["h0:1"], "worker": ["h1:1", "h2:1"]}, "task": {"type": "worker", "index": 0}}
    assert cluster.parse_tf_config(json.dumps(with_chief)) == cluster.Role(workers=3, index=0, chief=False)
    assert resume.backup_dir("/x/m", cluster.Role(3, 1, False)).name == ".m.train-worker1"
    configs = cluster.loopback_tf_configs(3)
    assert [cluster.parse_tf_config(c).index for c in configs] == [0, 1, 2]
    assert len(set(json.loads(configs[0])["cluster"]["worker"])) == 3


def test_train_help_shows_how_to_launch_workers():
    proc = run_edgewave("train", "--help")
    assert proc.returncode == 0
    assert "TF_CONFIG" in proc.stdout and '"task": {"type": "worker", "index": 1}' in proc.stdout
    assert "resumes" in proc.stdout
