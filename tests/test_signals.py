"""Tests for edgewave.signals: formats, channel choice, user errors, chunks, splits."""

import os
import stat
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, strategies as st
from scipy.io import wavfile

import edgewave
from edgewave import signals
from edgewave.errors import UserError
from edgewave.signals import (NormStats, Signal, compute_norm, iter_chunks, iter_sources,
                              load_signal, split_by_time, write_wav)

BUNDLED = Path(edgewave.__file__).parent / "data" / "speech16k.wav"


def wav_bytes(data: bytes, *, channels=1, rate=16000, bits=16, fmt_tag=1, extra=b""):
    """A WAV container around raw sample bytes, for formats scipy cannot write (24-bit)."""
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", fmt_tag, channels, rate, rate * block, block, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + extra
    body += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def int24_bytes(values: np.ndarray) -> bytes:
    """Little-endian 3-byte two's complement, interleaved as given (row-major)."""
    v = np.asarray(values, dtype="<i4").reshape(-1)
    return v.view(np.uint8).reshape(-1, 4)[:, :3].tobytes()


def write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def error_of(path, **kw) -> str:
    with pytest.raises(UserError) as e:
        load_signal(path, **kw)
    message = str(e.value)
    assert "\n" not in message and message.startswith(str(path))
    return message


# ---------------------------------------------------------------- WAV formats

PCM_CASES = {
    "uint8": (np.array([0, 1, 64, 128, 200, 255], np.uint8),
              np.array([-1, -127 / 128, -0.5, 0, 72 / 128, 127 / 128])),
    "int16": (np.array([-32768, -16384, -1, 0, 1, 32767], np.int16),
              np.array([-1, -0.5, -1 / 32768, 0, 1 / 32768, 32767 / 32768])),
    "int32": (np.array([-2**31, -2**30, -1, 0, 123456789, 2**31 - 1], np.int32),
              np.array([-1, -0.5, -2.0**-31, 0, 123456789 / 2**31, (2**31 - 1) / 2**31])),
    "float32": (np.array([-1.5, -1, -0.25, 0, 0.3, 1], np.float32),
                np.array([-1.5, -1, -0.25, 0, 0.3, 1], np.float32)),
    "float64": (np.array([-1, -1e-9, 0, 0.1, 0.7, 2.5], np.float64),
                np.array([-1, -1e-9, 0, 0.1, 0.7, 2.5])),
}


@pytest.mark.parametrize("rate", [8000, 11025, 44100, 96000])
@pytest.mark.parametrize("kind", PCM_CASES)
def test_wav_formats_scale_to_expected_floats(tmp_path, kind, rate):
    raw, expected = PCM_CASES[kind]
    path = tmp_path / f"{kind}.wav"
    wavfile.write(path, rate, raw)
    sig = load_signal(path)
    assert isinstance(sig, Signal)
    assert sig.sample_rate == rate and sig.source == str(path)
    assert sig.samples.dtype == np.float32 and sig.samples.ndim == 1
    np.testing.assert_array_equal(sig.samples, expected.astype(np.float32))


def test_24bit_wav_scales_by_2_pow_23(tmp_path):
    values = np.array([-2**23, -2**22, -1, 0, 1, 12345, 2**23 - 1])
    path = write_bytes(tmp_path / "pcm24.wav", wav_bytes(int24_bytes(values), bits=24, rate=48000))
    sig = load_signal(path)
    assert sig.sample_rate == 48000
    np.testing.assert_array_equal(sig.samples, (values / 2**23).astype(np.float32))


def test_24bit_stereo_channel_and_chunks(tmp_path):
    left = np.arange(-500, 500) * 8000
    right = -left + 7
    frames = np.stack([left, right], axis=1)
    path = write_bytes(tmp_path / "s24.wav", wav_bytes(int24_bytes(frames), channels=2, bits=24))
    expected = (right / 2**23).astype(np.float32)
    np.testing.assert_array_equal(load_signal(path, channel=1).samples, expected)
    np.testing.assert_array_equal(np.concatenate(list(iter_chunks(path, 77, channel=1))), expected)


