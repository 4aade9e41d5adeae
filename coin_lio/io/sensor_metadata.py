"""Sensor metadata -> what the odometry needs: the checked metadata dict (the photometric image
model) and the LiDAR-IMU extrinsic. Pure (json, numpy); the node, the offline runner and the
evaluation all use these functions.

The metadata is the Ouster sensor JSON, as ouster-ros publishes it on /ouster/metadata
(std_msgs/String) and as sensors and ouster-sdk write it: the flat (legacy) layout or the nested
one (lidar_intrinsics / imu_intrinsics / beam_intrinsics / lidar_data_format); or the ring table
the simulator writes for Velodyne-like sensors (altitudes_deg_by_ring, no transforms).

Frames. The metadata's 4x4 row-major transforms (translations in mm) are poses in os_sensor:
lidar_to_sensor_transform = T_sensor_lidar, imu_to_sensor_transform = T_sensor_imu. The
odometry's extrinsic (coin_lio.config.ExtrinsicConfig, FAST-LIO's extrinsic_T/R) is the pose of
the frame the CLOUDS are in, in the IMU frame:
    clouds in os_lidar:  T_imu_lidar  = inv(T_lidar_imu),  T_lidar_imu = inv(lidar_to_sensor) @ imu_to_sensor
    clouds in os_sensor: T_imu_sensor = inv(imu_to_sensor)
"""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from scipy.spatial.transform import Rotation

CLOUD_FRAMES = ("os_lidar", "os_sensor")
EXTRINSIC_SOURCES = ("auto", "metadata", "config")
_TRANSFORM_KEYS = {   # (legacy flat key, nested key)
    "lidar": ("lidar_to_sensor_transform", "lidar_intrinsics/lidar_to_sensor_transform"),
    "imu": ("imu_to_sensor_transform", "imu_intrinsics/imu_to_sensor_transform"),
}


class MetadataError(ValueError):
    """Metadata that cannot be used (the reason is the message)."""


def parse_metadata(data: str | bytes | Mapping[str, Any]) -> dict:
    """JSON text (or an already decoded dict) -> the metadata dict, checked: usable for the
    photometric image model (image_model_problem) and/or holding the two sensor transforms
    (rigid). Old firmware (1.12/1.13) metadata without a data format still gives the extrinsic.
    MetadataError with the reason when it gives neither."""
    if isinstance(data, (str, bytes)):
        try:
            data = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise MetadataError(f"not JSON ({exc})") from None
    if not isinstance(data, Mapping):
        raise MetadataError(f"not a JSON object (a {type(data).__name__})")
    meta = dict(data)
    problem = image_model_problem(meta)
    transforms = None if "altitudes_deg_by_ring" in meta else sensor_transforms(meta)  # raises: not rigid
    if problem and transforms is None:
        raise MetadataError(f"not a usable Ouster metadata: {problem}")
    return meta


def image_model_problem(meta: Mapping[str, Any]) -> str:
    """'' when the photometric image model can be built from the metadata (Ouster beam tables and
    data format, as coin_lio.io.ouster_metadata.OusterMetadata reads them; or a ring table), else why not."""
    if "altitudes_deg_by_ring" in meta:            # Velodyne-like ring table (simulator)
        alt = meta["altitudes_deg_by_ring"]
        ok = isinstance(alt, list) and len(alt) >= 2 and all(isinstance(a, (int, float)) for a in alt)
        return "" if ok else "altitudes_deg_by_ring must be a list of >= 2 numbers"
    from coin_lio.io.ouster_metadata import OusterMetadata

    try:
        OusterMetadata.from_dict(meta)
    except (KeyError, ValueError, TypeError) as exc:
        return str(exc).strip("'")
    return ""


