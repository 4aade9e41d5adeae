"""Feeds the LIO pipeline from message streams: buffers IMU, hands a scan over once the IMU
covers it, detects time jumping back (a looped bag: reset), and counts what it rejected.

The node and the offline runner both drive the pipeline through this class, so a bag played
into the node and the same bag run offline give the same trajectory.
"""
from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass

import numpy as np

from coin_lio.config import LioConfig
from coin_lio.io.scan import LidarScan
from coin_lio.pipeline import LioPipeline, ScanResult


@dataclass
class ImuReading:
    t: float              # s
    gyro: np.ndarray      # (3,) rad/s
    acc: np.ndarray       # (3,) m/s^2


class OdometryDriver:
    def __init__(self, cfg: LioConfig, time_jump_reset: float = 1.0,
                 T_imu_lidar: np.ndarray | None = None) -> None:
        self.pipeline = LioPipeline(cfg, T_imu_lidar)
        self.time_jump_reset = time_jump_reset
        self.imu: deque[ImuReading] = deque()
        self.last_imu_t: float | None = None
        self.last_scan_stamp: float | None = None
        self.counts: Counter = Counter()   # what happened: scans, resets, rejections by kind

    def reset(self, reason: str = "requested") -> None:
        self.pipeline.reset()
        self.imu.clear()
        self.last_imu_t = None
        self.last_scan_stamp = None
        self.counts["resets"] += 1
        self.pipeline.events.append(("reset", f"odometry reset ({reason})"))

    def add_imu(self, r: ImuReading) -> bool:
        """Buffer one IMU reading; False when rejected (reason in events)."""
        if not (np.isfinite(r.t) and np.all(np.isfinite(r.gyro)) and np.all(np.isfinite(r.acc))):
            self._reject("imu_nan", "IMU message with NaN/inf dropped")
            return False
        if self.last_imu_t is not None:
            if r.t < self.last_imu_t - self.time_jump_reset:
                self.reset(f"IMU time jumped back {self.last_imu_t - r.t:.2f} s")
            elif r.t <= self.last_imu_t:
                self._reject("imu_order", "IMU message out of order or with a duplicated stamp dropped")
                return False
        self.last_imu_t = r.t
        self.imu.append(r)
        self.counts["imu"] += 1
        return True

    def imu_covers(self, t: float) -> bool:
        return self.last_imu_t is not None and self.last_imu_t >= t

    def process(self, scan: LidarScan) -> ScanResult | None:
        """Run one scan: forward the buffered IMU up to its end, then the pipeline."""
        if self.last_scan_stamp is not None and scan.stamp < self.last_scan_stamp - self.time_jump_reset:
            self.reset(f"LiDAR time jumped back {self.last_scan_stamp - scan.stamp:.2f} s")
            return None
        if self.last_scan_stamp is not None and scan.stamp <= self.last_scan_stamp:
            self._reject("scan_order", "scan out of order or with a duplicated stamp dropped")
            return None
        if not scan.valid.any():
            self._reject("scan_empty", "scan without valid points dropped")
            return None
        self.last_scan_stamp = scan.stamp
        end = scan.end
        while self.imu and self.imu[0].t <= end:
            r = self.imu.popleft()
            self.pipeline.add_imu(r.t, r.gyro, r.acc)
        points, times = scan.points()
        result = self.pipeline.process_scan(points, times, (scan.cloud, scan.times))
        self.counts["scans"] += 1
        self.counts[f"status_{result.status}"] += 1
        return result

    def drain_events(self) -> list[tuple[str, str]]:
        events, self.pipeline.events = self.pipeline.events, []
        return events

    def _reject(self, kind: str, message: str) -> None:
        self.counts[kind] += 1
        self.pipeline.events.append((kind, message))


def append_path_pose(poses: list, pose, status: str, max_poses: int) -> None:
    """Append the pose of one scan result (its `status`) to the path `poses` (in place, oldest
    first), keeping the most recent `max_poses` of the current trajectory only.

    Every reset (a looped bag's time jump, an IMU gap, an internal error, the reset service)
    starts the odometry over in a new odom frame, and its first scan is 'mapped' again: the poses
    before it belong to a frame that no longer exists, so the path starts over too. Kept, a looped
    bag piles up one trajectory per loop (~0.9 kB per PoseStamped, and every published ~/path with
    them) until max_poses.
    """
    if status == "mapped":
        poses.clear()
    poses.append(pose)
    del poses[:-max_poses]
