"""Reading and writing 1-D signals: WAV, .npy and .csv in, 16-bit WAV out.

Every problem with a user's file becomes a UserError naming the file, so the
CLI can print one line instead of a traceback.
"""

from __future__ import annotations

import glob
import math
import operator
import os
import secrets
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
from scipy.io import wavfile

from edgewave.errors import UserError

SUFFIXES = (".wav", ".npy", ".csv")


@dataclass(frozen=True)
class Signal:
    samples: np.ndarray  # float32, 1-D
    sample_rate: int | None  # None for .npy/.csv, which carry no rate
    source: str


# ---------------------------------------------------------------- loading

def load_signal(path: str | os.PathLike, channel: int | None = None) -> Signal:
    """Load one channel of a .wav/.npy/.csv file as float32.

    Integer PCM is scaled to [-1, 1); .npy and .csv values are kept as they are.
    """
    column, rate, to_float = _open_column(path, channel, lazy=False)
    x = to_float(column)
    _check_finite(str(path), x)
    if np.ptp(x) == 0:
        raise UserError(f"{path}: every sample is {x[0]:g}; a constant signal cannot be "
                        "normalised, so pick another file or channel")
    return Signal(samples=x, sample_rate=rate, source=str(path))


def signal_info(path: str | os.PathLike, channel: int | None = None) -> tuple[int, int | None]:
    """(number of samples, sample rate) without reading the samples (memory-mapped)."""
    column, rate, _ = _open_column(path, channel, lazy=True)
    return len(column), rate


def iter_chunks(path: str | os.PathLike, chunk_samples: int,
                channel: int | None = None) -> Iterator[np.ndarray]:
    """Yield float32 chunks of one channel, concatenating to load_signal(path).samples.

    WAV and .npy are memory-mapped, so only one chunk is in memory at a time
    (except 24-bit WAV, which scipy cannot map). The file is opened and checked
    on the call, not on the first next(), so a bad file fails before training
    starts. The constant-signal check needs the whole file and is left to
    normalisation.
    """
    if operator.index(chunk_samples) <= 0:
        raise ValueError(f"chunk_samples must be positive, got {chunk_samples}")
    column, _, to_float = _open_column(path, channel, lazy=True)

    def chunks():
        for start in range(0, len(column), chunk_samples):
            chunk = to_float(column[start:start + chunk_samples])
            if not np.isfinite(chunk).all():
                # Report the same count as load_signal would, at the cost of one more pass.
                _check_finite(str(path), to_float(column))
            yield chunk

    return chunks()


