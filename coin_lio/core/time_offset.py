"""Online estimate of the IMU-LiDAR clock offset left over after lio.imu.time_offset.

Between two scan ends t_a < t_b (LiDAR clock) the filter's IMU rotations give the LiDAR-observed
rotation increment R_L = R_a^T R_b. The gyro, read on its (offset-corrected) stamps, gives
R_G(delta) = prod Exp((w(s) - b_g) ds) over [t_a + delta, t_b + delta] when its clock is still
delta late. Shifting the window by d(delta) drops w(t_a) at the start and adds w(t_b) at the end:

    R_G(delta) ~ R_G(0) Exp(D delta),   D = w_b - R_G(0)^T w_a       (rad/s, (3,), bias removed)

so r = Log(R_G(0)^T R_L) ~ D delta, one 3-row linear regression per scan pair. The rate has to
change between scan ends for delta to show (D = 0 in steady turns and straight lines).

Errors in the regressor: the readings that give w_a and w_b are also integrated into R_G(0), and
the filter's update pulls R_L towards the truth, so r carries minus their noise where D carries
plus (or minus) it. Least squares then reads the gyro's white noise as an offset: with 0.1 rad/s a
reading at 100 Hz and slow turns, +5 ms where there was none (32x512 urban, measured). So D is
instrumented (instrumental-variable regression): Z = w(next reading after the pair's last)
- R_G(0)^T w(reading before the pair's first), readings no other part of the pair used, 10-20 ms
outside the pair, which move with the true rate as D does but not with its noise:

    delta = sum Z.r / sum Z.D,   sigma^2 = residual variance * sum Z.Z / (sum Z.D)^2

A pair waits for its reading after t_b (the next scan's window brings it). The filter's rotations
lean towards the offset gyro's prior, so an estimate falls short of the full offset; the pipeline
applies it, starts over and converges in a few rounds (coin_lio.pipeline). As LI-Init's temporal
calibration, but from the odometry's own poses and on line. numpy, with the pair terms in one
compiled pass (core/time_offset_kernel.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from coin_lio.core import so3
from coin_lio.core.time_offset_kernel import gyro_pair_terms, smooth_rates


@dataclass
class OffsetEstimate:
    delta: float      # s: the gyro's clock is still this much late (add it to imu.time_offset)
    sigma: float      # s: its standard deviation
    pairs: int        # scan pairs it rests on


@dataclass
class _Pending:
    t_b: float
    r: np.ndarray      # (3,) rad
    D: np.ndarray      # (3,) rad/s
    bg: np.ndarray     # (3,) rad/s
    z_a: np.ndarray    # (3,) rad/s, bias removed: the instrument's start, rotated into t_b's frame
    t_last: float      # s, the pair's last reading: the instrument's end is the next one


class TimeOffsetEstimator:
    def __init__(self, outlier_rad: float = 0.05, hold: float = 0.02, max_angular_acc: float = 50.0,
                 instrument_gap: float = 0.03) -> None:
        self.outlier_rad = outlier_rad     # |r| above this: the pair is not used (a failed update)
        # rad/s^2 between two readings: above it (a knock, a clipped gyro) r = D delta does not hold,
        # the rate is not smooth over delta; such a pair would outweigh hundreds of smooth ones
        self.max_angular_acc = max_angular_acc
        self.hold = hold                   # s the last gyro reading may be held to reach t_b
        self.instrument_gap = instrument_gap   # s: instrument readings at most this far outside
        self.reset()

    def reset(self) -> None:
        self.s_dd = self.s_dr = self.s_rr = 0.0
        self.s_zd = self.s_zr = self.s_zz = 0.0
        self.pairs = 0
        self._t = np.zeros(0)              # (H,) s, recent gyro readings (the instruments' source)
        self._w = np.zeros((0, 3))         # (H, 3) rad/s
        self._pending: _Pending | None = None

    def add_pair(self, t_a: float, R_a: np.ndarray, t_b: float, R_b: np.ndarray, bg: np.ndarray,
                 times: np.ndarray, gyro: np.ndarray) -> bool:
        """One scan pair: filter rotations R_WI (3, 3) at t_a and t_b (s), gyro bias bg (3,), the
        IMU samples times (K,) s and gyro (K, 3) rad/s the propagation used over [t_a, t_b] (the
        last reading held up to `hold` s to t_b where none covers it); False when unused (no
        cover, a knock inside, a failed update, no reading before it for the instrument). A
        used pair counts once the reading after it has come with a later pair's window."""
        self._remember(times, gyro)
        self._settle()
        if len(times) < 2 or times[0] > t_a or times[-1] < t_b - self.hold or t_b <= t_a:
            return False
        j = int(np.searchsorted(self._t, times[0])) - 1          # the last reading before the pair
        if j < 0 or times[0] - self._t[j] > self.instrument_gap:
            return False
        times, gyro = np.ascontiguousarray(times, np.float64), np.ascontiguousarray(gyro, np.float64)
        if not smooth_rates(np.concatenate(([self._t[j]], times)), np.vstack([self._w[j], gyro]),
                            self.max_angular_acc):
            return False
        R_g, D, z_a = gyro_pair_terms(float(t_a), float(t_b), times, gyro, np.asarray(bg, np.float64),
                                      self._w[j])
        r = so3.log(R_g.T @ (R_a.T @ R_b))
        if not np.all(np.isfinite(r)) or np.sqrt(r.dot(r)) > self.outlier_rad:     # np.linalg.norm's sum
            return False
        self._pending = _Pending(t_b, r, D, bg.copy(), z_a, float(times[-1]))
        self._settle()
        return True

    def _remember(self, times: np.ndarray, gyro: np.ndarray) -> None:
        """Append the readings newer than the last remembered, keep the last 0.5 s."""
        new = int(np.searchsorted(times, self._t[-1], side="right")) if len(self._t) else 0
        if new < len(times):
            self._t = np.concatenate([self._t, times[new:]])
            self._w = np.concatenate([self._w, gyro[new:]])
        start = int(np.searchsorted(self._t, self._t[-1] - 0.5)) if len(self._t) else 0
        self._t, self._w = self._t[start:], self._w[start:]

    def _settle(self) -> None:
        """Count the waiting pair once the reading after its last has arrived."""
        p = self._pending
        if p is None:
            return
        k = int(np.searchsorted(self._t, p.t_last, side="right"))     # the first reading after it
        if k >= len(self._t):
            return
        self._pending = None
        if (k == 0 or self._t[k] - p.t_b > self.instrument_gap
                or not smooth_rates(self._t[k - 1:k + 1], self._w[k - 1:k + 1], self.max_angular_acc)):
            return
        z = (self._w[k] - p.bg) - p.z_a
        self.s_dd += float(p.D @ p.D)
        self.s_dr += float(p.D @ p.r)
        self.s_rr += float(p.r @ p.r)
        self.s_zd += float(z @ p.D)
        self.s_zr += float(z @ p.r)
        self.s_zz += float(z @ z)
        self.pairs += 1

    def estimate(self) -> OffsetEstimate | None:
        """The offset left (s) and its sigma, or None before 5 pairs or without any excitation."""
        if self.pairs < 5 or self.s_zd <= 1e-12 or self.s_dd <= 1e-12:
            return None
        delta = self.s_zr / self.s_zd
        resid = max(self.s_rr - 2 * delta * self.s_dr + delta**2 * self.s_dd, 0.0) / max(3 * self.pairs - 1, 1)
        return OffsetEstimate(delta, float(np.sqrt(resid * self.s_zz) / self.s_zd), self.pairs)
