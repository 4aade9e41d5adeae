"""Standing still (coin_lio/core/stationary.py and the pipeline's zero-velocity update): the IMU
test on hand-built readings, and a robot that waits on open ground while a person walks past:
its pose stays put, where registering the scans drags it along with the person."""
from __future__ import annotations

import numpy as np
import pytest

from coin_lio.config import LioConfig, StationaryConfig
from coin_lio.core.stationary import is_stationary
from coin_lio.core.state import NavState
from lio_fixtures import REST_ACC, feed_rest_imu


def _readings(rng, n=10, acc=REST_ACC, gyro=np.zeros(3), acc_noise=0.02, gyro_noise=0.003):
    return gyro + rng.normal(0, gyro_noise, (n, 3)), acc + rng.normal(0, acc_noise, (n, 3))


def test_still_only_at_rest_with_no_speed_turn_acceleration_or_vibration():
    rng = np.random.default_rng(0)
    cfg, x = StationaryConfig(), NavState()
    assert is_stationary(*_readings(rng), x, cfg)
    cruising = NavState(vel=np.array([1.0, 0.0, 0.0]))            # constant velocity reads like rest
    assert not is_stationary(*_readings(rng), cruising, cfg)
    assert not is_stationary(*_readings(rng, acc=REST_ACC + [0.15, 0, 0]), x, cfg)   # a gentle start
    assert not is_stationary(*_readings(rng, gyro=np.array([0, 0, 0.05])), x, cfg)   # turning in place
    assert not is_stationary(*_readings(rng, acc_noise=0.5), x, cfg)                 # engine vibration
    assert not is_stationary(*_readings(rng, n=3), x, cfg)                            # too few readings
    assert not is_stationary(*_readings(rng), x, StationaryConfig(enabled=False))
    biased = NavState(bg=np.array([0.0, 0.0, 0.05]))               # the bias is not a turn
    assert is_stationary(*_readings(rng, gyro=np.array([0, 0, 0.05])), biased, cfg)
    with pytest.raises(ValueError):
        StationaryConfig(max_speed=0.0)


def _ground_and_walker(rng, t: float) -> np.ndarray:
    """LiDAR points (N, 3), sensor 1.5 m above open ground (the only geometry: nothing fixes x,
    y or yaw but the walker), and a person 6 m ahead walking across at 1.4 m/s."""
    r, a = np.sqrt(rng.uniform(4, 900, 3000)), rng.uniform(-np.pi, np.pi, 3000)
    ground = np.c_[r * np.cos(a), r * np.sin(a), np.full(3000, -1.5)]
    h, phi = rng.uniform(-1.5, 0.2, 400), rng.uniform(0, 2 * np.pi, 400)
    walker = np.c_[6.0 + 0.25 * np.cos(phi), -3.0 + 1.4 * t + 0.25 * np.sin(phi), h]
    return np.vstack([ground, walker])


@pytest.mark.parametrize("enabled", [True, False])
def test_a_waiting_robot_is_not_dragged_along_by_a_passer_by(enabled):
    from coin_lio.pipeline import LioPipeline

    cfg = LioConfig()
    cfg.stationary.enabled = enabled
    cfg.photometric.enabled = False
    p = LioPipeline(cfg)
    rng = np.random.default_rng(1)
    poses, still, k = [], [], 0
    for s in range(20):                                            # 2 s of scans, robot still
        t = 1.2 + 0.1 * s
        k = feed_rest_imu(p, rng, k, t)
        pts = _ground_and_walker(rng, t - 1.2)
        res = p.process_scan(pts, np.full(len(pts), t))
        if res.T_world_lidar is not None:
            poses.append(res.T_world_lidar[:3, 3])
            still.append(res.stationary)
    assert len(poses) >= 15 and np.all(np.isfinite(poses))
    assert all(still[1:]) if enabled else not any(still)
    drift = np.linalg.norm(poses[-1] - poses[0])
    if enabled:
        assert drift < 0.01, f"held pose moved {drift:.3f} m"
    else:                                                          # what the hold prevents
        assert drift > 0.05, f"registration alone moved only {drift:.3f} m"
