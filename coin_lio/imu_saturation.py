"""Clipped IMU readings, found and reported (the pipeline owns one, so the node, the offline
runner and the benchmarks all say it).

An axis driven past its full-scale range reads exactly its full-scale value, knock after knock,
while a true reading that large never repeats to the last bit. So a reading whose magnitude is
the largest seen on that axis and sign, above a floor (a range no IMU is set below), and that
value has now been read `clip_repeats` times, is clipped. The first reading at a new level cannot
be told from a true peak; every later one can. Pure numpy, no ROS.
"""
from __future__ import annotations

from collections import deque

import numpy as np

from coin_lio.config import InputCheckConfig


class ImuSaturation:
    def __init__(self, cfg: InputCheckConfig | None = None) -> None:
        self.cfg = cfg or InputCheckConfig()
        self.events: list[tuple[str, str]] = []       # (kind, message)
        self._floor = np.r_[np.full(3, self.cfg.clip_acc_floor), np.full(3, self.cfg.clip_gyr_floor)]
        self._peak = np.zeros((2, 6))                 # largest + / - magnitude per axis (acc, gyro)
        self._hits = np.zeros((2, 6), np.int64)       # readings that had exactly that magnitude
        self._recent: deque[int] = deque(maxlen=self.cfg.imu_window)   # bit 1 acc, 2 gyro
        self._counts = np.zeros(2, np.int64)          # clipped acc / gyro readings in _recent
        self._since_report = self.cfg.imu_window      # the first clip is said at once
        self.levels = np.full(6, np.nan)              # |value| of the last clip per axis

    def observe(self, gyro: np.ndarray, acc: np.ndarray) -> np.ndarray:
        """One reading (rad/s, m/s^2) -> (6,) bool: clipped axes (acc x y z, gyro x y z).
        Inflating the filter's input noise on clipped readings was tried on simulated knocks
        (5 g / 300 deg/s against a +-2 g / +-250 deg/s IMU): APE 0.030 -> 0.033 m, so it is not done."""
        r = np.concatenate([np.asarray(acc, float), np.asarray(gyro, float)])
        row, axes, mag = (r < 0).astype(np.int64), np.arange(6), np.abs(r)
        peak = self._peak[row, axes]
        self._hits[row, axes] = np.where(mag > peak, 1, self._hits[row, axes] + (mag == peak))
        self._peak[row, axes] = np.maximum(peak, mag)
        clipped = (mag >= self._floor) & (mag == self._peak[row, axes]) & \
            (self._hits[row, axes] >= self.cfg.clip_repeats)
        self.levels[clipped] = mag[clipped]
        if len(self._recent) == self._recent.maxlen:   # the oldest reading leaves the window
            gone = self._recent[0]
            self._counts -= (gone & 1, gone >> 1)
        flag = int(clipped[:3].any()) | 2 * int(clipped[3:].any())
        self._recent.append(flag)
        self._counts += (flag & 1, flag >> 1)
        self._since_report += 1
        if self._since_report >= self.cfg.imu_window and self._counts.any():
            self._report()
        return clipped

    def acc_clipped(self, acc: np.ndarray) -> np.ndarray:
        """(3,) bool: accelerometer axes of a reading that sit at a known clip level (the episode's
        readings, judged once it is over: its first reading at a new level too). The three axes
        share one full-scale range, + and -: a level read twice on any axis is every axis's."""
        mag = np.abs(np.asarray(acc, float))
        known = self._peak[:, :3][self._hits[:, :3] >= self.cfg.clip_repeats]
        return (mag >= self._floor[:3]) & np.isin(mag, known)

    def _report(self) -> None:
        self._since_report = 0
        for n, name, sl, unit in ((self._counts[0], "accelerometer", slice(0, 3), "m/s^2"),
                                  (self._counts[1], "gyro", slice(3, 6), "rad/s")):
            if n:
                axes = [f"{'xyz'[i]} at {lvl:.2f}" for i, lvl in enumerate(self.levels[sl]) if np.isfinite(lvl)]
                self.events.append(("imu_saturated", f"IMU {name} clipped in {n} of the last {len(self._recent)} "
                                    f"readings ({', '.join(axes)} {unit}): the motion exceeds its range"))