def test_stereo_wav_channel_selection(tmp_path):
    frames = np.array([[100, -200], [300, -400], [500, -600]], np.int16)
    path = tmp_path / "stereo.wav"
    wavfile.write(path, 8000, frames)
    np.testing.assert_array_equal(load_signal(path, channel=0).samples,
                                  np.float32([100, 300, 500]) / 32768)
    np.testing.assert_array_equal(load_signal(path, channel=1).samples,
                                  np.float32([-200, -400, -600]) / 32768)
    message = error_of(path)
    assert "2 channels" in message and "--channel 0..1" in message
    for bad in (2, -1):
        message = error_of(path, channel=bad)
        assert "out of range" in message and f"--channel {bad}" in message


def test_mono_wav_accepts_channel_0_only(tmp_path):
    path = tmp_path / "mono.wav"
    wavfile.write(path, 8000, np.int16([1, 2, 3]))
    assert len(load_signal(path, channel=0).samples) == 3
    assert "out of range" in error_of(path, channel=1)


def test_wav_metadata_chunk_does_not_leak_scipy_warning(tmp_path):
    extra = b"abcd" + struct.pack("<I", 4) + b"meta"  # a chunk scipy warns about and skips
    data = np.int16([1, -2, 3]).tobytes()
    path = write_bytes(tmp_path / "meta.wav", wav_bytes(data, extra=extra))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sig = load_signal(path)
        chunks = list(iter_chunks(path, 2))
    np.testing.assert_array_equal(sig.samples, np.float32([1, -2, 3]) / 32768)
    np.testing.assert_array_equal(np.concatenate(chunks), sig.samples)


# ---------------------------------------------------------------- npy and csv

def test_npy_shapes_and_values_kept_as_is(tmp_path):
    x = np.array([3, -1, 250, 7], np.int16)  # not PCM: .npy values keep their units
    np.save(tmp_path / "a.npy", x)
    np.save(tmp_path / "col.npy", x[:, None].astype(np.float64))
    np.save(tmp_path / "multi.npy", np.stack([x, 2 * x, 3 * x], axis=1))
    for name, kw in [("a", {}), ("col", {}), ("multi", {"channel": 0})]:
        sig = load_signal(tmp_path / f"{name}.npy", **kw)
        assert sig.sample_rate is None and sig.samples.dtype == np.float32
        np.testing.assert_array_equal(sig.samples, x.astype(np.float32))
    np.testing.assert_array_equal(load_signal(tmp_path / "multi.npy", channel=2).samples,
                                  3 * x.astype(np.float32))
    message = error_of(tmp_path / "multi.npy")
    assert "3 columns" in message and "--channel 0..2" in message
    assert "out of range" in error_of(tmp_path / "multi.npy", channel=3)


@pytest.mark.parametrize("array, phrase", [
    (np.zeros((2, 3, 4)), "shape (2, 3, 4)"),
    (np.ones((1, 50)), "single row"),
    (np.array(["a", "b"]), "dtype"),
    (np.array([1 + 2j, 3j]), "dtype"),
    (np.zeros(0, np.float32), "no samples"),
])
def test_npy_bad_arrays(tmp_path, array, phrase):
    np.save(tmp_path / "bad.npy", array)
    assert phrase in error_of(tmp_path / "bad.npy")


def test_npy_garbage_and_npz(tmp_path):
    assert "not a readable .npy" in error_of(write_bytes(tmp_path / "g.npy", b"garbage bytes"))
    np.savez(tmp_path / "z.npz", a=np.arange(3.0), b=np.arange(2.0))
    os.replace(tmp_path / "z.npz", tmp_path / "z.npy")
    assert "several arrays" in error_of(tmp_path / "z.npy")


@pytest.mark.parametrize("text", ["0.5\n-1\n2e-3\n", "value\n0.5\n-1\n2e-3\n",
                                  "\ufeffvalue\r\n0.5\r\n-1\r\n\r\n2e-3\r\n"])
