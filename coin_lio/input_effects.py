"""Real-sensor effects seen in the scans, reported as driver events (the node logs them):

- dropped LiDAR packets: whole column blocks missing from organised scans (ouster-ros publishes
  a lost UDP packet's columns as zero points) -> "12.0 % of columns missing in the last 50 scans";
- a column window: the same contiguous columns missing in every scan (the sensor's azimuth
  window crops the scan) -> said once, and again when it changes;
- returns in space the LiDAR saw free a few scans before (the pipeline counts them,
  coin_lio.core.free_space): moving objects, or dust and rain -> "returns in space seen free 3
  scans before in 23 of the last 50 scans (41 points): ...", at most once per 50 scans.
Clipped IMU readings are found by the pipeline, which acts on them (coin_lio.imu_saturation).

Organised clouds: columns are counted in the sensor's measurement order: as published for raw
(staggered) clouds, ouster-ros' default layout; destaggered clouds are put back in that order with
the sensor's pixel_shift_by_row first (a lost packet is a slanted band there, with no column of the
destaggered cloud wholly empty). Unorganised clouds (Velodyne: the driver leaves a lost packet's
firings out of the sweep) have no columns: their points' azimuths are binned into
`azimuth_bins` sectors (0.5 deg by default, finer than one packet of a VLP-16 (4.8 deg), an
HDL-32E (2 deg) or an HDL-64E (1 deg)), and a sector without any point is a missing column; an
angle window (velodyne_pointcloud's min_angle / max_angle) shows as the same fixed sectors.
No ROS; the destaggered column test is free_space_kernel.lost_columns.
"""
from __future__ import annotations

from collections import deque

import numpy as np

from coin_lio.config import InputCheckConfig
from coin_lio.core.free_space_kernel import lost_columns


