"""A simulated sequence on disk: SEQ/bag (MCAP), ground_truth.tum, metadata.json, sequence.json.

`load_sequence` finds topics, the LiDAR-IMU extrinsic and the frame the ground truth describes;
`iter_sensor_events` yields IMU samples and scans in time order (scans keyed by their last point).
Frames: p_lidar = T_lidar_imu @ p_imu; ground truth is T_gtworld_gtbody, p_lidar = T_lidar_gt @ p_gtbody.
"""
from __future__ import annotations

import heapq
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from scipy.spatial.transform import Rotation

log = logging.getLogger(__name__)

DEFAULT_POINTS_TOPIC = "/ouster/points"
DEFAULT_IMU_TOPIC = "/ouster/imu"


@dataclass
class SequenceInfo:
    root: Path
    bag: Path
    ground_truth: Path
    points_topic: str
    imu_topic: str
    T_lidar_imu: np.ndarray
    T_lidar_gt: np.ndarray
    gt_frame: str
    metadata: dict | None = None
    sequence: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.sequence.get("name") or self.root.name)


def parse_transform(value: Any) -> np.ndarray:
    """4x4 from a nested 4x4 / 3x4 list, 16 or 12 numbers row-major, or a dict with a translation
    ('translation'|'xyz'|'t'|'position') and a rotation ('quat_xyzw'|'quaternion'|'rotation'|'q':
    [x, y, z, w], {x, y, z, w} or a 3x3 matrix)."""
    if isinstance(value, dict):
        t = _first(value, ("translation", "xyz", "t", "position"), [0.0, 0.0, 0.0])
        q = _first(value, ("quat_xyzw", "quaternion", "rotation", "q", "orientation"), [0, 0, 0, 1])
        if isinstance(t, dict):
            t = [t["x"], t["y"], t["z"]]
        if isinstance(q, dict):
            q = [q["x"], q["y"], q["z"], q["w"]]
        q = np.asarray(q, float)
        T = np.eye(4)
        T[:3, :3] = q.reshape(3, 3) if q.size == 9 else Rotation.from_quat(q).as_matrix()
        T[:3, 3] = np.asarray(t, float)
        return T
    arr = np.asarray(value, dtype=np.float64).reshape(-1)
    if arr.size not in (12, 16):
        raise ValueError(f"cannot read a transform from {value!r}")
    T = np.eye(4)
    T[:3] = arr[:12].reshape(3, 4)
    return T


def _first(d: dict, keys, default=None):
    return next((d[k] for k in keys if k in d), default)


def _lookup(doc: dict, path: str) -> Any:
    node: Any = doc
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


# Where sequence.json may keep T_lidar_imu: (key path, stored inverted?). First hit wins.
# Adapt here when the simulator's schema settles.
_T_LIDAR_IMU_KEYS = [("extrinsics.T_lidar_imu", False), ("T_lidar_imu", False),
                     ("extrinsics.lidar_imu", False), ("extrinsics.T_imu_lidar", True),
                     ("T_imu_lidar", True), ("extrinsics.imu_to_lidar", False),
                     ("extrinsics.lidar_to_imu", True)]


def read_lidar_imu_extrinsic(sequence: dict, metadata: dict | None) -> tuple[np.ndarray, str]:
    """(T_lidar_imu, where it came from): sequence.json, else Ouster metadata
    (inv(lidar_to_sensor) @ imu_to_sensor, mm -> m), else identity with a warning."""
    for key, inverted in _T_LIDAR_IMU_KEYS:
        value = _lookup(sequence, key)
        if value is not None:
            T = parse_transform(value)
            return (np.linalg.inv(T) if inverted else T), f"sequence.json:{key}"
    if metadata:
        l2s = _lookup(metadata, "lidar_to_sensor_transform") or _lookup(
            metadata, "calibration_status.lidar_to_sensor_transform")
        i2s = _lookup(metadata, "imu_to_sensor_transform") or _lookup(
            metadata, "imu_intrinsics.imu_to_sensor_transform")
        if l2s is not None and i2s is not None:
            L, I = parse_transform(l2s), parse_transform(i2s)
            L[:3, 3] *= 1e-3
            I[:3, 3] *= 1e-3
            return np.linalg.inv(L) @ I, "metadata.json:inv(lidar_to_sensor) @ imu_to_sensor"
    log.warning("no LiDAR-IMU extrinsic in sequence.json or metadata.json: using identity")
    return np.eye(4), "identity (missing)"