def test_csv_single_column_with_or_without_header(tmp_path, text):
    path = tmp_path / "s.csv"
    path.write_text(text, encoding="utf-8", newline="")
    sig = load_signal(path)
    assert sig.sample_rate is None
    np.testing.assert_array_equal(sig.samples, np.float32([0.5, -1, 2e-3]))


def test_csv_columns_need_channel(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("t,a,b\n0,1,10\n1,2,20\n2,3,30\n")
    np.testing.assert_array_equal(load_signal(path, channel=2).samples, np.float32([10, 20, 30]))
    message = error_of(path)
    assert "3 columns" in message and "--channel 0..2" in message


@pytest.mark.parametrize("text, phrase", [
    ("a\n1\n2\nx\n", "line 4 is 'x'"),
    ("h1\nh2\n1\n", "line 2 is 'h2'"),
    ("1\n2\n3,4\n", "line 3 has 2 fields"),
    ("value\n", "no samples"),
])
def test_csv_bad_content(tmp_path, text, phrase):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    assert phrase in error_of(path)


def test_csv_not_utf8(tmp_path):
    assert "not UTF-8" in error_of(write_bytes(tmp_path / "b.csv", b"\xff\xfe\x00\x01\n1\n"))


# ---------------------------------------------------------------- errors common to all formats

def test_missing_directory_and_unknown_extension(tmp_path):
    assert "not found" in error_of(tmp_path / "nope.wav")
    assert "is a directory" in error_of(tmp_path)
    message = error_of(write_bytes(tmp_path / "song.mp3", b"ID3 whatever"))
    assert "unsupported file type '.mp3'" in message and ".wav, .npy or .csv" in message


@pytest.mark.parametrize("suffix", [".wav", ".npy", ".csv"])
def test_empty_file(tmp_path, suffix):
    assert "file is empty" in error_of(write_bytes(tmp_path / f"e{suffix}", b""))


def test_truncated_wav(tmp_path):
    path = tmp_path / "t.wav"
    wavfile.write(path, 16000, np.arange(-500, 500, dtype=np.int16))
    path.write_bytes(path.read_bytes()[:-301])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scipy's warning must become our error, not leak
        assert "truncated" in error_of(path)
        with pytest.raises(UserError, match="truncated"):
            iter_chunks(path, 100)


@pytest.mark.parametrize("data", [
    b"this is plain text, not audio at all",
    b"RIFF\x10\x00\x00\x00WAVEfmt ",  # header cut inside the fmt chunk
    wav_bytes(b"\x00" * 8, fmt_tag=2),  # ADPCM, which scipy does not decode
])
def test_corrupt_or_non_wav_bytes(tmp_path, data):
    path = write_bytes(tmp_path / "bad.wav", data)
    assert "not a readable WAV file" in error_of(path)
    with pytest.raises(UserError, match="not a readable WAV file"):
        iter_chunks(path, 10)


def test_wav_with_zero_samples(tmp_path):
    assert "no samples" in error_of(write_bytes(tmp_path / "z.wav", wav_bytes(b"")))


def test_nan_and_inf_reported_with_count_and_first_index(tmp_path):
    x = np.linspace(-1, 1, 20, dtype=np.float32)
    x[[5, 9, 17]] = [np.nan, np.inf, -np.inf]
    wavfile.write(tmp_path / "n.wav", 8000, x)
    np.save(tmp_path / "n.npy", x)
    for path in (tmp_path / "n.wav", tmp_path / "n.npy"):
        assert "3 samples are NaN or Inf, the first at index 5" in error_of(path)
        chunks = iter_chunks(path, 4)
        with pytest.raises(UserError, match="3 samples are NaN or Inf, the first at index 5"):
            list(chunks)


def test_constant_signal(tmp_path):
    wavfile.write(tmp_path / "c.wav", 8000, np.full(100, 1000, np.int16))
    (tmp_path / "c.csv").write_text("0.25\n" * 10)
    for path in (tmp_path / "c.wav", tmp_path / "c.csv"):
        assert "constant" in error_of(path)


# ---------------------------------------------------------------- chunks

def _format_files(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1001, 2))
    wavfile.write(tmp_path / "u8.wav", 8000, rng.integers(0, 256, (1001, 2), dtype=np.uint8))
    wavfile.write(tmp_path / "i16.wav", 8000, (x * 3000).astype(np.int16))
    wavfile.write(tmp_path / "i32.wav", 8000, (x * 2**28).astype(np.int32))
    wavfile.write(tmp_path / "f32.wav", 8000, x.astype(np.float32))
    write_bytes(tmp_path / "i24.wav",
                wav_bytes(int24_bytes((x * 2**20).astype(int)), channels=2, bits=24))
    np.save(tmp_path / "f64.npy", x)
    np.savetxt(tmp_path / "c.csv", x, delimiter=",", header="a,b", comments="")
    return sorted(tmp_path.iterdir())