class InputEffects:
    def __init__(self, cfg: InputCheckConfig | None = None) -> None:
        self.cfg = cfg or InputCheckConfig()
        self.events: list[tuple[str, str]] = []      # (kind, message), drained by the driver
        self._missing: deque[np.ndarray] = deque()    # (W,) bool each, the last scan_window scans
        self._count = np.zeros(0, np.int64)           # (W,) scans of _missing without a return there
        self._always: np.ndarray | None = None        # (W,) bool: the last window test's input
        self._scans_since_report = 0
        self._window: tuple[int, int] | None = None   # (first, count) of the fixed missing range
        self._unit = "columns"                        # or "sectors" (unorganised clouds)
        self._free: deque[int] = deque(maxlen=self.cfg.scan_window)   # returns in free space per scan
        self._free_since_report = 0

    # ---- scans ---------------------------------------------------------------------------
    def observe_scan(self, valid: np.ndarray, points: np.ndarray | None = None,
                     destagger_shift: np.ndarray | None = None) -> None:
        """valid (H, W) bool of one scan. Organised (H > 1): its columns; destagger_shift (H,) the
        pixel_shift_by_row of a cloud published destaggered (None: raw). Unorganised (1, N) or
        (N,): the azimuth sectors of `points` (N', 3), its valid points in the sensor frame (m);
        without them the scan is not checked."""
        if valid.ndim == 2 and valid.shape[0] >= 2:
            if destagger_shift is not None and len(destagger_shift) == valid.shape[0]:
                shift = np.asarray(destagger_shift, dtype=np.int64)
                missing = lost_columns(np.ascontiguousarray(valid).view(np.uint8), shift, 0)
            else:
                missing = ~valid.any(axis=0)
            self._observe_columns(missing, "columns")
        elif points is not None and len(points) >= self.cfg.azimuth_bins:
            self._observe_columns(~azimuth_sectors(points, self.cfg.azimuth_bins), "sectors")

    def observe_free_space(self, count: int, lag_scans: int) -> None:
        """count: this scan's registered points in space seen free lag_scans before (-1: not checked)."""
        if count < 0:
            return
        self._free.append(count)
        self._free_since_report += 1
        if len(self._free) < self.cfg.scan_window or self._free_since_report < self.cfg.scan_window:
            return
        hits = sum(c >= 2 for c in self._free)
        if hits >= self.cfg.moving_min_scans:
            self._free_since_report = 0
            self.events.append(("moving_objects", f"returns in space seen free {lag_scans} scans before in {hits} "
                                f"of the last {len(self._free)} scans ({sum(self._free)} points): moving objects "
                                "(people, vehicles) or dust / rain; new voxels enter the map only when "
                                "seen again (map.confirm_s)"))

    def _observe_columns(self, missing: np.ndarray, unit: str) -> None:
        """missing (W,) bool: columns (or azimuth sectors) of this scan without any return. Kept as
        per-column counts over the window, so a scan costs O(W) and the (S, W) stack is built only
        for a warning's message (every scan's stack, all and mean took ~0.18 ms a 64x1024 scan)."""
        if self._missing and (self._missing[0].shape != missing.shape or unit != self._unit):
            self._clear_columns()                     # the sensor mode changed
        self._unit = unit
        if not len(self._count):
            self._count = np.zeros(len(missing), np.int64)
        if len(self._missing) == self.cfg.scan_window:
            self._count -= self._missing.popleft()
        self._missing.append(missing)
        self._count += missing
        self._scans_since_report += 1
        scans = len(self._missing)
        if scans < self.cfg.scan_window:
            return
        always = self._count == scans
        if self._always is None or not np.array_equal(always, self._always):
            self._always = always
            self._report_window(always)               # clears the statistics when the window moved
        if self._scans_since_report < self.cfg.scan_window:   # also after the window moved (cleared)
            return
        varying = ~always
        n_varying = int(varying.sum())
        share = float(self._count[varying].sum()) / (scans * n_varying) if n_varying else 0.0
        if share >= self.cfg.missing_columns_warn:
            self._scans_since_report = 0
            stack = np.stack(self._missing)[:, varying]  # (S, W')
            runs = np.concatenate([_run_lengths(row) for row in stack])
            if self._unit == "columns":
                what, block = "columns", (f"in blocks of {int(np.median(runs))} columns" if runs.size
                                          else "in blocks")
            else:
                deg = 360.0 / len(always)
                what, block = "the azimuth", (f"in gaps of {np.median(runs) * deg:.1f} deg" if runs.size
                                              else "in gaps")
            self.events.append(("columns_missing", f"{100 * share:.1f} % of {what} missing in the last "
                                f"{scans} scans ({block}): dropped LiDAR packets; the odometry "
                                "uses the points that arrived"))

    def _clear_columns(self) -> None:
        self._missing.clear()
        self._count = np.zeros(0, np.int64)
        self._always = None

    def _report_window(self, always: np.ndarray) -> None:
        W = len(always)
        runs = _circular_runs(always)
        window = max(runs, key=lambda r: r[1]) if runs else None
        if window is not None and window[1] < max(16, W // 64):
            window = None                             # a few dark columns, not a window
        if window == self._window:
            return
        self._window, scans = window, len(self._missing)
        self._clear_columns()          # a new sensor setting: the statistics start over (a window
        self._scans_since_report = 0   # coming or going is not a burst of dropped packets)
        if window is None:
            self.events.append(("column_window", "every column returns again: no column window"))
            return
        first, count = window
        last = (first + count - 1) % W
        if self._unit == "sectors":
            deg = 360.0 / W
            self.events.append(("column_window", f"azimuth {first * deg:.1f}..{(last + 1) * deg:.1f} deg "
                                f"({count * deg:.1f} of 360) returned nothing in any of the last {scans} "
                                f"scans: an angle window (the driver's min_angle / max_angle) crops the "
                                f"scan to {(W - count) * deg:.1f} deg"))
            return
        self.events.append(("column_window", f"columns {first}..{last} ({count} of {W}) returned nothing in "
                            f"any of the last {scans} scans: the sensor's column window "
                            f"crops the scan to {W - count} columns"))


def azimuth_sectors(points: np.ndarray, bins: int) -> np.ndarray:
    """(bins,) bool: sectors of azimuth (counter-clockwise from +x, sector 0 starting at +x)
    holding at least one of the points (N, 3)."""
    az = np.mod(np.arctan2(points[:, 1], points[:, 0]), 2 * np.pi)   # (N,) rad in [0, 2 pi]
    sector = (az * (bins / (2 * np.pi))).astype(np.int64) % bins
    hit = np.zeros(bins, dtype=bool)
    hit[sector] = True
    return hit


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
