"""The numpy engine's whole-sequence mode is its own streaming `step`, bit for bit: on random architectures,
every precision, any block size, and when a stream switches between the two modes."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgewave import integer as K
from edgewave.convert import pipeline
from edgewave.convert.pipeline import quantize_input
from edgewave.engine import Engine

from strategies import specs
from test_convert import SPEECH_X, random_graph

CASES = {"int8": 0, "int16x8": 0, "float32": 0}


def assert_same(a, b, quantized, what):
    if quantized:
        np.testing.assert_array_equal(a, b, err_msg=what)
    else:  # float: the same float32 ops in another order of evaluation only for the matrix products
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5, err_msg=what)


def assert_same_state(a: Engine, b: Engine, quantized):
    assert a.rings.keys() == b.rings.keys()
    for name in a.rings:
        assert a.rings[name].head == b.rings[name].head, name
        assert_same(a.rings[name].buf, b.rings[name].buf, quantized, f"ring {name}")


@pytest.mark.parametrize("precision", list(CASES))
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(spec_dict=specs(max_dilation=64, max_channels=16, heads=("regression", "mulaw")), seed=st.integers(0, 999),
       offset=st.integers(0, 100_000), chunk=st.integers(1, 97), split=st.integers(0, 150))
def test_whole_sequence_equals_stepping(precision, spec_dict, seed, offset, chunk, split):
    graph, _ = random_graph(spec_dict, seed)
    x = SPEECH_X[offset:offset + max(graph.receptive_field, 1) + 200]
    _, prog = pipeline.build(graph, x, precision)
    xs = quantize_input(prog, x) if prog.quantized else x.astype(np.float32)
    stepped = Engine(prog)
    want = stepped.stream(xs)

    # From the initial state, in blocks of any size (at the start, taps read the rings' zero points).
    assert_same(Engine(prog, chunk=chunk).run_sequence(xs), want, prog.quantized, f"run_sequence, chunk {chunk}")

    # A stream that steps, then runs a block, then steps again: the same outputs, the same rings at the end.
    mixed = Engine(prog, chunk=chunk)
    cut = min(split, len(xs))
    cut2 = min(cut + 57, len(xs))
    head = [mixed.step(v) for v in xs[:cut]]
    mid = mixed.run(xs[cut:cut2])
    tail = [mixed.step(v) for v in xs[cut2:]]
    got = np.concatenate([np.array(head).reshape(-1, want.shape[1]), mid,
                          np.array(tail).reshape(-1, want.shape[1])])
    assert_same(got, want, prog.quantized, "step / run / step")
    assert_same_state(mixed, stepped, prog.quantized)
    CASES[precision] += 1


def test_cases_ran():
    print(f"\nwhole-sequence engine cases per precision: {CASES}")
    if any(CASES.values()):  # this test alone (-k) ran none; run with the property above, in file order
        assert all(n >= 5 for n in CASES.values()), CASES


def test_exact_dot_products_at_the_extremes():
    """float64 accumulation is exact for the largest int16 inputs and int8 weights at a depth of thousands."""
    rng = np.random.default_rng(0)
    depth = 4096
    x = rng.choice(np.array([-32768, 32767, -1, 0, 1], np.int64), size=(64, depth))
    x[0] = -32768
    w = rng.choice(np.array([-128, 127, -127, 1], np.int64), size=(depth, 8))
    w[:, 0] = -128
    want = x @ w
    got = K.fc_dot_exact(x.astype(np.int16), w.astype(np.float64))
    np.testing.assert_array_equal(got, want)
    assert abs(int(want[0, 0])) == 32768 * 128 * depth  # the extreme case, beyond float32 and int32
    zp = -37
    x8 = rng.integers(-128, 128, size=(16, depth))
    np.testing.assert_array_equal(K.fc_dot_exact(x8.astype(np.int8), w.astype(np.float64), zp), (x8 - zp) @ w)


def test_few_call_requantization_is_the_kernels_at_the_extremes():
    """The engine's whole-sequence and batched forms of MultiplyByQuantizedMultiplier and of
    FULLY_CONNECTED's requantization are the kernels' integers: at int32's extremes, for every
    shift, per channel (left, no and right shifts side by side), and where accumulators wrap."""
    from edgewave.engine import _fc_requantizer, _rescaler
    from edgewave.integer import fixedpoint as fp

    rng = np.random.default_rng(1)
    edges = [-2**31, -2**31 + 1, -2**30 - 1, -2**30, -2**30 + 1, -3, -1, 0, 1, 3, 2**30, 2**31 - 1]
    x = np.concatenate([edges, rng.integers(-2**31, 2**31, 4000), rng.integers(-3000, 3000, 4004)]).astype(np.int64)
    for shift in range(-31, 8):
        for m in (0, 1 << 30, (1 << 31) - 1, int(rng.integers(1 << 30, 1 << 31))):
            np.testing.assert_array_equal(_rescaler(m, shift, -7)(x),
                                          fp.multiply_by_quantized_multiplier(x, m, shift) - 7, err_msg=f"{m} {shift}")
    shifts, mults, xs = np.array([3, 0, -1, -12, -31, 0, 1, -5]), rng.integers(1 << 30, 1 << 31, 8), x.reshape(-1, 8)
    np.testing.assert_array_equal(_rescaler(mults, shifts, 5)(xs), fp.multiply_by_quantized_multiplier(xs, mults, shifts) + 5)

    depth, n_out = 16, 5
    for in_dtype, bias_dtype, shift, bias_at, zp_in in [(np.int8, np.int32, -8, 0, -37),
                                                         (np.int8, np.int32, -8, 2**31 - 3000, 11),
                                                         (np.int16, np.int64, -10, 0, 0),
                                                         (np.int16, np.int64, 14, 0, 0),
                                                         (np.int16, np.int32, -10, 2**31 - 3000, 0)]:
        info = np.iinfo(in_dtype)
        w = rng.choice(np.array([-127, 127, -1, 0, 5]), size=(n_out, depth))
        w_t = w.T.astype(np.float64)
        x = rng.choice(np.array([info.min, info.max, 0, -1, 1]), size=(64, depth)).astype(in_dtype)
        bias = (bias_at + rng.integers(-1000, 1000, n_out)).astype(bias_dtype)
        p = K.FCParams(zp_in, 3 if in_dtype == np.int8 else 0, int(info.min), int(info.max),
                       tuple(int(v) for v in rng.integers(1 << 30, 1 << 31, n_out)), (shift,) * n_out)
        want = K.fc_requantize(K.fc_dot_exact(x, w_t, zp_in), bias, p, in_dtype)
        got = _fc_requantizer(p, bias, in_dtype, w_t, zp_in, in_dtype)(K.fc_dot_exact(x, w_t))
        np.testing.assert_array_equal(got, want, err_msg=f"{in_dtype.__name__} bias {bias_at} shift {shift}")
        assert got.dtype == in_dtype
