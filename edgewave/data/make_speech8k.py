"""Make a real-speech recording from Asterisk's voice prompts (Debian packages, CC-BY-SA-3.0 / CC-BY-3.0).

The bundled `speech8k_fr.wav` is made by

    apt-get download asterisk-core-sounds-fr-wav          # 1.6.1-1 (Debian 12)
    dpkg-deb -x asterisk-core-sounds-fr-wav_1.6.1-1_all.deb prompts/
    python edgewave/data/make_speech8k.py prompts/usr/share/asterisk/sounds/fr_CA_f_June \\
        --seconds 25 --out edgewave/data/speech8k_fr.wav

and two longer recordings of other voices, not bundled, for benchmarks (`benchmarks/recordings.py`
makes and caches them) by

    apt-get download asterisk-core-sounds-it-wav          # 8 kHz WAV prompts
    dpkg-deb -x asterisk-core-sounds-it-wav_1.6.1-1_all.deb prompts/
    python edgewave/data/make_speech8k.py prompts/usr/share/asterisk/sounds/it_IT_m_Carlo \\
        --seconds 240 --out speech8k_it.wav

    apt-get download asterisk-core-sounds-en-g722         # 16 kHz wideband prompts, raw G.722
    dpkg-deb -x asterisk-core-sounds-en-g722_1.6.1-1_all.deb prompts16/
    python edgewave/data/make_speech8k.py prompts16/usr/share/asterisk/sounds/en_US_f_Allison \\
        --rate 16000 --seconds 120 --out speech16k_en.wav

A voice's directory holds WAV prompts (16-bit mono PCM at --rate) or raw G.722 prompts (`.g722`,
64 kbit/s, which decode to 16 kHz). G.722 is decoded by FFmpeg, which is not an edgewave
dependency: the `ffmpeg` program if it is on PATH (`apt-get install ffmpeg`), else PyAV
(`pip install av`, which bundles FFmpeg). FFmpeg's G.722 decoder is integer and bit-exact with
the ITU-T reference, so both give the same samples.

Prompts are taken in the order of their names' SHA-1 (a fixed shuffle, so a short recording
still mixes many prompts), tones and sound effects left out; each prompt's leading and
trailing silence is cut (10 ms frames below -45 dBFS) and pauses inside it are shortened to
150 ms, so the recording is speech, not silence; prompts are joined with 150 ms of silence.
The same package version gives the same bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np

RATE = 8000                      # the default rate, and that of the packages' WAV prompts
G722_RATE = 16000                # G.722 codes 16 kHz audio
RATES = (8000, 16000)
PROMPT_SUFFIXES = (".wav", ".g722")
NOT_SPEECH = ("tone", "beep", "monkeys", "tt-", "music", "dial", "ring", "click")
SILENT_DBFS = -45.0              # a 10 ms frame this far below full scale counts as silence
PAUSE_SECONDS = 0.150            # longest pause kept, and the gap between prompts
FRAME = RATE // 100              # 10 ms frames for the silence detector (at RATE)
PAUSE = int(PAUSE_SECONDS * RATE)


def frame_and_pause(rate: int) -> tuple[int, int]:
    """The silence detector's frame (10 ms) and the pause (150 ms), in samples at rate."""
    return rate // 100, int(PAUSE_SECONDS * rate)


def g722_decoder() -> str:
    """Which FFmpeg decodes G.722 here: 'ffmpeg' (the program), 'pyav', or SystemExit saying how to get one."""
    if shutil.which("ffmpeg"):
        return "ffmpeg"
    if importlib.util.find_spec("av") is None:
        raise SystemExit("decoding G.722 prompts needs FFmpeg, which edgewave does not depend on: "
                         "apt-get install ffmpeg (Debian/Ubuntu), or pip install av (PyAV bundles FFmpeg)")
    return "pyav"


def decoder_version(decoder: str) -> str:
    """A line naming the decoder and its version (recorded beside recordings made with it)."""
    if decoder == "ffmpeg":
        out = subprocess.run([shutil.which("ffmpeg"), "-version"], capture_output=True, text=True, check=True).stdout
        return out.splitlines()[0].split(" Copyright")[0]
    import av
    return f"PyAV {av.__version__} (libavcodec {'.'.join(map(str, av.library_versions['libavcodec']))})"


