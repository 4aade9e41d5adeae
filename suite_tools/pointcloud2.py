"""sensor_msgs/PointCloud2 <-> numpy structured arrays, by field name (never by fixed offsets).

Works on any object with the PointCloud2 attributes (rclpy messages, rosbags messages, plain
dataclasses), so the node, the offline runner and the simulator share one conversion.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

# sensor_msgs/PointField datatypes -> numpy scalar types (little-endian base).
POINTFIELD_DTYPES: dict[int, str] = {1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4", 8: "f8"}
_NUMPY_TO_POINTFIELD = {np.dtype(v).str[1:]: k for k, v in POINTFIELD_DTYPES.items()}

# The "original" layout of the Ouster ROS 2 driver: 48-byte points, organised rows x columns.
OUSTER_ORIGINAL_DTYPE = np.dtype({
    "names": ["x", "y", "z", "intensity", "t", "reflectivity", "ring", "ambient", "range"],
    "formats": ["<f4", "<f4", "<f4", "<f4", "<u4", "<u2", "<u2", "<u2", "<u4"],
    "offsets": [0, 4, 8, 16, 20, 24, 26, 28, 32],
    "itemsize": 48,
})


class PointCloudFormatError(ValueError):
    """A PointCloud2 whose layout is inconsistent or lacks what the caller needs."""


@dataclass(frozen=True)
class FieldSpec:
    """One sensor_msgs/PointField as plain data."""

    name: str
    offset: int
    datatype: int
    count: int = 1


def fields_dtype(fields: Sequence[Any], point_step: int, is_bigendian: bool = False) -> np.dtype:
    """numpy structured dtype of one point from PointField-like objects."""
    if point_step <= 0:
        raise PointCloudFormatError(f"point_step must be positive, got {point_step}")
    names, formats, offsets = [], [], []
    order = ">" if is_bigendian else "<"
    for f in fields:
        base = POINTFIELD_DTYPES.get(int(f.datatype))
        if base is None:
            raise PointCloudFormatError(f"field '{f.name}' has unknown datatype {f.datatype}")
        count = max(int(f.count), 1)
        size = np.dtype(base).itemsize * count
        if f.offset < 0 or f.offset + size > point_step:
            raise PointCloudFormatError(
                f"field '{f.name}' (offset {f.offset}, {size} bytes) exceeds point_step {point_step}")
        if f.name in names:
            raise PointCloudFormatError(f"field '{f.name}' appears twice")
        names.append(f.name)
        formats.append((order + base) if count == 1 else (order + base, (count,)))
        offsets.append(int(f.offset))
    return np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": point_step})


def pointcloud2_to_array(msg: Any) -> np.ndarray:
    """Structured array of shape (height, width) viewing the message's points (copied, aligned).

    Handles row padding (row_step > width * point_step) and either byte order; raises
    PointCloudFormatError with the reason when the layout does not add up.
    """
    height, width = int(msg.height), int(msg.width)
    point_step, row_step = int(msg.point_step), int(msg.row_step)
    dtype = fields_dtype(msg.fields, point_step, bool(msg.is_bigendian))
    if height < 0 or width < 0:
        raise PointCloudFormatError(f"negative size {height}x{width}")
    if row_step < width * point_step:
        raise PointCloudFormatError(
            f"row_step {row_step} < width {width} x point_step {point_step}")
    buf = np.frombuffer(_as_bytes(msg.data), dtype=np.uint8)
    if buf.size < row_step * height:
        raise PointCloudFormatError(
            f"data has {buf.size} bytes, expected row_step {row_step} x height {height}")
    if height == 0 or width == 0:
        return np.zeros((height, width), dtype=dtype)
    rows = buf[: row_step * height].reshape(height, row_step)[:, : width * point_step]
    out = np.zeros((height, width), dtype=dtype)   # zeroed: padding bytes stay deterministic
    out[...] = np.ascontiguousarray(rows).view(dtype).reshape(height, width)
    return out


def array_to_pointcloud2_parts(points: np.ndarray) -> tuple[list[FieldSpec], int, int, int, np.ndarray]:
    """(fields, point_step, height, width, data uint8) for a structured array of shape (H, W) or (N,)."""
    if points.dtype.names is None:
        raise PointCloudFormatError("points must be a structured array with named fields")
    arr = points if points.ndim == 2 else points.reshape(1, -1)
    fields = []
    for name in arr.dtype.names:
        base, offset = arr.dtype.fields[name][:2]
        count = int(np.prod(base.shape)) if base.shape else 1
        scalar = base.subdtype[0] if base.subdtype else base
        key = scalar.newbyteorder("<").str[1:]
        if key not in _NUMPY_TO_POINTFIELD:
            raise PointCloudFormatError(f"field '{name}' has type {scalar} with no PointField datatype")
        fields.append(FieldSpec(name, int(offset), _NUMPY_TO_POINTFIELD[key], count))
    data = np.ascontiguousarray(arr.astype(arr.dtype.newbyteorder("<"), copy=False)).view(np.uint8)
    return fields, arr.dtype.itemsize, arr.shape[0], arr.shape[1], data.reshape(-1)


def xyz_array(points: np.ndarray) -> np.ndarray:
    """(N, 3) float64 of the x, y, z fields of a structured array of any shape."""
    missing = [n for n in ("x", "y", "z") if n not in (points.dtype.names or ())]
    if missing:
        raise PointCloudFormatError(f"cloud lacks fields {missing}")
    flat = points.reshape(-1)
    return np.stack([flat["x"], flat["y"], flat["z"]], axis=1).astype(np.float64)


def _as_bytes(data: Any) -> bytes | memoryview | np.ndarray:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return data
    if isinstance(data, np.ndarray):
        return data.astype(np.uint8, copy=False)
    return memoryview(data).cast("B") if hasattr(data, "typecode") else bytes(data)