def read_gt_frame(sequence: dict, T_lidar_imu: np.ndarray) -> tuple[str, np.ndarray, str]:
    """(gt frame, T_lidar_gt, note). The GT frame is 'lidar', 'imu' or a frame id; default 'lidar'."""
    frame = None
    for key in ("frames.ground_truth", "ground_truth.frame", "ground_truth_frame", "gt_frame",
                "frames.gt"):
        frame = _lookup(sequence, key)
        if frame is not None:
            break
    if frame is None:
        log.warning("sequence.json does not say which frame ground_truth.tum describes: assuming LiDAR")
        return "lidar", np.eye(4), "gt frame missing: assumed lidar"
    frames = sequence.get("frames", {}) if isinstance(sequence.get("frames"), dict) else {}
    kind = {"lidar": "lidar", "imu": "imu", frames.get("lidar"): "lidar", frames.get("imu"): "imu"}.get(frame)
    if kind == "lidar":
        return str(frame), np.eye(4), ""
    if kind == "imu":
        return str(frame), T_lidar_imu.copy(), ""
    for key in (f"extrinsics.T_lidar_{frame}", "extrinsics.T_lidar_gt", "extrinsics.T_lidar_base"):
        value = _lookup(sequence, key)
        if value is not None:
            return str(frame), parse_transform(value), ""
    log.warning("no transform from GT frame '%s' to the LiDAR: assuming identity", frame)
    return str(frame), np.eye(4), f"T_lidar_{frame} missing: identity"


def load_sequence(root: str | Path, points_topic: str | None = None,
                  imu_topic: str | None = None) -> SequenceInfo:
    root = Path(root)
    bag, gt = root / "bag", root / "ground_truth.tum"
    for p in (bag, gt):
        if not p.exists():
            raise FileNotFoundError(f"sequence {root} lacks {p.name}")
    seq_path, meta_path = root / "sequence.json", root / "metadata.json"
    sequence = json.loads(seq_path.read_text()) if seq_path.exists() else {}
    metadata = json.loads(meta_path.read_text()) if meta_path.exists() else None
    topics = sequence.get("topics", {}) if isinstance(sequence.get("topics"), dict) else {}
    T_lidar_imu, source = read_lidar_imu_extrinsic(sequence, metadata)
    gt_frame, T_lidar_gt, note = read_gt_frame(sequence, T_lidar_imu)
    notes = [f"T_lidar_imu from {source}"] + ([note] if note else [])
    return SequenceInfo(root, bag, gt, points_topic or topics.get("points", DEFAULT_POINTS_TOPIC),
                        imu_topic or topics.get("imu", DEFAULT_IMU_TOPIC), T_lidar_imu, T_lidar_gt,
                        gt_frame, metadata, sequence, notes)


@dataclass
class ImuSample:
    t: float            # header stamp, s
    gyro: np.ndarray    # (3,) rad/s
    acc: np.ndarray     # (3,) m/s^2


@dataclass
class Scan:
    stamp: float              # header stamp = scan start, s
    cloud: np.ndarray         # structured (H, W) as published
    point_times: np.ndarray   # (H, W) absolute s
    valid: np.ndarray         # (H, W) bool: finite and not (0, 0, 0)

    @property
    def end(self) -> float:
        """Time of the last valid point (the scan's pose time)."""
        return float(self.point_times[self.valid].max()) if self.valid.any() else self.stamp

    def valid_points(self) -> tuple[np.ndarray, np.ndarray]:
        """(N, 3) float64 xyz and (N,) absolute times of the valid points."""
        xyz = np.stack([self.cloud[c][self.valid] for c in ("x", "y", "z")], axis=1).astype(np.float64)
        return xyz, self.point_times[self.valid]


def decode_scan(msg: Any) -> Scan:
    from coin_lio.io.pointcloud2 import pointcloud2_to_array

    cloud = pointcloud2_to_array(msg)
    stamp_ns = int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)
    if "t" in (cloud.dtype.names or ()):
        times = (stamp_ns + cloud["t"].astype(np.int64)) * 1e-9
    else:
        times = np.full(cloud.shape, stamp_ns * 1e-9)
    x, y, z = (cloud[c].astype(np.float64) for c in ("x", "y", "z"))
    valid = np.isfinite(x) & np.isfinite(y) & np.isfinite(z) & ((x != 0) | (y != 0) | (z != 0))
    return Scan(stamp_ns * 1e-9, cloud, times, valid)


def iter_sensor_events(info: SequenceInfo, reorder_window_s: float = 0.5) -> Iterator[ImuSample | Scan]:
    """IMU samples (by stamp) and scans (by last point time) in time order; an IMU sample at
    exactly a scan's end comes before the scan. Messages up to reorder_window_s late in the bag
    are put back in order."""
    from suite_tools.bag_io import read_bag

    heap: list = []
    counter = 0
    for m in read_bag(info.bag, [info.points_topic, info.imu_topic]):
        msg = m.decode()
        if m.topic == info.imu_topic:
            st = msg.header.stamp
            t = st.sec + st.nanosec * 1e-9
            av, la = msg.angular_velocity, msg.linear_acceleration
            ev: ImuSample | Scan = ImuSample(t, np.array([av.x, av.y, av.z]), np.array([la.x, la.y, la.z]))
            key = (t, 0)
        else:
            ev = decode_scan(msg)
            key = (ev.end, 1)
        heapq.heappush(heap, (key, counter, ev))
        counter += 1
        now = m.t_ns * 1e-9
        while heap and heap[0][0][0] <= now - reorder_window_s:
            yield heapq.heappop(heap)[2]
    while heap:
        yield heapq.heappop(heap)[2]
