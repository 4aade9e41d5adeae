"""Standing still: the IMU shows no motion over a scan and the velocity estimate is near zero.

A LiDAR odometry registers every scan, so a robot that waits while people or cars pass it is
dragged along when they are close and the scene leaves a direction to them (on a flat field only
vertical things fix x and y): in the simulator a pedestrian walking past 8 m away at the start of
a field sequence dragged the pose 0.6 m in 0.3 s while the robot stood still. Standing still is
the one motion the IMU measures without drift: a mean turn rate near zero and an accelerometer
that reads gravity and nothing else (as a vector: a gentle start changes the accelerometer's norm
by a^2 / 2g, nothing). Cruising at constant velocity reads the same, hence the second condition:
the velocity estimate at the prior must be near zero too (a robot comes to rest through a
deceleration the filter integrates). Then the pipeline's update adds a zero-velocity update and
holds the position at the prior; the scan's rows still correct the attitude. Pure numpy.
"""
from __future__ import annotations

import numpy as np

from coin_lio.config import StationaryConfig
from coin_lio.core.state import NavState


def is_stationary(gyro: np.ndarray, acc: np.ndarray, x: NavState, cfg: StationaryConfig) -> bool:
    """gyro (N, 3) rad/s and acc (N, 3) m/s^2 (scaled to gravity, IMU frame) of the scan's IMU
    readings, x the state at the prior -> the robot stands still over the scan: the bias-corrected
    turn rate, the mean linear acceleration R (acc - b_a) + g and the speed of x all near zero, and
    the readings steady (no vibration of a moving vehicle)."""
    if (not cfg.enabled or len(gyro) < cfg.min_samples or not x.is_finite()
            or np.sqrt(x.vel.dot(x.vel)) > cfg.max_speed):      # moving: the rest need not be read
        return False
    lin = (acc - x.ba) @ x.rot.T + x.grav                                   # (N, 3) m/s^2, world
    return bool(np.linalg.norm(np.mean(gyro, axis=0) - x.bg) <= cfg.max_gyro
                and np.linalg.norm(np.mean(lin, axis=0)) <= cfg.max_acc
                and np.linalg.norm(np.std(lin, axis=0)) <= cfg.max_acc_std)
