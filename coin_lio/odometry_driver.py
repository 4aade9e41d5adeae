"""Feeds the LIO pipeline from message streams: buffers IMU, hands a scan over once the IMU
covers it (ScanGate), detects time jumping back (a looped bag: reset), applies the sensor metadata
(photometric part, extrinsic) when it arrives, and counts what it rejected.

The node and the offline runner both drive the pipeline through these classes, so a bag played
into the node and the same bag run offline give the same trajectory.
"""
from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass

import numpy as np

from coin_lio.config import LioConfig
from coin_lio.input_effects import InputEffects
from coin_lio.io.scan import LidarScan
from coin_lio.io.sensor_metadata import MetadataError, choose_extrinsic, image_model_problem, load_metadata
from coin_lio.pipeline import LioPipeline, ScanResult

# Driver events that are news, not problems (the node logs them as info).
INFO_EVENTS = frozenset({"metadata_wait", "sensor_setup", "column_window", "first_map"})


@dataclass
class ImuReading:
    t: float              # s
    gyro: np.ndarray      # (3,) rad/s
    acc: np.ndarray       # (3,) m/s^2
    frame_id: str = ""    # header.frame_id of the message (os_imu, ...)


class ScanGate:
    """THE rule for when a scan may run, for the node and the offline runner: once the IMU covers
    it (an IMU reading stamped at or after the scan's last point has arrived), or when waiting
    longer is pointless -- the first waiting scan has waited `max_wait` s (the node's imu_wait,
    wall clock) or the input ended (`flush`: the runner at the end of a bag). The filter then
    extrapolates from the last IMU reading.

    Waiting scans are kept in arrival order, at most `max_waiting` (the node's lag policy: when
    another arrives the OLDEST is dropped). IMU stamps are on the IMU clock, moved onto the
    LiDAR clock by `imu_time_offset` (lio.imu.time_offset; the caller keeps it equal to the
    driver's time_offset, which the online estimate moves), as the driver does."""

    def __init__(self, max_wait: float = math.inf, max_waiting: int | None = None,
                 imu_time_offset: float = 0.0) -> None:
        self.scans: deque[LidarScan] = deque()
        self.max_wait, self.max_waiting, self.imu_time_offset = max_wait, max_waiting, imu_time_offset
        self.last_imu_stamp: float | None = None  # s, latest IMU reading on the IMU clock
        self._head: LidarScan | None = None
        self._head_since = 0.0                    # when the first waiting scan began to wait

    @property
    def last_imu_t(self) -> float | None:
        """s, the latest IMU reading on the LiDAR clock."""
        return None if self.last_imu_stamp is None else self.last_imu_stamp - self.imu_time_offset

    def add_imu(self, t: float) -> None:
        if math.isfinite(t):
            self.last_imu_stamp = t

    def add_scan(self, scan: LidarScan) -> int:
        """Queue a scan; returns how many older waiting scans the lag policy dropped for it."""
        dropped = 0
        while self.max_waiting is not None and len(self.scans) >= self.max_waiting:
            self.scans.popleft()
            dropped += 1
        self.scans.append(scan)
        return dropped

    def covers(self, scan: LidarScan) -> bool:
        return self.last_imu_t is not None and self.last_imu_t >= scan.end

    def pop_ready(self, now: float = 0.0, flush: bool = False) -> LidarScan | None:
        """The first waiting scan if it may run now (now: s on the clock max_wait is measured on)."""
        if not self.scans:
            return None
        if self.scans[0] is not self._head:
            self._head, self._head_since = self.scans[0], now
        if flush or self.covers(self._head) or now - self._head_since >= self.max_wait:
            self._head = None
            return self.scans.popleft()
        return None

    def wait_left(self, now: float) -> float:
        """s until the first waiting scan's wait is over (0 when none waits)."""
        if not self.scans or self.scans[0] is not self._head:
            return 0.0
        return max(0.0, self.max_wait - (now - self._head_since))

    def clear(self) -> None:
        self.scans.clear()
        self.last_imu_stamp, self._head = None, None


