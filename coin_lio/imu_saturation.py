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
        self._floor = [self.cfg.clip_acc_floor] * 3 + [self.cfg.clip_gyr_floor] * 3
        self._peak = [[0.0] * 6, [0.0] * 6]           # largest + / - magnitude per axis (acc, gyro)
        self._hits = [[0] * 6, [0] * 6]               # readings that had exactly that magnitude
        self._recent: deque[int] = deque(maxlen=self.cfg.imu_window)   # bit 1 acc, 2 gyro
        self._counts = [0, 0]                         # clipped acc / gyro readings in _recent
        self._since_report = self.cfg.imu_window      # the first clip is said at once
        self.levels = np.full(6, np.nan)              # |value| of the last clip per axis

    def observe(self, gyro: np.ndarray, acc: np.ndarray) -> np.ndarray:
        """One reading (rad/s, m/s^2) -> (6,) bool: clipped axes (acc x y z, gyro x y z).
        Inflating the filter's input noise on clipped readings was tried on simulated knocks
        (5 g / 300 deg/s against a +-2 g / +-250 deg/s IMU): APE 0.030 -> 0.033 m, so it is not done.
        Six scalars, so plain Python: ~4 us a reading where numpy on (6,) arrays took ~35 (at a
        400 Hz IMU that was 1.4 ms of every 100 ms scan)."""
        peak, hits, floor, repeats = self._peak, self._hits, self._floor, self.cfg.clip_repeats
        clipped = [False] * 6
        for i, v in enumerate((*np.asarray(acc, float).tolist(), *np.asarray(gyro, float).tolist())):
            row = 1 if v < 0 else 0
            m = -v if row else v
            p = peak[row][i]
            if m > p:
                peak[row][i], hits[row][i], p = m, 1, m
            elif m == p:
                hits[row][i] += 1
            if m >= floor[i] and m == p and hits[row][i] >= repeats:
                clipped[i] = True
                self.levels[i] = m
        if len(self._recent) == self._recent.maxlen:   # the oldest reading leaves the window
            gone = self._recent[0]
            self._counts[0] -= gone & 1
            self._counts[1] -= gone >> 1
        flag = int(any(clipped[:3])) | 2 * int(any(clipped[3:]))
        self._recent.append(flag)
        self._counts[0] += flag & 1
        self._counts[1] += flag >> 1
        self._since_report += 1
        if self._since_report >= self.cfg.imu_window and (self._counts[0] or self._counts[1]):
            self._report()
        return np.array(clipped)

    def acc_clipped(self, acc: np.ndarray) -> np.ndarray:
        """(3,) bool: accelerometer axes of a reading that sit at a known clip level (the episode's
        readings, judged once it is over: its first reading at a new level too). The three axes
        share one full-scale range, + and -: a level read twice on any axis is every axis's."""
        mag = np.abs(np.asarray(acc, float))
        known = [p for row in (0, 1) for p, h in zip(self._peak[row][:3], self._hits[row][:3])
                 if h >= self.cfg.clip_repeats]
        return (mag >= self.cfg.clip_acc_floor) & np.isin(mag, known)

    def _report(self) -> None:
        self._since_report = 0
        for n, name, sl, unit in ((self._counts[0], "accelerometer", slice(0, 3), "m/s^2"),
                                  (self._counts[1], "gyro", slice(3, 6), "rad/s")):
            if n:
                axes = [f"{'xyz'[i]} at {lvl:.2f}" for i, lvl in enumerate(self.levels[sl]) if np.isfinite(lvl)]
                self.events.append(("imu_saturated", f"IMU {name} clipped in {n} of the last {len(self._recent)} "
                                    f"readings ({', '.join(axes)} {unit}): the motion exceeds its range"))
