"""Make a real-speech recording from Asterisk's voice prompts (Debian packages, CC-BY-SA-3.0 / CC-BY-3.0).

The bundled `speech8k_fr.wav` is made by

    apt-get download asterisk-core-sounds-fr-wav          # 1.6.1-1 (Debian 12)
    dpkg-deb -x asterisk-core-sounds-fr-wav_1.6.1-1_all.deb prompts/
    python edgewave/data/make_speech8k.py prompts/usr/share/asterisk/sounds/fr_CA_f_June \\
        --seconds 25 --out edgewave/data/speech8k_fr.wav

and a longer recording of another voice, not bundled, for benchmarks by

    apt-get download asterisk-core-sounds-it-wav
    dpkg-deb -x asterisk-core-sounds-it-wav_1.6.1-1_all.deb prompts/
    python edgewave/data/make_speech8k.py prompts/usr/share/asterisk/sounds/it_IT_m_Carlo \\
        --seconds 240 --out speech8k_it.wav

Prompts are taken in the order of their names' SHA-1 (a fixed shuffle, so a short recording
still mixes many prompts), tones and sound effects left out; each prompt's leading and
trailing silence is cut and pauses inside it are shortened to 150 ms, so the recording is
speech, not silence; prompts are joined with 150 ms of silence. The same package version gives
the same bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import wave
from pathlib import Path

import numpy as np

RATE = 8000
NOT_SPEECH = ("tone", "beep", "monkeys", "tt-", "music", "dial", "ring", "click")
FRAME = RATE // 100              # 10 ms frames for the silence detector
SILENT_DBFS = -45.0              # a frame this far below full scale counts as silence
PAUSE = int(0.150 * RATE)        # longest pause kept, and the gap between prompts


def read_prompt(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        if w.getframerate() != RATE or w.getsampwidth() != 2 or w.getnchannels() != 1:
            raise SystemExit(f"{path}: expected 8 kHz 16-bit mono PCM")
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.int16)


def squeeze_silence(x: np.ndarray) -> np.ndarray:
    """Cut silence at both ends and shorten every pause inside to PAUSE samples."""
    n = len(x) // FRAME
    if n == 0:
        return x[:0]
    frames = x[:n * FRAME].astype(np.float64).reshape(n, FRAME)
    level = 10 * np.log10(np.mean(frames ** 2, axis=1) / 32768.0 ** 2 + 1e-12)
    voiced = level > SILENT_DBFS
    if not voiced.any():
        return x[:0]
    first, last = np.flatnonzero(voiced)[[0, -1]]
    keep, quiet = [], 0
    for i in range(first, last + 1):
        quiet = 0 if voiced[i] else quiet + FRAME
        if quiet <= PAUSE:
            keep.append(frames[i])
    return np.concatenate(keep).astype(np.int16)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("prompts", type=Path, help="a voice's directory of 8 kHz WAV prompts")
    ap.add_argument("--seconds", type=float, default=25.0, help="length of the recording")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    files = sorted((p for p in args.prompts.glob("*.wav") if not any(w in p.name for w in NOT_SPEECH)),
                   key=lambda p: hashlib.sha1(p.name.encode()).hexdigest())
    if not files:
        raise SystemExit(f"no prompts in {args.prompts}")
    want = int(args.seconds * RATE)
    parts, total = [], 0
    for p in files:
        speech = squeeze_silence(read_prompt(p))
        if len(speech) == 0:
            continue
        parts += [speech, np.zeros(PAUSE, np.int16)]
        total += len(speech) + PAUSE
        if total >= want:
            break
    x = np.concatenate(parts)[:want]
    if len(x) < want:
        print(f"only {len(x) / RATE:.1f} s of speech in {args.prompts}", file=sys.stderr)
    with wave.open(str(args.out), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(x.astype("<i2").tobytes())
    print(f"{args.out}: {len(x) / RATE:.1f} s from {len(parts) // 2} prompts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