def decode_g722(path: Path, decoder: str | None = None) -> np.ndarray:
    """A raw 64 kbit/s G.722 file decoded to 16 kHz int16 samples."""
    decoder = decoder or g722_decoder()
    if decoder == "ffmpeg":
        run = subprocess.run([shutil.which("ffmpeg"), "-nostdin", "-loglevel", "error", "-f", "g722", "-i", str(path),
                              "-f", "s16le", "-acodec", "pcm_s16le", "-ac", "1", "-ar", str(G722_RATE), "-"],
                             capture_output=True)
        if run.returncode != 0:
            raise SystemExit(f"{path}: ffmpeg could not decode it: {run.stderr.decode(errors='replace').strip()}")
        return np.frombuffer(run.stdout, "<i2").astype(np.int16)
    import av
    parts = []
    with av.open(str(path), format="g722") as container:
        for frame in container.decode(audio=0):
            if frame.format.name != "s16" or frame.sample_rate != G722_RATE or len(frame.layout.channels) != 1:
                raise SystemExit(f"{path}: PyAV decoded {frame.format.name} {frame.sample_rate} Hz "
                                 f"{len(frame.layout.channels)} channels, expected s16 16 kHz mono")
            parts.append(frame.to_ndarray().reshape(-1))
    return np.concatenate(parts).astype(np.int16) if parts else np.zeros(0, np.int16)


def read_prompt(path: Path, rate: int = RATE, decoder: str | None = None) -> np.ndarray:
    if path.suffix == ".g722":
        if rate != G722_RATE:
            raise SystemExit(f"{path}: G.722 prompts decode to {G722_RATE} Hz: use --rate {G722_RATE}")
        return decode_g722(path, decoder)
    with wave.open(str(path)) as w:
        if w.getframerate() != rate or w.getsampwidth() != 2 or w.getnchannels() != 1:
            raise SystemExit(f"{path}: expected {rate // 1000} kHz 16-bit mono PCM")
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.int16)


def squeeze_silence(x: np.ndarray, rate: int = RATE) -> np.ndarray:
    """Cut silence at both ends and shorten every pause inside to 150 ms."""
    frame, pause = frame_and_pause(rate)
    n = len(x) // frame
    if n == 0:
        return x[:0]
    frames = x[:n * frame].astype(np.float64).reshape(n, frame)
    level = 10 * np.log10(np.mean(frames ** 2, axis=1) / 32768.0 ** 2 + 1e-12)
    voiced = level > SILENT_DBFS
    if not voiced.any():
        return x[:0]
    first, last = np.flatnonzero(voiced)[[0, -1]]
    keep, quiet = [], 0
    for i in range(first, last + 1):
        quiet = 0 if voiced[i] else quiet + frame
        if quiet <= pause:
            keep.append(frames[i])
    return np.concatenate(keep).astype(np.int16)


def prompt_files(prompts: Path) -> list[Path]:
    """A voice's speech prompts (WAV or G.722) in their fixed shuffled order."""
    return sorted((p for p in prompts.iterdir()
                   if p.suffix in PROMPT_SUFFIXES and p.is_file() and not any(w in p.name for w in NOT_SPEECH)),
                  key=lambda p: hashlib.sha1(p.name.encode()).hexdigest())


def make_recording(prompts: Path, seconds: float, rate: int = RATE) -> tuple[np.ndarray, int]:
    """(int16 samples, number of prompts used): `seconds` of squeezed prompts from a voice's directory."""
    if rate not in RATES:
        raise SystemExit(f"--rate must be one of {', '.join(map(str, RATES))}")
    files = prompt_files(prompts)
    if not files:
        raise SystemExit(f"no prompts in {prompts}")
    decoder = g722_decoder() if any(p.suffix == ".g722" for p in files) else None
    _, pause = frame_and_pause(rate)
    want = int(seconds * rate)
    parts, total = [], 0
    for p in files:
        speech = squeeze_silence(read_prompt(p, rate, decoder), rate)
        if len(speech) == 0:
            continue
        parts += [speech, np.zeros(pause, np.int16)]
        total += len(speech) + pause
        if total >= want:
            break
    if not parts:
        raise SystemExit(f"no speech in the prompts of {prompts}")
    return np.concatenate(parts)[:want], len(parts) // 2


def write_wav(path: Path, x: np.ndarray, rate: int = RATE) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(x.astype("<i2").tobytes())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("prompts", type=Path, help="a voice's directory of WAV prompts at --rate, or of .g722 prompts")
    ap.add_argument("--seconds", type=float, default=25.0, help="length of the recording")
    ap.add_argument("--rate", type=int, default=RATE, choices=RATES,
                    help="sample rate in Hz: 8000 (WAV prompts) or 16000 (16 kHz WAV or G.722 prompts)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    x, used = make_recording(args.prompts, args.seconds, args.rate)
    if len(x) < int(args.seconds * args.rate):
        print(f"only {len(x) / args.rate:.1f} s of speech in {args.prompts}", file=sys.stderr)
    write_wav(args.out, x, args.rate)
    print(f"{args.out}: {len(x) / args.rate:.1f} s from {used} prompts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