@pytest.mark.parametrize("chunk", [1, 7, 1000, 5000])
def test_iter_chunks_concatenate_to_load_signal(tmp_path, chunk):
    for path in _format_files(tmp_path):
        whole = load_signal(path, channel=1).samples
        chunks = list(iter_chunks(path, chunk, channel=1))
        assert all(c.dtype == np.float32 and 0 < len(c) <= chunk for c in chunks), path
        np.testing.assert_array_equal(np.concatenate(chunks), whole, err_msg=str(path))


def test_iter_chunks_memory_maps_wav_and_npy(tmp_path, monkeypatch):
    wavfile.write(tmp_path / "a.wav", 8000, np.arange(100, dtype=np.int16))
    np.save(tmp_path / "a.npy", np.arange(100.0))
    seen = []
    real_read, real_load = wavfile.read, np.load
    monkeypatch.setattr(signals.wavfile, "read",
                        lambda p, mmap=False: seen.append(("wav", mmap)) or real_read(p, mmap=mmap))
    monkeypatch.setattr(signals.np, "load",
                        lambda p, mmap_mode=None, **kw: seen.append(("npy", mmap_mode))
                        or real_load(p, mmap_mode=mmap_mode, **kw))
    list(iter_chunks(tmp_path / "a.wav", 10))
    list(iter_chunks(tmp_path / "a.npy", 10))
    assert seen == [("wav", True), ("npy", "r")]


def test_iter_chunks_rejects_bad_chunk_size(tmp_path):
    wavfile.write(tmp_path / "a.wav", 8000, np.arange(10, dtype=np.int16))
    with pytest.raises(ValueError):
        iter_chunks(tmp_path / "a.wav", 0)


# ---------------------------------------------------------------- sources

def test_iter_sources_file_directory_glob(tmp_path):
    for name in ["b.wav", "a.npy", "c.CSV", "notes.txt"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "d.wav").write_bytes(b"x")
    expected = [str(tmp_path / n) for n in ["a.npy", "b.wav", "c.CSV"]]
    assert iter_sources(str(tmp_path / "b.wav")) == [str(tmp_path / "b.wav")]
    assert iter_sources(str(tmp_path)) == expected
    assert iter_sources(str(tmp_path / "*")) == expected
    assert iter_sources(str(tmp_path / "**" / "*.wav")) == [str(tmp_path / "b.wav"),
                                                            str(tmp_path / "sub" / "d.wav")]


def test_iter_sources_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("x")
    cases = [(tmp_path / "missing.wav", "not found"),
             (tmp_path / "empty", "no .wav, .npy or .csv files"),
             (tmp_path / "*.wav", "matches no .wav, .npy or .csv files"),
             (tmp_path / "*.txt", "(1 other files)")]
    for spec, phrase in cases:
        with pytest.raises(UserError) as e:
            iter_sources(str(spec))
        assert phrase in str(e.value)


# ---------------------------------------------------------------- splits and normalisation

fractions = st.tuples(st.integers(1, 100), st.integers(0, 100), st.integers(0, 100)).map(
    lambda t: tuple(v / sum(t) for v in t))


