"""Loss models, classic concealers (zero fill, repetition, G.711 Appendix I) and their scores."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from scipy.signal import lfilter

from edgewave.errors import UserError
from edgewave.plc.baselines import G711Lengths, g711_appendix_i, g711_pitch, repeat_previous, zero_fill
from edgewave.plc.loss import frame_mask, gilbert_elliott_p, lost_frames, n_frames
from edgewave.plc.metrics import pesq_score, snr_lost_db, stoi_score

CONCEALERS = [zero_fill, repeat_previous, g711_appendix_i]


def voiced(rate: int, f0: float, seconds: float, vibrato: float = 0.0) -> np.ndarray:
    """A vowel-like signal: a pulse train at f0 (optionally +-vibrato at 3 Hz) through two formants."""
    t = np.arange(int(rate * seconds)) / rate
    phase = np.cumsum(f0 * (1.0 + vibrato * np.sin(2 * np.pi * 3.0 * t))) / rate
    x = np.diff(np.floor(phase), prepend=0.0)  # one unit pulse per period
    for centre, bandwidth in ((600.0, 100.0), (1400.0, 150.0)):
        r = np.exp(-np.pi * bandwidth / rate)
        theta = 2 * np.pi * centre / rate
        x = lfilter([1 - r], [1, -2 * r * np.cos(theta), r * r], x)
    return x / np.max(np.abs(x))


def syllables(x: np.ndarray, rate: int) -> np.ndarray:
    """x modulated at 2 Hz, so PESQ's and STOI's voice activity finds speech-like onsets."""
    return x * (0.5 + 0.5 * np.sin(2 * np.pi * 2.0 * np.arange(x.size) / rate))


def gaps(n_samples: int, frame_len: int, spans: list[tuple[int, int]]) -> np.ndarray:
    """Per-frame pattern with the frames [a, b) of each span lost."""
    lost = np.zeros(n_frames(n_samples, frame_len), bool)
    for a, b in spans:
        lost[a:b] = True
    return lost


# ------------------------------------------------------------------ loss models

def runs_of(lost: np.ndarray) -> np.ndarray:
    edges = np.diff(np.concatenate([[0], lost.astype(np.int8), [0]]))
    return np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)


def test_independent_losses_hit_the_rate_and_have_geometric_bursts():
    n, loss = 200_000, 0.1
    lost = lost_frames(n, loss, seed=3)
    sigma = np.sqrt(loss * (1 - loss) / n)
    assert lost.dtype == bool and lost.shape == (n,)
    assert abs(lost.mean() - loss) < 5 * sigma
    assert abs(runs_of(lost).mean() - 1 / (1 - loss)) < 0.02  # independent: mean burst 1/(1-loss)


@pytest.mark.parametrize("loss, burst", [(0.1, 2.0), (0.05, 4.0), (0.3, 1.5), (0.2, 1.0), (0.5, 1.0)])
def test_gilbert_elliott_hits_loss_rate_and_mean_burst(loss, burst):
    n = 200_000
    lost = lost_frames(n, loss, burst=burst, seed=11)
    p, r = gilbert_elliott_p(loss, burst), 1 / burst
    # Successive frames are correlated (eigenvalue 1 - p - r), which widens the spread of the mean.
    lam = 1 - p - r
    sigma_rate = np.sqrt(loss * (1 - loss) / n * (1 + lam) / (1 - lam))
    assert abs(lost.mean() - loss) <= 5 * sigma_rate  # = 0 for loss 0.5, burst 1: strict alternation
    runs = runs_of(lost)
    sigma_burst = np.sqrt(1 - r) / r / np.sqrt(runs.size)  # bursts are geometric with mean 1/r
    assert abs(runs.mean() - burst) < 5 * sigma_burst + 1e-9
    assert abs(np.mean(runs == 1) - r) < 0.03  # and geometric, not just of the right mean


@pytest.mark.parametrize("burst", [None, 3.0])
def test_the_first_frame_is_already_stationary(burst):
    firsts = np.array([lost_frames(1, 0.2, burst=burst, seed=s)[0] for s in range(3000)])
    assert abs(firsts.mean() - 0.2) < 5 * np.sqrt(0.2 * 0.8 / firsts.size)


@pytest.mark.parametrize("burst", [None, 2.5])
def test_loss_patterns_are_deterministic_per_seed(burst):
    a = lost_frames(5000, 0.15, burst=burst, seed=7)
    assert np.array_equal(a, lost_frames(5000, 0.15, burst=burst, seed=7))
    assert not np.array_equal(a, lost_frames(5000, 0.15, burst=burst, seed=8))
    assert np.array_equal(a[:1000], lost_frames(1000, 0.15, burst=burst, seed=7))  # a prefix, not reshuffled


def test_no_loss_loses_nothing():
    assert not lost_frames(1000, 0.0).any()
    assert not lost_frames(1000, 0.0, burst=3.0).any()
    assert lost_frames(0, 0.1, burst=2.0).shape == (0,)


@pytest.mark.parametrize("kwargs, words", [
    (dict(loss=-0.1), "[0, 1)"),
    (dict(loss=1.0), "[0, 1)"),
    (dict(loss=float("nan")), "[0, 1)"),
    (dict(loss=0.1, burst=0.5), "below 1"),
    (dict(loss=0.1, burst=float("inf")), "below 1"),
    (dict(loss=0.6, burst=1.0), "burst >= 1.5 or loss <= 0.5"),
    (dict(loss=0.8, burst=2.0), "burst >= 4 or loss <= 0.6667"),
])
def test_bad_loss_parameters_are_user_errors(kwargs, words):
    with pytest.raises(UserError) as e:
        lost_frames(100, **kwargs)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_frame_mask_counts_a_partial_last_frame():
    assert n_frames(160, 80) == 2 and n_frames(161, 80) == 3 and n_frames(0, 80) == 0
    mask = frame_mask(np.array([False, True, True]), 80, 170)
    assert mask.shape == (170,) and not mask[:80].any() and mask[80:].all()
    with pytest.raises(UserError, match="need 3"):
        frame_mask(np.array([False, True]), 80, 170)
    with pytest.raises(UserError, match="not positive"):
        n_frames(100, 0)


# ------------------------------------------------------------------ baselines, any concealer

@pytest.mark.parametrize("rate, frame_len", [(8000, 80), (8000, 160), (8000, 40), (8000, 128), (16000, 160),
                                             (16000, 320), (16000, 240)])
@pytest.mark.parametrize("conceal", CONCEALERS, ids=lambda f: f.__name__)
def test_lost_samples_are_never_read(conceal, rate, frame_len):
    x = voiced(rate, 130, 1.0, vibrato=0.02) * 3000.0
    lost = lost_frames(n_frames(x.size, frame_len), 0.25, burst=2.0, seed=5)
    lost[0] = True  # a signal that starts lost
    mask = frame_mask(lost, frame_len, x.size)
    clean = conceal(x, lost, frame_len, rate)
    for garbage in (np.nan, 1e30):
        poisoned = x.copy()
        poisoned[mask] = garbage
        y = conceal(poisoned, lost, frame_len, rate)
        assert np.all(np.isfinite(y))
        assert np.array_equal(y, clean)


def test_zero_fill_is_exact():
    x = np.arange(1.0, 251.0)
    lost = np.array([False, True, False, True])  # the last, partial frame (10 samples) lost too
    y = zero_fill(x, lost, 80, 8000)
    assert np.array_equal(y[:80], x[:80]) and not y[80:160].any()
    assert np.array_equal(y[160:240], x[160:240]) and not y[240:].any()


def test_repeat_previous_is_exact():
    x = np.arange(1.0, 411.0)
    lost = np.array([True, False, True, True, False, True])  # 5 full frames of 80, then 10 samples
    y = repeat_previous(x, lost, 80, 8000)
    assert not y[:80].any()  # nothing received yet: silence
    assert np.array_equal(y[80:160], x[80:160])
    assert np.array_equal(y[160:240], x[80:160]) and np.array_equal(y[240:320], x[80:160])
    assert np.array_equal(y[320:400], x[320:400])
    assert np.array_equal(y[400:], x[320:330])


def test_concealers_reject_a_mismatched_pattern():
    with pytest.raises(UserError, match="frames"):
        g711_appendix_i(np.zeros(800), np.zeros(3, bool), 80, 8000)


# ------------------------------------------------------------------ G.711 Appendix I

def snrs_at_10_percent(rate: int, f0: float, frame_ms: int) -> dict[str, float]:
    x = voiced(rate, f0, 3.0, vibrato=0.02)  # slight vibrato: a frame is never exactly periodic
    frame_len = rate * frame_ms // 1000
    lost = lost_frames(n_frames(x.size, frame_len), 0.1, seed=1)
    mask = frame_mask(lost, frame_len, x.size)
    return {f.__name__: snr_lost_db(x, f(x, lost, frame_len, rate), mask) for f in CONCEALERS}


@pytest.mark.parametrize("frame_ms", [10, 20])
@pytest.mark.parametrize("f0", [100, 180])
@pytest.mark.parametrize("rate", [8000, 16000])
def test_g711_beats_repetition_and_zero_fill_on_voiced_speech(rate, f0, frame_ms):
    snr = snrs_at_10_percent(rate, f0, frame_ms)
    print(f"\n{rate} Hz, f0 {f0} Hz, {frame_ms} ms frames, SNR over lost frames (dB): "
          + ", ".join(f"{k} {v:.2f}" for k, v in snr.items()))
    assert snr["zero_fill"] == 0.0
    assert snr["g711_appendix_i"] > max(snr["repeat_previous"], snr["zero_fill"]) + 1.0


@pytest.mark.parametrize("f0", [100, 180])
@pytest.mark.parametrize("rate", [8000, 16000])
def test_g711_pitch_is_within_a_sample_of_the_period(rate, f0):
    x = voiced(rate, f0, 1.0)
    c = G711Lengths.at(rate)
    for end in range(c.history, x.size, rate // 7):
        assert abs(g711_pitch(x[:end], rate) - rate / f0) <= 1.0


@pytest.mark.parametrize("rate, frame_ms", [(8000, 10), (8000, 20), (16000, 10), (8000, 16), (16000, 5)])
def test_g711_is_silent_after_60_ms_and_exact_far_from_gaps(rate, frame_ms):
    x = voiced(rate, 120, 1.5, vibrato=0.02)
    frame_len = rate * frame_ms // 1000
    gap = (400 // frame_ms, 400 // frame_ms + -(-100 // frame_ms))  # >= 100 ms lost from 0.4 s
    short = (900 // frame_ms, 900 // frame_ms + 1)                 # one frame lost at 0.9 s
    lost = gaps(x.size, frame_len, [gap, short])
    y = g711_appendix_i(x, lost, frame_len, rate)
    c = G711Lengths.at(rate)
    start, stop = gap[0] * frame_len, gap[1] * frame_len
    ms = rate // 1000

    assert not y[start + 60 * ms:stop].any()
    assert np.any(y[start + 50 * ms:start + 60 * ms])  # fading, not silent yet
    assert np.max(np.abs(y[start:start + 10 * ms])) > 0.5 * np.max(np.abs(x[start - 10 * ms:start]))

    near = np.zeros(x.size, bool)  # where the standard may change received samples
    for a, b in (gap, short):
        near[a * frame_len - c.overlap_max:b * frame_len + c.block] = True
    received = ~frame_mask(lost, frame_len, x.size)
    assert np.array_equal(y[received & ~near], x[received & ~near])
    assert not np.array_equal(y[received & near], x[received & near])  # the overlap-adds happen


def test_g711_fades_in_after_a_long_gap():
    rate, frame_len = 8000, 80
    x = voiced(rate, 120, 1.0)
    lost = gaps(x.size, frame_len, [(30, 40)])  # 100 ms: silent at the end, so the fade starts at 0
    y = g711_appendix_i(x, lost, frame_len, rate)
    w = np.arange(1, 81) / 80  # capped at 10 ms
    assert np.allclose(y[3200:3280], w * x[3200:3280])


def test_g711_ignores_the_signal_scale():
    rate, frame_len = 16000, 320
    x = voiced(rate, 150, 1.0, vibrato=0.02)
    lost = lost_frames(n_frames(x.size, frame_len), 0.2, burst=2.0, seed=2)
    y = g711_appendix_i(x, lost, frame_len, rate)
    assert np.allclose(g711_appendix_i(x * 1e-4, lost, frame_len, rate), y * 1e-4, atol=1e-16)
    assert np.allclose(g711_appendix_i(x * 32767, lost, frame_len, rate), y * 32767, atol=1e-9)


class BlockwiseG711:
    """The standard as written: 10 ms blocks in, 10 ms blocks out, delayed by POVERLAPMAX."""

    def __init__(self, rate: int):
        self.rate, self.c = rate, G711Lengths.at(rate)
        self.history = np.zeros(self.c.history)
        self.erased = 0

    def _save(self, block: np.ndarray) -> np.ndarray:
        self.history = np.concatenate([self.history[block.size:], block])
        h, d = self.history.size, self.c.overlap_max
        return self.history[h - block.size - d:h - d].copy()

    def _use_periods(self, k: int) -> None:
        self.blen = k * self.pitch
        start = self.pitchbuf.size - self.blen
        q = self.q
        w = np.arange(1, q + 1) / q
        self.pitchbuf[-q:] = (1 - w) * self.lastq + w * self.pitchbuf[start - q:start]

    def _get(self, n: int) -> np.ndarray:
        out = np.empty(n)
        for i in range(n):
            out[i] = self.pitchbuf[self.pitchbuf.size - self.blen + self.offset]
            self.offset = (self.offset + 1) % self.blen
        return out

    def _scaled(self, out: np.ndarray) -> np.ndarray:
        f = self.c.block
        return out * (1 - (self.erased - 1) * 0.2 - np.arange(f) * 0.2 / f)

    def bad(self) -> np.ndarray:
        f, q = self.c.block, getattr(self, "q", 0)
        if self.erased == 0:
            self.pitchbuf = self.history.copy()
            self.pitch = g711_pitch(self.pitchbuf, self.rate)
            self.q = q = self.pitch >> 2
            self.lastq = self.pitchbuf[-q:].copy()
            self.offset = 0
            self._use_periods(1)
            self.history[-q:] = self.pitchbuf[-q:]
            out = self._get(f)
        elif self.erased in (1, 2):
            saved = self.offset
            tail = self._get(q)
            self.offset = saved
            while self.offset > self.pitch:
                self.offset -= self.pitch
            self._use_periods(self.erased + 1)
            out = self._get(f)
            w = np.arange(1, q + 1) / q
            out[:q] = (1 - w) * tail + w * out[:q]
            out = self._scaled(out)
        elif self.erased > 5:
            out = np.zeros(f)
        else:
            out = self._scaled(self._get(f))
        self.erased += 1
        return self._save(out)

    def good(self, block: np.ndarray) -> np.ndarray:
        block = block.copy()
        if self.erased:
            n = min(self.q + (self.erased - 1) * self.c.end_ola_step, self.c.block)
            gain = max(0.0, 1 - (self.erased - 1) * 0.2)
            w = np.arange(1, n + 1) / n
            block[:n] = (1 - w) * gain * self._get(n) + w * block[:n]
            self.erased = 0
        return self._save(block)


@pytest.mark.parametrize("rate, frame_ms", [(8000, 10), (8000, 20), (16000, 10), (16000, 20)])
def test_g711_is_the_blockwise_standard_shifted_back_by_its_delay(rate, frame_ms):
    x = voiced(rate, 140, 2.0, vibrato=0.03) * 10000
    frame_len = rate * frame_ms // 1000
    # Erasures of every length the standard treats differently (1, 2, 3, 4..6, > 6 blocks),
    # the first with nothing before it, between received runs of one frame and more.
    pattern = []
    for i, gap_ms in enumerate([10, 20, 30, 40, 50, 60, 80, 10, 20, 100, 30]):
        pattern += [True] * -(-gap_ms // frame_ms) + [False] * (1 + i % 3)
    lost = np.zeros(n_frames(x.size, frame_len), bool)
    lost[:len(pattern)] = pattern
    y = g711_appendix_i(x, lost, frame_len, rate)

    standard = BlockwiseG711(rate)
    block = standard.c.block
    block_lost = np.repeat(lost, frame_len // block)
    played = np.concatenate([standard.bad() if gone else standard.good(x[k * block:(k + 1) * block])
                             for k, gone in enumerate(block_lost)])
    delay = standard.c.overlap_max
    assert {2, 4, 6, 8, 10} <= set(runs_of(block_lost).tolist())
    assert np.allclose(played[delay:], y[:-delay], rtol=0, atol=1e-6)


# ------------------------------------------------------------------ scores

@pytest.mark.parametrize("rate", [8000, 16000])
def test_pesq_and_stoi_rank_a_clean_copy_above_a_noisy_one(rate):
    x = syllables(voiced(rate, 120, 3.0, vibrato=0.02), rate)
    noisy = x + np.random.default_rng(0).normal(0, 0.05, x.size)
    clean_pesq, noisy_pesq = pesq_score(x, x, rate), pesq_score(x, noisy, rate)
    assert clean_pesq > 4.0 and 1.0 <= noisy_pesq < clean_pesq - 1.0
    clean_stoi, noisy_stoi = stoi_score(x, x, rate), stoi_score(x, noisy, rate)
    assert clean_stoi > 0.99 and 0.0 < noisy_stoi < clean_stoi - 0.05


def test_pesq_refusals_are_user_errors():
    x = syllables(voiced(8000, 120, 1.0), 8000)
    with pytest.raises(UserError, match="8 or 16 kHz"):
        pesq_score(x, x, 44100)
    with pytest.raises(UserError, match="1/4 of a second"):
        pesq_score(x[:1000], x[:1000], 8000)
    with pytest.raises(UserError, match="No utterances"):
        click = np.zeros(24000)
        click[-10:] = np.random.default_rng(0).normal(size=10)
        pesq_score(click, click, 8000)
    with pytest.raises(UserError, match="same length"):
        pesq_score(x, x[:-1], 8000)


@pytest.mark.parametrize("module, score", [("pesq", pesq_score), ("pystoi", stoi_score)])
def test_a_missing_score_package_says_how_to_install_it(monkeypatch, module, score):
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail
    x = voiced(16000, 120, 1.0)
    with pytest.raises(UserError, match=f"pip install {module}"):
        score(x, x, 16000)


def test_snr_over_lost_samples():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=1000)
    mask = np.zeros(1000, bool)
    mask[100:300] = True
    deg = ref.copy()
    assert snr_lost_db(ref, deg, mask) == np.inf
    deg[~mask] = 0.0  # outside the mask does not count
    assert snr_lost_db(ref, deg, mask) == np.inf
    deg[mask] *= 0.9
    assert snr_lost_db(ref, deg, mask) == pytest.approx(20.0)
    assert np.isnan(snr_lost_db(ref, deg, np.zeros(1000, bool)))
    assert snr_lost_db(ref, np.zeros(1000), mask) == pytest.approx(0.0)