class OdometryDriver:
    """metadata_source: where sensor metadata may still arrive from when the config has no
    photometric.metadata_path (e.g. "topic /ouster/metadata"; '' = nowhere)."""

    def __init__(self, cfg: LioConfig, time_jump_reset: float = 1.0,
                 T_imu_lidar: np.ndarray | None = None, metadata_source: str = "") -> None:
        self.cfg = cfg
        self.pipeline = LioPipeline(cfg, T_imu_lidar)
        self.T_config = self.pipeline.T_imu_lidar.copy()   # the extrinsic before any metadata
        self.time_jump_reset = time_jump_reset
        self.imu: deque[ImuReading] = deque()
        self.last_imu_t: float | None = None
        self.last_scan_stamp: float | None = None
        self.counts: Counter = Counter()   # what happened: scans, resets, rejections by kind
        self.effects = InputEffects(cfg.input_check)   # dropped packets, column window
        self.metadata: dict | None = None  # the sensor metadata in use (file, topic or bag)
        self.metadata_source = "" if cfg.photometric.metadata_path else metadata_source
        self.imu_frame = ""                # frame id of the IMU messages
        self._sensor_key: tuple | None = None   # (metadata, cloud frame) the extrinsic was chosen for
        self._said_waiting = False
        if cfg.photometric.metadata_path:
            try:
                self.metadata = load_metadata(cfg.photometric.metadata_path)
            except MetadataError as exc:
                self.pipeline.events.append(("metadata_bad", f"photometric.metadata_path unusable: {exc}"))
        elif self.metadata_source:   # not "off": waiting (said at the first scan without it)
            self.pipeline.events = [e for e in self.pipeline.events if e[0] != "photometric_off"]
            if cfg.photometric.enabled:   # import the image side (OpenCV, ~1 s) now, not mid-run
                from coin_lio.core.photometric import PhotometricTracker

                PhotometricTracker(cfg.photometric, cfg.update.lidar_noise)

    def set_metadata(self, metadata: dict) -> None:
        """Sensor metadata (checked: coin_lio.io.sensor_metadata.parse_metadata) from a topic or a
        bag; applied at the next scan, whose frame decides the extrinsic. A repeated copy (a
        latched topic seen again) changes nothing."""
        if metadata == self.metadata:
            return
        self.metadata, self._sensor_key = metadata, None
        problem = image_model_problem(metadata)
        if problem:
            self.pipeline.events.append(("metadata_partial", "the sensor metadata cannot give the "
                                         f"intensity image ({problem}): only its transforms are used"))
        elif not self.cfg.photometric.metadata_path:
            self.pipeline.set_metadata(metadata)

    def _apply_sensor(self, cloud_frame: str) -> None:
        """Choose the extrinsic for this metadata and cloud frame (once per pair); a change after
        the filter started resets the odometry (its map and state used the old one)."""
        if self.metadata is None:
            if self.metadata_source and not self._said_waiting:
                self._said_waiting = True
                self.pipeline.events.append(("metadata_wait", f"waiting for the sensor metadata "
                                             f"({self.metadata_source}): scans are processed "
                                             "geometric-only until it arrives"))
            return
        key = (id(self.metadata), cloud_frame)
        if key == self._sensor_key:
            return
        self._sensor_key = key
        choice = choose_extrinsic(self.cfg.extrinsic.source, self.metadata, cloud_frame,
                                  self.T_config, self.imu_frame)
        photo = "photometric residuals on" if self.pipeline.photo is not None else "photometric off"
        self.pipeline.events.append(("sensor_setup", f"sensor metadata applied: {photo}; {choice.reason}"))
        if not np.allclose(choice.T_imu_cloud, self.pipeline.T_imu_lidar, atol=1e-9):
            if self.pipeline.initialised:   # the filter starts over; the buffered IMU is kept
                self.pipeline.reset()
                self.counts["resets"] += 1
                self.pipeline.events.append(("extrinsic_reset", "odometry reset: the LiDAR-IMU extrinsic "
                                             f"changed with the sensor metadata ({choice.reason})"))
            self.pipeline.T_imu_lidar = choice.T_imu_cloud.copy()

    def reset(self, reason: str = "requested") -> None:
        self.pipeline.reset()
        self.imu.clear()
        self.last_imu_t = None
        self.last_scan_stamp = None
        self.counts["resets"] += 1
        self.pipeline.events.append(("reset", f"odometry reset ({reason})"))

    def add_imu(self, r: ImuReading) -> bool:
        """Buffer one IMU reading (stamped on the IMU clock: the pipeline moves it onto the LiDAR
        clock by imu.time_offset); False when rejected (reason in events)."""
        if not (math.isfinite(r.t) and np.isfinite(r.gyro).all() and np.isfinite(r.acc).all()):
            self._reject("imu_nan", "IMU message with NaN/inf dropped")
            return False
        if self.last_imu_t is not None:
            if r.t < self.last_imu_t - self.time_jump_reset:
                self.reset(f"IMU time jumped back {self.last_imu_t - r.t:.2f} s")
            elif r.t <= self.last_imu_t:
                self._reject("imu_order", "IMU message out of order or with a duplicated stamp dropped")
                return False
        self.last_imu_t = r.t
        if r.frame_id:
            self.imu_frame = r.frame_id
        self.imu.append(r)
        self.counts["imu"] += 1
        return True

    def process(self, scan: LidarScan) -> ScanResult | None:
        """Run one scan: forward the buffered IMU up to its end and the first reading after it (the
        one ScanGate waited for: the motion is interpolated to the scan's end, not extrapolated
        from the last reading before it), then the pipeline."""
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
        model = self.pipeline.photo.model if self.pipeline.photo is not None else None
        shift = model.pixel_shift_by_row if model is not None and model.destaggered else None
        self.effects.observe_scan(scan.valid, None if scan.organized else scan.points()[0], shift)
        self._apply_sensor(scan.frame_id)
        end = scan.end + self.time_offset   # on the IMU clock
        while self.imu:                     # up to the end, and the reading covering it
            r = self.imu.popleft()
            self.pipeline.add_imu(r.t, r.gyro, r.acc)
            if r.t > end:
                break
        result = self.pipeline.process_cloud(scan.cloud, scan.times, scan.valid)
        self.effects.observe_free_space(result.in_free_space, self.cfg.free_space.lag_scans)
        self.counts["scans"] += 1
        self.counts[f"status_{result.status}"] += 1
        return result

    @property
    def time_offset(self) -> float:
        """s, IMU clock minus LiDAR clock in use: imu.time_offset, then the online estimate."""
        return self.pipeline.time_offset

    def drain_events(self) -> list[tuple[str, str]]:
        events, self.pipeline.events = self.pipeline.events + self.effects.events, []
        self.effects.events = []
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
