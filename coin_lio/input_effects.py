"""Real-sensor effects seen in the input, reported as driver events (the node logs them):

- dropped LiDAR packets: whole column blocks missing from organised scans (ouster-ros publishes
  a lost UDP packet's columns as zero points) -> "12.0 % of columns missing in the last 50 scans";
- a column window: the same contiguous columns missing in every scan (the sensor's azimuth
  window crops the scan) -> said once, and again when it changes;
- IMU saturation: an extreme reading above a floor that recurs with exactly the same value (a
  clipped axis sits at its full-scale value, knock after knock, while a true reading that large
  never repeats to the last bit) -> "accelerometer clipped in 14 of the last 1000".

Columns are counted in the order the cloud is published (raw, staggered: ouster-ros' default
layout); unorganised clouds have no columns and are not checked. Pure numpy, no ROS.
"""
from __future__ import annotations

from collections import deque

import numpy as np

from coin_lio.config import InputCheckConfig


class InputEffects:
    def __init__(self, cfg: InputCheckConfig | None = None) -> None:
        self.cfg = cfg or InputCheckConfig()
        self.events: list[tuple[str, str]] = []      # (kind, message), drained by the driver
        self._missing: deque[np.ndarray] = deque(maxlen=self.cfg.scan_window)   # (W,) bool each
        self._scans_since_report = 0
        self._window: tuple[int, int] | None = None   # (first, count) of the fixed missing range
        self._imu_clipped: deque[int] = deque(maxlen=self.cfg.imu_window)       # bit 1 acc, 2 gyro
        self._peak = np.zeros((2, 6))                # largest + / - reading per axis (acc, gyro)
        self._peak_hits = np.zeros((2, 6), np.int64)  # readings that had exactly that value
        self._imu_since_report = self.cfg.imu_window   # the first clip is said at once
        self.clip_levels = np.full(6, np.nan)        # |value| of the last clip per axis (acc, gyro)

    # ---- scans ---------------------------------------------------------------------------
    def observe_scan(self, valid: np.ndarray) -> None:
        """valid (H, W) bool of one organised scan (H > 1); other shapes are ignored."""
        if valid.ndim != 2 or valid.shape[0] < 2:
            return
        missing = ~valid.any(axis=0)
        if self._missing and self._missing[0].shape != missing.shape:
            self._missing.clear()                     # the sensor mode changed
        self._missing.append(missing)
        self._scans_since_report += 1
        if len(self._missing) < self.cfg.scan_window:
            return
        stack = np.stack(self._missing)               # (S, W)
        always = stack.all(axis=0)
        self._report_window(always)
        if self._scans_since_report < self.cfg.scan_window:
            return
        varying = stack[:, ~always]
        share = float(varying.mean()) if varying.size else 0.0
        if share >= self.cfg.missing_columns_warn:
            self._scans_since_report = 0
            runs = np.concatenate([_run_lengths(row) for row in varying])
            block = f"in blocks of {int(np.median(runs))} columns" if runs.size else "in blocks"
            self.events.append(("columns_missing", f"{100 * share:.1f} % of columns missing in the last "
                                f"{len(stack)} scans ({block}): dropped LiDAR packets; the odometry "
                                "uses the columns that arrived"))

    def _report_window(self, always: np.ndarray) -> None:
        W = len(always)
        runs = _circular_runs(always)
        window = max(runs, key=lambda r: r[1]) if runs else None
        if window is not None and window[1] < max(16, W // 64):
            window = None                             # a few dark columns, not a window
        if window == self._window:
            return
        self._window, scans = window, len(self._missing)
        self._missing.clear()          # a new sensor setting: the statistics start over (a window
        self._scans_since_report = 0   # coming or going is not a burst of dropped packets)
        if window is None:
            self.events.append(("column_window", "every column returns again: no column window"))
            return
        first, count = window
        last = (first + count - 1) % W
        self.events.append(("column_window", f"columns {first}..{last} ({count} of {W}) returned nothing in "
                            f"any of the last {scans} scans: the sensor's column window "
                            f"crops the scan to {W - count} columns"))

    # ---- IMU -----------------------------------------------------------------------------
    def observe_imu(self, gyro: np.ndarray, acc: np.ndarray) -> None:
        """One IMU reading (rad/s, m/s^2)."""
        r = np.concatenate([np.asarray(acc, float), np.asarray(gyro, float)])   # (6,)
        floor = np.r_[np.full(3, self.cfg.clip_acc_floor), np.full(3, self.cfg.clip_gyr_floor)]
        sign = (r < 0).astype(np.int64)              # row of _peak: 0 for +, 1 for -
        mag, axes = np.abs(r), np.arange(6)
        peak = self._peak[sign, axes]
        self._peak_hits[sign, axes] = np.where(mag > peak, 1, self._peak_hits[sign, axes] + (mag == peak))
        self._peak[sign, axes] = np.maximum(peak, mag)
        clipped = (mag >= floor) & (mag == self._peak[sign, axes]) & \
            (self._peak_hits[sign, axes] >= self.cfg.clip_repeats)
        flag = 0
        if clipped.any():
            self.clip_levels[clipped] = mag[clipped]
            flag = int(clipped[:3].any()) | 2 * int(clipped[3:].any())
        self._imu_clipped.append(flag)
        self._imu_since_report += 1
        if self._imu_since_report < self.cfg.imu_window:
            return
        flags = np.asarray(self._imu_clipped)
        for bit, name, sl, unit in ((1, "accelerometer", slice(0, 3), "m/s^2"), (2, "gyro", slice(3, 6), "rad/s")):
            n = int(np.count_nonzero(flags & bit))
            if n:
                self._imu_since_report = 0
                axes = [f"{'xyz'[i]} at {lvl:.2f}" for i, lvl in enumerate(self.clip_levels[sl]) if np.isfinite(lvl)]
                self.events.append(("imu_saturated", f"IMU {name} clipped in {n} of the last {len(flags)} "
                                    f"readings ({', '.join(axes)} {unit}): the motion exceeds its range"))


def _run_lengths(mask: np.ndarray) -> np.ndarray:
    """Lengths of the runs of True in a 1-D bool array (not wrapping)."""
    d = np.diff(np.r_[0, mask.astype(np.int8), 0])
    return np.flatnonzero(d == -1) - np.flatnonzero(d == 1)


def _circular_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(first index, length) of each run of True in a circular 1-D bool array."""
    W = len(mask)
    if mask.all():
        return [(0, W)]
    if not mask.any():
        return []
    start = int(np.flatnonzero(~mask)[0])            # rotate so that the array starts with False
    rolled = np.roll(mask, -start)
    d = np.diff(np.r_[0, rolled.astype(np.int8), 0])
    firsts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    return [((int(f) + start) % W, int(e - f)) for f, e in zip(firsts, ends)]
