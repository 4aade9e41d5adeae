"""The compiled per-scan helpers against the numpy forms they replaced: np.interp per column
(the IMU knots) and the clock-offset estimate's pair terms (a Python product of Rodrigues
rotations over np.interp'ed midpoint rates)."""
from __future__ import annotations

import numpy as np
import pytest

from coin_lio.core import so3
from coin_lio.core.imu_propagation import interp_samples
from coin_lio.core.time_offset_kernel import gyro_pair_terms, smooth_rates


@pytest.mark.parametrize("seed", range(5))
def test_interp_samples_is_np_interp_bit_for_bit(seed):
    rng = np.random.default_rng(seed)
    ts = np.unique(rng.uniform(0.0, 0.1, rng.integers(1, 14)))
    values = rng.standard_normal((len(ts), 3))
    t = np.concatenate([rng.uniform(-0.02, 0.12, 30), ts, [ts[0], ts[-1]]])   # inside, outside, on
    want = np.stack([np.interp(t, ts, values[:, j]) for j in range(3)], axis=1)
    assert np.array_equal(interp_samples(t, ts, values), want)


def _numpy_pair_terms(t_a, t_b, times, gyro, bg, w_before):
    w = gyro - bg
    knots = np.concatenate([[t_a], times[(times > t_a) & (times < t_b)], [t_b]])
    w_k = np.stack([np.interp(knots, times, w[:, j]) for j in range(3)], axis=1)
    R = np.eye(3)
    for rv in 0.5 * (w_k[1:] + w_k[:-1]) * np.diff(knots)[:, None]:
        R = R @ so3.exp(rv)
    return R, w_k[-1] - R.T @ w_k[0], R.T @ (w_before - bg)


@pytest.mark.parametrize("seed", range(5))
def test_gyro_pair_terms_match_the_numpy_form(seed):
    rng = np.random.default_rng(seed)
    times = 0.095 + 0.01 * np.arange(12) + rng.uniform(0, 0.002)        # covers [0.1, 0.2]
    gyro = rng.normal(0, 1.0, (12, 3))
    bg, w_before = rng.normal(0, 0.01, 3), rng.normal(0, 1.0, 3)
    got = gyro_pair_terms(0.1, 0.2, times, gyro, bg, w_before)
    for g, w in zip(got, _numpy_pair_terms(0.1, 0.2, times, gyro, bg, w_before)):
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-14)


def test_smooth_rates_flags_knocks_and_disorder():
    t = np.arange(5) * 0.01
    w = np.zeros((5, 3))
    assert smooth_rates(t, w, 50.0)
    w[3, 1] = 0.6                                   # 60 rad/s^2 between two readings
    assert not smooth_rates(t, w, 50.0)
    assert not smooth_rates(t[[0, 2, 1, 3, 4]], np.zeros((5, 3)), 50.0)
    assert not smooth_rates(np.array([0.0, 0.0]), np.zeros((2, 3)), 50.0)   # a repeated stamp