def _open_column(path, channel, lazy):
    """Return (1-D raw array of the chosen channel, sample rate, raw -> float32)."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"{path}: file not found")
    if p.is_dir():
        raise UserError(f"{path}: is a directory; give a .wav, .npy or .csv file")
    if p.stat().st_size == 0:
        raise UserError(f"{path}: file is empty")
    suffix = p.suffix.lower()
    if suffix == ".wav":
        rate, data = _read_wav(path, lazy)
        to_float = _pcm_to_float(data.dtype)
        what = "WAV"
    elif suffix == ".npy":
        rate, data, to_float, what = None, _read_npy(path, lazy), _as_float32, "array"
    elif suffix == ".csv":
        rate, data, to_float, what = None, _read_csv(path), _as_float32, "CSV"
    else:
        raise UserError(f"{path}: unsupported file type '{p.suffix}'; use .wav, .npy or "
                        ".csv (sox converts most audio formats to .wav)")
    column = _pick_channel(path, data, channel, what)
    if len(column) == 0:
        raise UserError(f"{path}: file has no samples; record or export it again")
    return column, rate, to_float


def _wav_channels(path) -> int | None:
    """The channel count in the fmt chunk, read directly (scipy divides by it before checking)."""
    with open(path, "rb") as f:
        head = f.read(4096)
    at = head.find(b"fmt ")
    if head[:4] != b"RIFF" or at < 0 or len(head) < at + 12:
        return None
    return int.from_bytes(head[at + 10:at + 12], "little")


def _read_wav(path, lazy):
    if _wav_channels(path) == 0:
        raise UserError(f"{path}: the WAV header declares 0 channels; the file is damaged — export it again")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", wavfile.WavFileWarning)
        try:
            try:
                rate, data = wavfile.read(path, mmap=lazy)
            except ValueError:
                if not lazy:
                    raise
                # scipy cannot map 24-bit samples; a broken file fails again here,
                # with the plain reader's clearer error.
                rate, data = wavfile.read(path)
        except MemoryError:
            raise
        except Exception as e:  # scipy's parser trips over damaged headers in many ways
            raise UserError(f"{path}: not a readable WAV file ({e}); re-export it as "
                            "PCM or float WAV, e.g. sox in.wav -b 16 out.wav") from None
    # Other scipy warnings (skipped metadata chunks) are harmless: dropped.
    for w in caught:
        if "EOF prematurely" in str(w.message):
            raise UserError(f"{path}: WAV file is truncated ({w.message}); copy or "
                            "export it again")
    if rate <= 0:
        raise UserError(f"{path}: WAV header says the sample rate is {rate}; the file is corrupt")
    return rate, data


def _pcm_to_float(dtype):
    """How to map WAV samples to float32 in [-1, 1), exactly for 8/16/24-bit."""
    if dtype.kind == "f":
        return _as_float32
    if dtype == np.uint8:  # 8-bit WAV is unsigned, centred on 128
        offset, scale = 128.0, 128.0
    else:  # scipy left-aligns 24-bit in int32, so full scale is that of the container
        offset, scale = 0.0, float(2 ** (8 * dtype.itemsize - 1))
    return lambda raw: (np.asarray(raw, dtype=np.float32) - np.float32(offset)) / np.float32(scale)


def _as_float32(raw):
    return np.array(raw, dtype=np.float32)  # a copy, so no chunk keeps a memmap alive


def _read_npy(path, lazy):
    try:
        data = np.load(path, mmap_mode="r" if lazy else None, allow_pickle=False)
    except MemoryError:
        raise
    except Exception as e:  # a damaged header fails inside numpy's parser in many ways (SyntaxError, TokenError, ...)
        raise UserError(f"{path}: not a readable .npy file ({e}); save it with "
                        "numpy.save") from None
    if not isinstance(data, np.ndarray):  # an .npz renamed to .npy
        raise UserError(f"{path}: holds several arrays; save the one signal with numpy.save")
    if data.dtype.kind not in "iuf":
        raise UserError(f"{path}: array has dtype {data.dtype}; save real numbers "
                        "(e.g. float32)")
    if data.ndim not in (1, 2):
        raise UserError(f"{path}: array has shape {data.shape}; save a 1-D signal or "
                        "a 2-D (samples, channels) array")
    if data.ndim == 2 and data.shape[0] == 1 and data.shape[1] > 1:
        raise UserError(f"{path}: array has shape {data.shape}, a single row; save "
                        "it as a 1-D array (x.ravel())")
    return data


def _read_csv(path):
    header_lines = 0
    try:
        with open(path, encoding="utf-8-sig") as f:  # -sig: spreadsheets prepend a BOM
            first = f.readline()
        try:
            [float(field) for field in first.split(",")]
        except ValueError:
            header_lines = 1
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "input contained no data": reported below
            data = np.loadtxt(path, delimiter=",", skiprows=header_lines, ndmin=2,
                              dtype=np.float64, encoding="utf-8-sig")
    except ValueError as e:  # includes UnicodeDecodeError
        problem = _csv_problem(path, header_lines, e)
        raise UserError(f"{path}: not a numeric CSV ({problem}); allow one header line "
                        "at most, then numbers separated by commas") from None
    return data


def _csv_problem(path, header_lines, error):
    """Name the first bad line: loadtxt's own row numbers skip the header and blanks."""
    if isinstance(error, UnicodeDecodeError):
        return "not UTF-8 text"
    with open(path, encoding="utf-8-sig") as f:
        lines = f.read().splitlines()
    width = None
    for number, line in enumerate(lines, start=1):
        if not line.strip() or number <= header_lines:
            continue
        fields = line.split(",")
        try:
            [float(field) for field in fields]
        except ValueError:
            return f"line {number} is {line[:40]!r}"
        width = width or len(fields)
        if len(fields) != width:
            return f"line {number} has {len(fields)} fields, earlier lines {width}"
    return str(error)


def _pick_channel(path, data, channel, what):
    n = 1 if data.ndim == 1 else data.shape[1]
    noun = "channel" if what == "WAV" else "column"
    if channel is None:
        if n > 1:
            raise UserError(f"{path}: {what} has {n} {noun}s; choose one with "
                            f"--channel 0..{n - 1}")
        channel = 0
    if not 0 <= operator.index(channel) < n:
        raise UserError(f"{path}: --channel {channel} is out of range; {what} has {n} "
                        f"{noun}{'s' if n > 1 else ''}, numbered 0..{n - 1}")
    return data if data.ndim == 1 else data[:, channel]


