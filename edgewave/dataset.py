"""Training data: many files, split by time, streamed through tf.data.

Each source file is split into contiguous train / validation / test ranges,
so no window of one split overlaps another. Files are read block by block
(memory-mapped where the format allows), never concatenated in memory.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from . import signals
from .errors import UserError
from .metrics import mulaw_encode

BLOCK = 1 << 18  # samples read at a time

# Augmentation of regression training windows: a random gain, uniform in +-GAIN_DB dB, per window
# (speech level varies between prompts, and a short file's test part may be louder than its train
# part), and a random polarity flip (a waveform's sign carries no information).
GAIN_DB = 3.0
FLIP = True


@dataclass
class Source:
    path: str
    channel: int | None
    length: int
    sample_rate: int | None
    splits: tuple[slice, slice, slice]

    def read(self, start: int, stop: int) -> np.ndarray:
        """Samples [start, stop) without loading the rest of the file."""
        parts, pos = [], 0
        for chunk in signals.iter_chunks(self.path, BLOCK, self.channel):
            end = pos + len(chunk)
            if end > start and pos < stop:
                parts.append(chunk[max(0, start - pos): stop - pos])
            if end >= stop:
                break
            pos = end
        return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)

    def blocks(self, part: int, overlap: int = 0) -> Iterator[np.ndarray]:
        """Blocks of one split (0 train, 1 validation, 2 test), consecutive blocks sharing `overlap` samples."""
        rng = self.splits[part]
        start = rng.start
        while start < rng.stop:
            stop = min(rng.stop, start + BLOCK)
            yield self.read(max(rng.start, start - overlap), stop)
            start = stop


def scan(data: str, channel: int | None, min_length: int) -> list[Source]:
    """Find the sources behind --data, check them, and split each by time."""
    out, short = [], []
    paths = list(signals.iter_sources(data))
    for path in paths:
        length, rate = 0, signals.signal_info(path, channel)[1]
        for chunk in signals.iter_chunks(path, BLOCK, channel):
            bad = ~np.isfinite(chunk)
            if bad.any():
                raise UserError(f"{path}: sample {length + int(np.argmax(bad))} is NaN or infinite; "
                                "clean the signal (e.g. interpolate gaps) before training")
            length += len(chunk)
        if length < min_length:
            short.append(path)
            continue
        out.append(Source(path, channel, length, rate, signals.split_by_time(length)))
    if short and (len(paths) == 1 or not out):
        raise UserError(f"{short[0]}: too short; each file needs at least {min_length} samples (split 80/10/10 "
                        "into train/validation/test, its test split must outlast the receptive field)")
    if short:  # a directory of recordings may hold a few short clips: train on the rest, and say so
        print(f"skipped {len(short)} of {len(paths)} files shorter than {min_length} samples, e.g. {short[0]}",
              file=sys.stderr)
    rates = {s.sample_rate for s in out}
    if len(rates) > 1:
        raise UserError(f"--data mixes sample rates {sorted(r for r in rates if r)}; resample to one rate first")
    return out


def norm_stats(sources: list[Source], head: str) -> signals.NormStats:
    """Mean and scale from the training splits only (no test leakage)."""
    n, s1, s2, peak = 0, 0.0, 0.0, 0.0
    for src in sources:
        for b in src.blocks(0):
            b = b.astype(np.float64)
            n += len(b)
            s1 += b.sum()
            s2 += (b * b).sum()
    mean = s1 / n
    std = float(np.sqrt(max(s2 / n - mean * mean, 0.0)))
    if std < 1e-12:
        raise UserError("the training split is constant; a predictor needs a varying signal")
    if head == "mulaw":
        for src in sources:
            for b in src.blocks(0):
                peak = max(peak, float(np.max(np.abs(b - mean))))
        return signals.NormStats(offset=float(mean), scale=peak)
    return signals.NormStats(offset=float(mean), scale=std)


def train_dataset(sources, norm, window: int, batch: int, seed: int, head: str, bits: int):
    """An endless, seeded stream of (input window, next-sample target) batches.

    Regression windows are augmented (input and target alike) by a random gain of +-GAIN_DB dB
    and, with FLIP, a random sign."""
    import tensorflow as tf

    def windows():
        rng = np.random.default_rng(seed)
        while True:
            for i in rng.permutation(len(sources)):
                for block in sources[i].blocks(0):
                    block = (block - norm.offset) / norm.scale
                    if len(block) < window + 1:
                        continue
                    count = max(1, len(block) // window)
                    for start in rng.integers(0, len(block) - window, size=count):
                        seg = block[start:start + window + 1]
                        if head != "mulaw" and GAIN_DB > 0:
                            db = rng.uniform(-GAIN_DB, GAIN_DB)
                            seg = seg * np.float32(10 ** (db / 20))
                        if head != "mulaw" and FLIP and rng.random() < 0.5:
                            seg = -seg
                        yield _pair(seg, head, bits)

    return (tf.data.Dataset.from_generator(windows, output_signature=_signature(window, head))
            .shuffle(256, seed=seed).batch(batch, drop_remainder=True).prefetch(2))


def eval_dataset(sources, norm, part: int, window: int, batch: int, head: str, bits: int, limit: int = 512):
    """Fixed, non-overlapping windows of one split (validation), held in memory (at most `limit`)."""
    import tensorflow as tf

    xs, ys = [], []
    for src in sources:
        for block in src.blocks(part):
            block = (block - norm.offset) / norm.scale
            for start in range(0, len(block) - window, window):
                if len(xs) < limit:
                    x, y = _pair(block[start:start + window + 1], head, bits)
                    xs.append(x)
                    ys.append(y)
    if not xs:
        raise UserError(f"the validation split is shorter than one training window ({window} samples); "
                        "use longer recordings or a smaller [train] window")
    return tf.data.Dataset.from_tensor_slices((np.stack(xs), np.stack(ys))).batch(batch)


def _pair(seg: np.ndarray, head: str, bits: int):
    x = seg[:-1, None].astype(np.float32)
    if head == "mulaw":
        return x, mulaw_encode(seg[1:], bits)[:, None]
    return x, seg[1:, None].astype(np.float32)


def _signature(window: int, head: str):
    import tensorflow as tf
    y_type = tf.int32 if head == "mulaw" else tf.float32
    return (tf.TensorSpec((window, 1), tf.float32), tf.TensorSpec((window, 1), y_type))
