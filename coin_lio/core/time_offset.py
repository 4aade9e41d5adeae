"""Online estimate of the IMU-LiDAR clock offset left over after lio.imu.time_offset.

Between two scan ends t_a < t_b (LiDAR clock) the filter's IMU rotations give the LiDAR-observed
rotation increment R_L = R_a^T R_b. The gyro, read on its (offset-corrected) stamps, gives
R_G(delta) = prod Exp((w(s) - b_g) ds) over [t_a + delta, t_b + delta] when its clock is still
delta late. Shifting the window by d(delta) drops w(t_a) at the start and adds w(t_b) at the end:

    R_G(delta) ~ R_G(0) Exp(D delta),   D = w_b - R_G(0)^T w_a       (rad/s, (3,), bias removed)

so r = Log(R_G(0)^T R_L) ~ D delta, one 3-row linear regression per scan pair. Accumulated over
scans: delta = sum D.r / sum D.D, with sigma^2 = residual variance / sum D.D. The rate has to
change between scan ends for delta to show (D = 0 in steady turns and straight lines): sigma says
when the motion was rich enough. The filter's rotations lean towards the offset gyro's prior, so
an estimate falls short of the full offset; the pipeline applies it, starts over and converges in
a few rounds (coin_lio.pipeline). As LI-Init's temporal calibration, but from the odometry's own
poses and on line. Pure numpy.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from coin_lio.core import so3
from coin_lio.core.imu_propagation import interp_samples


@dataclass
class OffsetEstimate:
    delta: float      # s: the gyro's clock is still this much late (add it to imu.time_offset)
    sigma: float      # s: its standard deviation
    pairs: int        # scan pairs it rests on


class TimeOffsetEstimator:
    def __init__(self, outlier_rad: float = 0.05, hold: float = 0.02, max_angular_acc: float = 50.0) -> None:
        self.outlier_rad = outlier_rad     # |r| above this: the pair is not used (a failed update)
        # rad/s^2 between two readings: above it (a knock, a clipped gyro) r = D delta does not hold,
        # the rate is not smooth over delta; such a pair would outweigh hundreds of smooth ones
        self.max_angular_acc = max_angular_acc
        self.hold = hold                   # s the last gyro reading may be held to reach t_b
        self.reset()

    def reset(self) -> None:
        self.s_dd = self.s_dr = self.s_rr = 0.0
        self.pairs = 0

    def add_pair(self, t_a: float, R_a: np.ndarray, t_b: float, R_b: np.ndarray, bg: np.ndarray,
                 times: np.ndarray, gyro: np.ndarray) -> bool:
        """One scan pair: filter rotations R_WI (3, 3) at t_a and t_b (s), gyro bias bg (3,), the
        IMU samples times (K,) s and gyro (K, 3) rad/s covering [t_a, t_b] (the last reading is
        held up to `hold` s to t_b, as propagation does: the scan runs once the IMU reached its end,
        not beyond it); False when unused (no cover, a knock inside, a failed update)."""
        if len(times) < 2 or times[0] > t_a or times[-1] < t_b - self.hold or t_b <= t_a:
            return False
        step = np.diff(times)
        if np.any(step <= 0) or np.max(np.abs(np.diff(gyro, axis=0)) / step[:, None]) > self.max_angular_acc:
            return False
        w = gyro - bg
        knots = np.concatenate([[t_a], times[(times > t_a) & (times < t_b)], [t_b]])
        w_k = interp_samples(knots, times, w)                               # (K', 3)
        R_g = np.eye(3)
        for rv in 0.5 * (w_k[1:] + w_k[:-1]) * np.diff(knots)[:, None]:   # midpoint, as propagate
            R_g = R_g @ so3.exp(rv)
        r = so3.log(R_g.T @ (R_a.T @ R_b))
        if not np.all(np.isfinite(r)) or np.linalg.norm(r) > self.outlier_rad:
            return False
        D = w_k[-1] - R_g.T @ w_k[0]
        self.s_dd += float(D @ D)
        self.s_dr += float(D @ r)
        self.s_rr += float(r @ r)
        self.pairs += 1
        return True

    def estimate(self) -> OffsetEstimate | None:
        """The offset left (s) and its sigma, or None before 5 pairs or without any excitation."""
        if self.pairs < 5 or self.s_dd <= 1e-12:
            return None
        delta = self.s_dr / self.s_dd
        resid = max(self.s_rr - delta * self.s_dr, 0.0) / max(3 * self.pairs - 1, 1)
        return OffsetEstimate(delta, float(np.sqrt(resid / self.s_dd)), self.pairs)