@given(n=st.integers(0, 10**7), fractions=fractions)
def test_split_by_time_covers_range_without_overlap(n, fractions):
    try:
        parts = split_by_time(n, fractions)
    except UserError as e:
        assert "too short" in str(e)
        assert any(f > 0 and n * f < 1 + 1e-9 for f in fractions)
        return
    assert parts[0].start == 0 and parts[-1].stop == n
    for left, right in zip(parts, parts[1:]):
        assert left.stop == right.start
    for part, fraction in zip(parts, fractions):
        assert part.step is None and part.start <= part.stop
        assert abs((part.stop - part.start) - n * fraction) <= 1
        assert (part.stop > part.start) == (fraction > 0)


def test_split_by_time_default_and_errors():
    assert split_by_time(1000) == (slice(0, 800), slice(800, 900), slice(900, 1000))
    with pytest.raises(UserError, match="add up to 1"):
        split_by_time(100, (0.5, 0.2, 0.2))
    with pytest.raises(UserError, match="non-negative"):
        split_by_time(100, (1.2, -0.2, 0.0))
    with pytest.raises(UserError, match="5 samples is too short for a test split"):
        split_by_time(5, (0.8, 0.1, 0.1))
    assert split_by_time(10, (0.8, 0.1, 0.1)) == (slice(0, 8), slice(8, 9), slice(9, 10))
    assert split_by_time(7, (1, 0, 0)) == (slice(0, 7), slice(7, 7), slice(7, 7))


def test_compute_norm_and_norm_stats():
    x = np.array([1.0, 2.0, 3.0, 6.0], np.float32)
    stats = compute_norm(x)
    assert stats.offset == pytest.approx(3.0) and stats.scale == pytest.approx(np.std(x))
    assert NormStats.from_dict(stats.to_dict()) == stats
    assert stats.to_dict() == {"offset": stats.offset, "scale": stats.scale}
    y = stats.apply(x)
    assert y.dtype == np.float32
    assert float(y.mean()) == pytest.approx(0, abs=1e-6) and float(y.std()) == pytest.approx(1)
    np.testing.assert_allclose(stats.invert(y), x, rtol=1e-6)
    for bad in (np.full(10, 0.5), np.array([]), np.array([1.0, np.nan])):
        with pytest.raises(UserError, match="training split"):
            compute_norm(bad)


# ---------------------------------------------------------------- writing

def test_write_wav_round_trips_and_clips(tmp_path):
    x = np.array([-1.5, -1, -0.5, 0, 0.25, 0.999, 1, 3], np.float32)
    path = tmp_path / "out.wav"
    write_wav(path, x, 22050)
    rate, raw = wavfile.read(path)
    assert rate == 22050 and raw.dtype == np.int16
    np.testing.assert_array_equal(raw, [-32768, -32768, -16384, 0, 8192, 32735, 32767, 32767])
    sig = load_signal(path)
    np.testing.assert_allclose(sig.samples, np.clip(x, -1, 32767 / 32768), atol=0.5 / 32768)
    assert sorted(os.listdir(tmp_path)) == ["out.wav"]  # no temporary file left behind
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_write_wav_failure_keeps_old_file(tmp_path):
    path = tmp_path / "out.wav"
    write_wav(path, np.array([0.1, -0.1]), 8000)
    before = path.read_bytes()
    with pytest.raises(UserError, match="1 sample is NaN"):
        write_wav(path, np.array([0.1, np.nan]), 8000)
    with pytest.raises(UserError, match="cannot write WAV"):
        write_wav(tmp_path / "no" / "such" / "dir.wav", np.zeros(3), 8000)
    assert path.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["out.wav"]


# ---------------------------------------------------------------- bundled example

def test_bundled_speech_loads():
    assert BUNDLED.stat().st_size <= 400_000
    sig = load_signal(BUNDLED)
    assert sig.sample_rate == 16000 and len(sig.samples) >= 100_000
    peak = float(np.abs(sig.samples).max())
    assert 0.6 < peak < 0.75  # normalised to about -3 dBFS
    assert float(np.sqrt(np.mean(sig.samples ** 2))) > 0.02  # speech, not near-silence
    rate, raw = wavfile.read(BUNDLED)
    assert raw.dtype == np.int16 and raw.ndim == 1
