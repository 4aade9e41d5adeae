"""A simulated sequence on disk: SEQ/bag (MCAP), ground_truth.tum, metadata.json, sequence.json.

`load_sequence` finds topics, the LiDAR-IMU extrinsic and the frame the ground truth describes;
`iter_sensor_events` yields IMU samples and scans in time order (scans keyed by their last point).
Frames: "lidar" is the frame of the published points (header.frame_id: os_lidar or os_sensor);
p_lidar = T_lidar_imu @ p_imu; ground truth is T_gtworld_gtbody and p_lidar = T_lidar_gt @ p_gtbody.
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

from coin_lio.io.scan import LidarScan
from coin_lio.io.sensor_metadata import lookup
from coin_lio.odometry_driver import ImuReading

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
    cloud_frame: str
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


# Where sequence.json may keep T_lidar_imu ("lidar" = the frame of the published points):
# (key path, stored inverted?). First hit wins. coin_lio.sim (format coin_lio_sim/1) writes
# extrinsics.T_imu_cloud (cloud frame in the IMU frame) and, for Ouster, extrinsics.T_lidar_imu
# of os_lidar -- which is the cloud frame only when clouds are published in os_lidar, hence the
# cloud keys come first.
_T_LIDAR_IMU_KEYS = [("extrinsics.T_cloud_imu", False), ("extrinsics.T_imu_cloud", True),
                     ("extrinsics.T_lidar_imu", False), ("T_lidar_imu", False),
                     ("extrinsics.T_imu_lidar", True), ("T_imu_lidar", True)]
_GT_FRAME_KEYS = ("frames.ground_truth", "ground_truth.frame", "ground_truth_frame", "gt_frame",
                  "frames.gt")


def ouster_frames(metadata: dict | None) -> dict[str, np.ndarray]:
    """{os_sensor, os_lidar, os_imu: T_sensor_frame (4x4, m)} from Ouster metadata, or {}
    (coin_lio.io.sensor_metadata.sensor_transforms: legacy and nested layouts)."""
    from coin_lio.io.sensor_metadata import MetadataError, sensor_transforms

    try:
        return (sensor_transforms(metadata) or {}) if metadata else {}
    except MetadataError as exc:
        log.warning("Ouster metadata transforms unusable: %s", exc)
        return {}


def read_lidar_imu_extrinsic(sequence: dict, metadata: dict | None,
                             cloud_frame: str = "os_lidar") -> tuple[np.ndarray, str]:
    """(T_lidar_imu, where it came from), "lidar" being the point cloud's frame: sequence.json,
    else Ouster metadata (os_lidar clouds: inv(lidar_to_sensor) @ imu_to_sensor; os_sensor
    clouds: imu_to_sensor; mm -> m), else identity with a warning."""
    for key, inverted in _T_LIDAR_IMU_KEYS:
        value = lookup(sequence, key, sep=".")
        if value is not None:
            T = parse_transform(value)
            return (np.linalg.inv(T) if inverted else T), f"sequence.json:{key}"
    frames = ouster_frames(metadata)
    if frames and cloud_frame in frames:
        T = np.linalg.inv(frames[cloud_frame]) @ frames["os_imu"]
        return T, f"metadata.json: {cloud_frame} <- os_imu"
    log.warning("no LiDAR-IMU extrinsic in sequence.json or metadata.json: using identity")
    return np.eye(4), "identity (missing)"


def read_gt_frame(sequence: dict, T_lidar_imu: np.ndarray, metadata: dict | None = None,
                  cloud_frame: str = "os_lidar",
                  imu_frame: str = "os_imu") -> tuple[str, np.ndarray, str]:
    """(GT frame, T_lidar_gt, note). The GT frame is 'lidar' (= the cloud frame), 'imu', the
    cloud's or the IMU's frame id, an Ouster frame (os_sensor/os_lidar/os_imu, via metadata) or a
    frame with an `extrinsics.T_lidar_<frame>` entry; if sequence.json names none: the cloud frame."""
    frame = next((f for f in (lookup(sequence, k, sep=".") for k in _GT_FRAME_KEYS) if f is not None), None)
    if frame is None:
        log.warning("sequence.json does not say which frame ground_truth.tum describes: assuming LiDAR")
        return "lidar", np.eye(4), "gt frame missing: assumed lidar"
    frames = sequence.get("frames", {}) if isinstance(sequence.get("frames"), dict) else {}
    lidar_names = {"lidar", "cloud", cloud_frame, frames.get("cloud"),
                   frames.get("cloud_frame")} - {None}       # "lidar" = the points' frame here
    imu_names = {"imu", imu_frame, frames.get("imu"), frames.get("imu_frame")} - {None}
    if frame in lidar_names:
        return str(frame), np.eye(4), ""
    if frame in imu_names:
        return str(frame), T_lidar_imu.copy(), ""
    for key in (f"extrinsics.T_lidar_{frame}", "extrinsics.T_lidar_gt", "extrinsics.T_lidar_body"):
        value = lookup(sequence, key, sep=".")
        if value is not None:
            return str(frame), parse_transform(value), ""
    ouster = ouster_frames(metadata)
    if frame in ouster and cloud_frame in ouster:
        return str(frame), np.linalg.inv(ouster[cloud_frame]) @ ouster[frame], ""
    log.warning("no transform from GT frame '%s' to the LiDAR: assuming identity", frame)
    return str(frame), np.eye(4), f"T_lidar_{frame} missing: identity"


def _first_frame_ids(bag: Path, points_topic: str, imu_topic: str) -> dict[str, str]:
    """{topic: header.frame_id} of the first message on each topic."""
    from suite_tools.bag_io import read_bag

    found: dict[str, str] = {}
    for m in read_bag(bag, [points_topic, imu_topic]):
        if m.topic not in found:
            found[m.topic] = str(m.decode().header.frame_id)
            if len(found) == 2:
                break
    return found


def load_sequence(root: str | Path, points_topic: str | None = None,
                  imu_topic: str | None = None) -> SequenceInfo:
    """Paths, topics and frames of a sequence directory (frame ids from sequence.json, else from
    the first messages' headers)."""
    root = Path(root)
    bag, gt = root / "bag", root / "ground_truth.tum"
    for p in (bag, gt):
        if not p.exists():
            raise FileNotFoundError(f"sequence {root} lacks {p.name}")
    seq_path, meta_path = root / "sequence.json", root / "metadata.json"
    sequence = json.loads(seq_path.read_text()) if seq_path.exists() else {}
    metadata = json.loads(meta_path.read_text()) if meta_path.exists() else None
    topics = sequence.get("topics", {}) if isinstance(sequence.get("topics"), dict) else {}
    points_topic = points_topic or topics.get("points", DEFAULT_POINTS_TOPIC)
    imu_topic = imu_topic or topics.get("imu", DEFAULT_IMU_TOPIC)
    frames = sequence.get("frames", {}) if isinstance(sequence.get("frames"), dict) else {}
    ids = _first_frame_ids(bag, points_topic, imu_topic)
    cloud_frame = (frames.get("cloud") or frames.get("cloud_frame") or ids.get(points_topic)
                   or "os_lidar")
    imu_frame = frames.get("imu") or frames.get("imu_frame") or ids.get(imu_topic) or "os_imu"
    T_lidar_imu, source = read_lidar_imu_extrinsic(sequence, metadata, cloud_frame)
    gt_frame, T_lidar_gt, note = read_gt_frame(sequence, T_lidar_imu, metadata, cloud_frame, imu_frame)
    notes = [f"cloud frame {cloud_frame}, T_lidar_imu from {source}"] + ([note] if note else [])
    return SequenceInfo(root, bag, gt, points_topic, imu_topic, T_lidar_imu, T_lidar_gt, gt_frame,
                        cloud_frame, metadata, sequence, notes)


ImuSample = ImuReading     # t (header stamp, s), gyro (3,) rad/s, acc (3,) m/s^2, frame_id


class Scan(LidarScan):
    """A LidarScan under the names the benchmark runner uses."""

    @property
    def point_times(self) -> np.ndarray:   # (H, W) absolute s
        return self.times

    def valid_points(self) -> tuple[np.ndarray, np.ndarray]:
        return self.points()


def decode_scan(msg: Any) -> Scan:
    """A bag's PointCloud2 (rosbags message) as a Scan, converted by the node's function."""
    from dataclasses import fields

    from coin_lio.ros_messages import scan_from_msg

    scan = scan_from_msg(msg)
    return Scan(**{f.name: getattr(scan, f.name) for f in fields(LidarScan)})


def iter_sensor_events(info: SequenceInfo, reorder_window_s: float = 0.5) -> Iterator[ImuSample | Scan]:
    """IMU samples (by stamp) and scans (by last point time) in time order; an IMU sample at
    exactly a scan's end comes before the scan. Messages up to reorder_window_s late in the bag
    are put back in order."""
    from coin_lio.ros_messages import imu_from_msg
    from suite_tools.bag_io import read_bag

    heap: list = []
    counter = 0
    for m in read_bag(info.bag, [info.points_topic, info.imu_topic]):
        msg = m.decode()
        if m.topic == info.imu_topic:
            ev: ImuSample | Scan = imu_from_msg(msg)
            key = (ev.t, 0)
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
