"""A LiDAR scan as the odometry needs it, from any driver's point layout: xyz, per-point
absolute time, a validity mask, and the organised shape when the driver keeps it.

Shared by the ROS node, the offline runner and the benchmark, so every path reads clouds alike.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from suite_tools.pointcloud2 import PointCloudFormatError

# Known per-point time fields: name -> (seconds per unit, relative to the header stamp?).
TIME_FIELDS = {
    "t": (1e-9, True),             # Ouster: uint32 ns since the scan start
    "time": (1.0, True),           # Velodyne (velodyne_pointcloud), Hesai: float s since stamp
    "offset_time": (1e-9, True),   # Livox: uint32 ns since the stamp
    "timestamp": (1.0, False),     # Hesai/Robosense: float64 absolute s
}
MAX_SCAN_SPAN_S = 1.0              # per-point times outside [stamp - 0.1, stamp + this] are invalid


@dataclass
class LidarScan:
    stamp_ns: int            # header stamp
    cloud: np.ndarray        # structured (H, W) as published; unorganised clouds are (1, N)
    times: np.ndarray        # (H, W) float64 absolute s
    valid: np.ndarray        # (H, W) bool
    time_field: str          # the field times came from ('' = none: all points at the stamp)
    frame_id: str = ""       # header.frame_id of the cloud (os_lidar, os_sensor, ...)

    @property
    def organized(self) -> bool:
        return self.cloud.shape[0] > 1

    @property
    def stamp(self) -> float:
        return self.stamp_ns * 1e-9

    @property
    def end(self) -> float:
        """Time of the last valid point (the pose time of the scan)."""
        return float(self.times[self.valid].max()) if self.valid.any() else self.stamp

    def points(self) -> tuple[np.ndarray, np.ndarray]:
        """(N, 3) float64 xyz and (N,) absolute times of the valid points, row-major order."""
        xyz = np.stack([self.cloud[c][self.valid] for c in ("x", "y", "z")], axis=1).astype(np.float64)
        return xyz, self.times[self.valid]


def scan_from_cloud(cloud: np.ndarray, stamp_ns: int, time_field: str = "auto",
                    time_scale: float = 0.0, frame_id: str = "") -> LidarScan:
    """Build a LidarScan from a structured array (H, W) or (N,) as pointcloud2_to_array gives.

    time_field 'auto' picks the first known field present; time_scale 0 uses the known scale of
    that field. Raises PointCloudFormatError when x, y or z is missing or a named time field is.
    """
    if cloud.ndim == 1:
        cloud = cloud.reshape(1, -1)
    names = cloud.dtype.names or ()
    missing = [c for c in ("x", "y", "z") if c not in names]
    if missing:
        raise PointCloudFormatError(f"cloud lacks fields {missing} (has {list(names)})")
    field = ""
    if time_field == "auto":
        field = next((f for f in TIME_FIELDS if f in names), "")
    elif time_field:
        if time_field not in names:
            raise PointCloudFormatError(f"cloud lacks the time field '{time_field}' (has {list(names)})")
        field = time_field
    stamp = stamp_ns * 1e-9
    if field:
        scale, relative = TIME_FIELDS.get(field, (1.0, True))
        if time_scale > 0:
            scale = time_scale
        raw = cloud[field].astype(np.float64) * scale
        if field not in TIME_FIELDS and np.nanmax(np.abs(raw), initial=0.0) > 1e6:
            relative = False   # an unknown field holding absolute times
        times = stamp + raw if relative else raw
    else:
        times = np.full(cloud.shape, stamp)
    x, y, z = (cloud[c] for c in ("x", "y", "z"))     # as published (float32): no copies
    with np.errstate(invalid="ignore"):
        valid = (np.isfinite(x) & np.isfinite(y) & np.isfinite(z) & ((x != 0) | (y != 0) | (z != 0))
                 & np.isfinite(times) & (times >= stamp - 0.1) & (times <= stamp + MAX_SCAN_SPAN_S))
    return LidarScan(int(stamp_ns), cloud, times, valid, field, frame_id)