def _check_finite(source, x):
    bad = ~np.isfinite(x)
    if bad.any():
        count = int(bad.sum())
        raise UserError(f"{source}: {count} sample{' is' if count == 1 else 's are'} NaN or "
                        f"Inf, the first at index {int(np.argmax(bad))}; clean or "
                        "interpolate them first")


# ---------------------------------------------------------------- many files

def iter_sources(spec: str) -> list[str]:
    """Expand a file, a directory (its .wav/.npy/.csv files) or a glob into sorted paths."""
    spec = os.fspath(spec)
    if os.path.isfile(spec):
        return [spec]
    if os.path.isdir(spec):
        found = sorted(str(p) for p in Path(spec).iterdir()
                       if p.is_file() and p.suffix.lower() in SUFFIXES)
        if not found:
            raise UserError(f"{spec}: directory has no .wav, .npy or .csv files")
        return found
    if not glob.has_magic(spec):
        raise UserError(f"{spec}: file or directory not found")
    matches = [m for m in glob.glob(spec, recursive=True) if os.path.isfile(m)]
    found = sorted(m for m in matches if Path(m).suffix.lower() in SUFFIXES)
    if not found:
        raise UserError(f"{spec}: pattern matches no .wav, .npy or .csv files"
                        + (f" ({len(matches)} other files)" if matches else ""))
    return found


# ---------------------------------------------------------------- splits and scaling

def split_by_time(n: int, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
                  ) -> tuple[slice, slice, slice]:
    """Contiguous train/val/test slices covering range(n) in order.

    Contiguous rather than shuffled: neighbouring windows overlap, so shuffling
    would leak training samples into validation.
    """
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-6:
        raise UserError(f"split fractions {tuple(fractions)} must be three non-negative "
                        "numbers that add up to 1")
    n = operator.index(n)
    # Round half up, not to even: any fraction worth >= 1 sample then gets one.
    a = min(n, math.floor(n * fractions[0] + 0.5))
    b = max(a, min(n, math.floor(n * (fractions[0] + fractions[1]) + 0.5)))
    parts = (slice(0, a), slice(a, b), slice(b, n))
    for name, part, fraction in zip(("train", "validation", "test"), parts, fractions):
        if fraction > 0 and part.stop == part.start:
            raise UserError(f"signal of {n} samples is too short for a {name} split of "
                            f"{fraction:g}; use a longer signal")
    return parts


@dataclass(frozen=True)
class NormStats:
    """x_normalised = (x - offset) / scale; stored with a model so C code can undo it."""
    offset: float
    scale: float

    def apply(self, x: np.ndarray) -> np.ndarray:
        return ((np.asarray(x, np.float32) - self.offset) / self.scale).astype(np.float32)

    def invert(self, y: np.ndarray) -> np.ndarray:
        return (np.asarray(y, np.float32) * self.scale + self.offset).astype(np.float32)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> NormStats:
        return cls(offset=float(d["offset"]), scale=float(d["scale"]))


def compute_norm(x: np.ndarray) -> NormStats:
    """Mean and standard deviation of the training split only, so no test data leaks in."""
    x = np.asarray(x, dtype=np.float64)  # float32 sums drift on long signals
    if x.size == 0:
        raise UserError("training split is empty; use a longer signal")
    mean, std = float(x.mean()), float(x.std())
    if not np.isfinite(std) or std <= np.finfo(np.float32).tiny:
        raise UserError("training split is constant (or not finite) and cannot be "
                        "normalised; use a signal that varies")
    return NormStats(offset=mean, scale=std)


# ---------------------------------------------------------------- writing

def write_wav(path: str | os.PathLike, samples_float: np.ndarray, sample_rate: int) -> None:
    """Write a mono 16-bit PCM WAV from floats in [-1, 1], clipping beyond.

    Written to a temporary file then renamed, so an interrupted run never
    leaves a half-written WAV that later loads as 'truncated'.
    """
    x = np.asarray(samples_float, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"write_wav wants a 1-D signal, got shape {x.shape}")
    if not 0 < sample_rate < 2**32:
        raise ValueError(f"write_wav needs a positive sample rate, got {sample_rate}")
    _check_finite(f"cannot write {path}", x)
    # x * 32768 mirrors load_signal's int16 / 32768, so a round trip keeps the level.
    pcm = np.clip(np.round(x * 32768), -32768, 32767).astype("<i2")
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        # os.open applies the umask, unlike tempfile, so the result has normal permissions.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as f:
            wavfile.write(f, int(sample_rate), pcm)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        raise UserError(f"{path}: cannot write WAV ({e.strerror}); check the directory "
                        "exists and is writable") from None
    finally:
        tmp.unlink(missing_ok=True)  # only still there if something failed
