"""How well a score separates labelled anomalies from normal signal, per sample and per event."""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

from edgewave.errors import UserError


def _as_labels(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels).reshape(-1)
    if labels.size and not np.isin(labels, (0, 1)).all():
        raise UserError("labels must be 0 (normal) or 1 (anomalous) per sample")
    return labels.astype(bool)


def _check_same_length(a: np.ndarray, labels: np.ndarray, what: str) -> None:
    if len(a) != len(labels):
        raise UserError(f"the {what} has {len(a)} samples but the labels have {len(labels)}; "
                        "give one label per sample of the signal")


def roc_auc(score: np.ndarray, labels: np.ndarray) -> float:
    """Per-sample ROC-AUC (Mann-Whitney U over ranks, ties count one half); nan if a class is absent."""
    score = np.asarray(score, dtype=np.float64).reshape(-1)
    positive = _as_labels(labels)
    _check_same_length(score, positive, "score")
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(score)   # ties get their average rank, which is exactly the half-credit rule
    u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def events(labels: np.ndarray) -> list[tuple[int, int]]:
    """Runs of 1s as half-open [start, end) sample ranges."""
    edges = np.diff(np.concatenate(([0], _as_labels(labels).astype(np.int8), [0])))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))


def _summary(values_ms: list[float]) -> dict:
    if not values_ms:
        return {"mean": float("nan"), "median": float("nan"), "max": float("nan")}
    return {"mean": float(np.mean(values_ms)), "median": float(np.median(values_ms)),
            "max": float(np.max(values_ms))}


def detection_delay_ms(flags: np.ndarray, labels: np.ndarray, rate: float) -> dict:
    """Per anomalous event, the time from its start to its first flagged sample.

    Events with no flagged sample inside them are not given a delay: they are counted in
    "missed", so a detector cannot look fast by missing the hard events.
    """
    flags = np.asarray(flags, dtype=bool).reshape(-1)
    runs = events(labels)
    _check_same_length(flags, np.asarray(labels).reshape(-1), "flags")
    delays = []
    for start, end in runs:
        hits = np.flatnonzero(flags[start:end])
        if hits.size:
            delays.append(1000.0 * hits[0] / rate)
    return {**_summary(delays), "missed": len(runs) - len(delays), "events": len(runs)}


def alarm_onsets(flags: np.ndarray) -> np.ndarray:
    """Indices where an alarm starts (a flag that the previous sample did not have)."""
    flags = np.asarray(flags, dtype=bool).reshape(-1)
    return np.flatnonzero(flags & ~np.concatenate(([False], flags[:-1])))


def false_alarms_per_hour(flags: np.ndarray, labels: np.ndarray, rate: float) -> float:
    """Alarm onsets outside every anomalous event, per hour of normal signal (nan if none is normal).

    An alarm that starts inside an event and lingers after it (the smoothing tail) is not a
    false alarm: it is one detection, counted once, by where it began.
    """
    normal = ~_as_labels(labels)
    _check_same_length(np.asarray(flags).reshape(-1), normal, "flags")
    hours = normal.sum() / rate / 3600.0
    if hours == 0:
        return float("nan")
    onsets = alarm_onsets(flags)
    return float(normal[onsets].sum() / hours)


def evaluate(score: np.ndarray, threshold: float, labels: np.ndarray, rate: float, skip: int = 0) -> dict:
    """All metrics for alarms `score > threshold`, ignoring the first `skip` samples.

    `skip` is the model's receptive field (or the LPC order): before it the prediction error is
    not meaningful, so those samples take no part in any metric. An event that straddles `skip`
    is measured from sample `skip` on.
    """
    score = np.asarray(score, dtype=np.float64).reshape(-1)
    labels = np.asarray(labels).reshape(-1)
    _check_same_length(score, labels, "score")
    score, labels = score[skip:], labels[skip:]
    flags = score > threshold
    delays = detection_delay_ms(flags, labels, rate)
    return {
        "auc": roc_auc(score, labels),
        "detection_delay_ms": delays["mean"],
        "delays": delays,
        "false_alarms_per_hour": false_alarms_per_hour(flags, labels, rate),
        "flagged_fraction": float(flags.mean()) if flags.size else float("nan"),
    }
