"""Shared by the pipeline tests: an IMU at rest."""
from __future__ import annotations

import numpy as np

G = 9.81
REST_ACC = np.array([0.0, 0.0, G])          # specific force at rest, IMU level (m/s^2)


def feed_rest_imu(pipeline, rng: np.random.Generator, k: int, t: float) -> int:
    """100 Hz readings at rest (gyro 0.003 rad/s, acc 0.02 m/s^2 noise) into `pipeline` from
    sample k on, up to t + 0.05 s (the scan at t then has IMU past its end); returns the next k."""
    while k * 0.01 <= t + 0.05:
        pipeline.add_imu(k * 0.01, rng.normal(0, 0.003, 3), REST_ACC + rng.normal(0, 0.02, 3))
        k += 1
    return k
