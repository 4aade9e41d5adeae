"""ClockSearch (coin_lio/core/jolt_timing.py): the IMU clock shift that minimises a scan's
registration cost, found to a fraction of a millisecond on a sharp minimum, and nothing claimed
when no shift is clearly better than none, at the edge of the range, or with a broken cost."""
import math

import numpy as np
import pytest

from coin_lio.core.imu_propagation import ImuTrack
from coin_lio.core.jolt_timing import ClockSearch


def v_cost(true_delta: float, floor: float = 0.03, slope: float = 8.0):
    """A knock scan's cost: a sharp V around the right shift (m vs s), as measured (0.046 at 0,
    0.028 at the 4 ms minimum, 0.08 at +-20 ms), plus a little smooth curvature."""
    return lambda d: floor + slope * abs(d - true_delta) + 50.0 * (d - true_delta) ** 2


@pytest.mark.parametrize("true_delta", [0.005, -0.0033, 0.0121, 0.0017, -0.0164])
def test_finds_the_shift_of_a_sharp_minimum(true_delta):
    calls = []
    est = ClockSearch().search(lambda d: calls.append(d) or v_cost(true_delta)(d))
    assert est is not None and abs(est.delta - true_delta) <= 0.0007, (est, true_delta)
    assert est.gain < 0.85 and est.costs[0.0] == pytest.approx(v_cost(true_delta)(0.0))
    assert len(calls) == len(set(calls)) <= 13                        # each shift evaluated once


@pytest.mark.parametrize("cost", [
    lambda d: 0.05,                                                     # flat: nothing to read
    lambda d: 0.05 + 0.1 * d * d,                                       # best at 0
    v_cost(0.0004),                                                     # within the noise of 0
    v_cost(0.025),                                                      # beyond the range: edge
    lambda d: 0.05 - 0.2 * abs(d),                                      # best at the edge
    lambda d: math.nan,
    lambda d: math.inf if d == 0 else 0.01,                             # no reference cost
    lambda d: 0.0,
])
def test_no_estimate_without_a_clear_interior_minimum(cost):
    est = ClockSearch().search(cost)
    assert est is None or abs(est.delta) < 0.001, est


def test_a_shift_that_is_only_slightly_better_is_not_taken():
    def dip(depth):            # a minimum at 4 ms, `depth` below the level, 6 ms wide
        return lambda d: 0.05 * (1 - depth * max(0.0, 1 - abs(d - 0.004) / 0.006))
    deep = ClockSearch(min_gain=0.85).search(dip(0.5))                 # 0.6x the cost at 0
    assert deep is not None and abs(deep.delta - 0.004) < 0.0007
    assert ClockSearch(min_gain=0.85).search(dip(0.1)) is None         # 0.93x: not taken


def test_bad_settings_are_refused():
    for kw in (dict(fine=0.0), dict(coarse=0.03), dict(min_gain=1.0), dict(fine=0.01, coarse=0.005)):
        with pytest.raises(ValueError):
            ClockSearch(**kw)


def test_a_shifted_track_is_the_same_motion_read_later():
    K = 5
    times = np.linspace(0.0, 0.04, K)
    omega = np.tile([0.0, 0.0, 2.0], (K, 1))                           # 2 rad/s about z
    rot = np.stack([np.eye(3)] * K)
    for k in range(1, K):
        a = 2.0 * times[k]
        rot[k] = [[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]]
    vel = np.tile([1.0, 0.0, 0.0], (K, 1))
    track = ImuTrack(times, rot, vel * times[:, None], vel, np.zeros((K, 3)), omega)
    t = np.array([0.012, 0.025])
    R0, p0 = track.poses_at(t + 0.003)
    R1, p1 = track.shifted(0.003).poses_at(t)
    assert np.allclose(R0, R1) and np.allclose(p0, p1)