def load_metadata(path: str | Path) -> dict:
    """parse_metadata of a file; MetadataError (also for a missing/unreadable file)."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise MetadataError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return parse_metadata(text)
    except MetadataError as exc:
        raise MetadataError(f"{path}: {exc}") from None


def lookup(doc: Mapping, path: str, sep: str = "/") -> Any:
    """The value at `path` ("a/b/c") in nested mappings, or None where any key is missing."""
    node: Any = doc
    for key in path.split(sep):
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


def _rigid_mm(value: Any, name: str) -> np.ndarray:
    try:
        T = np.asarray(value, dtype=np.float64).reshape(4, 4)
    except (TypeError, ValueError):
        raise MetadataError(f"{name} must be 16 numbers (4x4 row-major)") from None
    R = T[:3, :3]
    if (not np.all(np.isfinite(T)) or not np.allclose(T[3], [0, 0, 0, 1])
            or not np.allclose(R @ R.T, np.eye(3), atol=1e-3) or np.linalg.det(R) < 0):
        raise MetadataError(f"{name} is not a rigid transform: {T.reshape(-1).tolist()}")
    return T


def sensor_transforms(meta: Mapping) -> dict[str, np.ndarray] | None:
    """{os_sensor, os_lidar, os_imu: T_sensor_frame (4x4, m)} when the metadata holds BOTH
    transforms (legacy or nested keys), else None; MetadataError when one is not rigid."""
    found = {}
    for frame, keys in _TRANSFORM_KEYS.items():
        value = next((v for v in (lookup(meta, k) for k in keys) if v is not None), None)
        if value is None:
            return None
        T = _rigid_mm(value, keys[0]).copy()
        T[:3, 3] *= 1e-3                                   # mm -> m
        found[f"os_{frame}"] = T
    return {"os_sensor": np.eye(4), **found}


def cloud_frame_of(frame_id: str) -> str | None:
    """'os_lidar' / 'os_sensor' for a cloud's header.frame_id with that name (also namespaced:
    'robot1/os_lidar'), else None."""
    name = str(frame_id).rsplit("/", 1)[-1]
    return name if name in CLOUD_FRAMES else None


def extrinsic_from_metadata(meta: Mapping, cloud_frame: str) -> np.ndarray:
    """T_imu_cloud (4x4, m): the pose of `cloud_frame` (os_lidar | os_sensor) in the IMU frame,
    the odometry's extrinsic. MetadataError without the transforms."""
    if cloud_frame not in CLOUD_FRAMES:
        raise MetadataError(f"cloud frame must be one of {CLOUD_FRAMES}, got '{cloud_frame}'")
    frames = sensor_transforms(meta)
    if frames is None:
        raise MetadataError("the metadata has no lidar_to_sensor_transform / imu_to_sensor_transform")
    return np.linalg.inv(frames["os_imu"]) @ frames[cloud_frame]


def describe_pose(T: np.ndarray) -> str:
    """'t (x, y, z) m, rpy (r, p, y) deg' of a 4x4, for logs."""
    with warnings.catch_warnings():   # gimbal lock (pitch +-90 deg) is fine for a log line
        warnings.simplefilter("ignore")
        rpy = Rotation.from_matrix(T[:3, :3]).as_euler("xyz", degrees=True)
    return (f"t ({', '.join(f'{v:.4f}' for v in T[:3, 3])}) m, "
            f"rpy ({', '.join(f'{v:.1f}' for v in rpy + 0.0)}) deg")


@dataclass
class ExtrinsicChoice:
    T_imu_cloud: np.ndarray   # 4x4, m: the extrinsic to use (ExtrinsicConfig convention)
    source: str               # 'metadata' | 'config'
    reason: str               # one line for the log


def choose_extrinsic(source: str, meta: Mapping | None, cloud_frame_id: str,
                     T_config: np.ndarray, imu_frame_id: str = "") -> ExtrinsicChoice:
    """The extrinsic by lio.extrinsic.source: 'config' keeps T_config; 'metadata' derives it from
    the metadata for clouds in os_lidar / os_sensor (cloud_frame_id); 'auto' does so when the
    metadata holds the transforms and the IMU messages are not from another IMU (imu_frame_id
    empty or named os_imu). Where it cannot, T_config is kept and `reason` says why."""
    if source not in EXTRINSIC_SOURCES:
        raise ValueError(f"extrinsic source must be one of {EXTRINSIC_SOURCES}, got '{source}'")

    def keep(why: str) -> ExtrinsicChoice:
        return ExtrinsicChoice(np.asarray(T_config, float), "config",
                               f"extrinsic from the config ({describe_pose(T_config)}): {why}")

    if source == "config":
        return keep("lio.extrinsic.source is config")
    try:
        frames = sensor_transforms(meta) if meta else None
    except MetadataError as exc:
        return keep(f"the metadata transforms are unusable ({exc})")
    if frames is None:
        return keep("no sensor metadata with lidar_to_sensor / imu_to_sensor transforms")
    frame = cloud_frame_of(cloud_frame_id)
    if frame is None:
        return keep(f"the clouds' frame '{cloud_frame_id}' is neither os_lidar nor os_sensor, so "
                    "the metadata cannot say where they are")
    imu_name = str(imu_frame_id).rsplit("/", 1)[-1]
    if source == "auto" and imu_name and not imu_name.endswith("os_imu"):
        return keep(f"the IMU messages are in frame '{imu_frame_id}', not the Ouster's os_imu: the "
                    "metadata's imu_to_sensor describes another IMU (set lio.extrinsic.source: "
                    "metadata to use it anyway)")
    T = extrinsic_from_metadata(meta, frame)
    return ExtrinsicChoice(T, "metadata", f"extrinsic from the sensor metadata for clouds in {frame} "
                           f"(T_imu_{frame.removeprefix('os_')}: {describe_pose(T)})")
