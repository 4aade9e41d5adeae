"""Ouster sensor metadata JSON: read the flat (legacy) and nested (FW >= 2) layouts, write either.

The keys follow the files the sensor and ouster-sdk write: beam_altitude_angles and
beam_azimuth_angles in degrees, top row first; lidar_origin_to_beam_origin_mm; 4x4 row-major
transforms with translations in mm; data_format (legacy) or lidar_data_format (nested) with
pixels_per_column, columns_per_frame, pixel_shift_by_row, column_window; lidar_mode "1024x10".
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np


# Sensor frame <- LiDAR frame on real units: 180-degree yaw and the LiDAR origin 36.18 mm up.
LIDAR_TO_SENSOR_MM = np.array([[-1.0, 0, 0, 0], [0, -1.0, 0, 0], [0, 0, 1.0, 36.18],
                               [0, 0, 0, 1.0]])
# Sensor frame <- IMU frame (the value every OS unit in ouster-sdk's test data reports).
IMU_TO_SENSOR_MM = np.array([[1.0, 0, 0, 6.253], [0, 1.0, 0, -11.775], [0, 0, 1.0, 7.645],
                             [0, 0, 0, 1.0]])


def _mat4(value: Any, name: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.size != 16:
        raise ValueError(f"{name} needs 16 numbers (row-major 4x4), got {arr.size}")
    return arr.reshape(4, 4)


@dataclass
class OusterMetadata:
    """What a reader of Ouster clouds needs: beam angles, staggering, transforms, mode."""

    beam_altitude_angles: list[float]             # (rows,) deg, top row first
    beam_azimuth_angles: list[float]              # (rows,) deg
    pixel_shift_by_row: list[int]                 # (rows,) destaggered col = (col + shift) % cols
    columns_per_frame: int
    lidar_origin_to_beam_origin_mm: float
    lidar_mode: str = ""                          # "1024x10"; derived from columns when empty
    lidar_to_sensor_transform: np.ndarray = field(
        default_factory=lambda: LIDAR_TO_SENSOR_MM.copy())
    imu_to_sensor_transform: np.ndarray = field(default_factory=lambda: IMU_TO_SENSOR_MM.copy())
    beam_to_lidar_transform: np.ndarray | None = None  # (4, 4) mm; None: from the beam offset
    column_window: tuple[int, int] | None = None
    columns_per_packet: int = 16
    prod_line: str = "OS-0-128"
    udp_profile_lidar: str = "RNG19_RFL8_SIG16_NIR16"

    def __post_init__(self) -> None:
        self.beam_altitude_angles = [float(a) for a in self.beam_altitude_angles]
        self.beam_azimuth_angles = [float(a) for a in self.beam_azimuth_angles]
        self.pixel_shift_by_row = [int(s) for s in self.pixel_shift_by_row]
        self.columns_per_frame = int(self.columns_per_frame)
        rows = len(self.beam_altitude_angles)
        if rows == 0:
            raise ValueError("beam_altitude_angles is empty")
        for name in ("beam_azimuth_angles", "pixel_shift_by_row"):
            if len(getattr(self, name)) != rows:
                raise ValueError(f"{name} has {len(getattr(self, name))} entries, "
                                 f"beam_altitude_angles has {rows}")
        if np.any(np.diff(self.beam_altitude_angles) >= 0):
            raise ValueError("beam_altitude_angles must decrease strictly (top row first)")
        if self.columns_per_frame <= 0:
            raise ValueError(f"columns_per_frame must be positive, got {self.columns_per_frame}")
        if not self.lidar_mode:
            self.lidar_mode = f"{self.columns_per_frame}x10"
        cols, _ = _parse_mode(self.lidar_mode)
        if cols != self.columns_per_frame:
            raise ValueError(f"lidar_mode {self.lidar_mode} disagrees with columns_per_frame "
                             f"{self.columns_per_frame}")
        if self.column_window is None:
            self.column_window = (0, self.columns_per_frame - 1)
        self.column_window = (int(self.column_window[0]), int(self.column_window[1]))
        self.lidar_to_sensor_transform = _mat4(self.lidar_to_sensor_transform,
                                               "lidar_to_sensor_transform")
        self.imu_to_sensor_transform = _mat4(self.imu_to_sensor_transform,
                                             "imu_to_sensor_transform")
        if self.beam_to_lidar_transform is not None:
            self.beam_to_lidar_transform = _mat4(self.beam_to_lidar_transform,
                                                 "beam_to_lidar_transform")

    @property
    def pixels_per_column(self) -> int:
        return len(self.beam_altitude_angles)

    @property
    def frequency_hz(self) -> int:
        return _parse_mode(self.lidar_mode)[1]

    def beam_to_lidar(self) -> np.ndarray:
        """(4, 4) mm; older metadata only gives lidar_origin_to_beam_origin_mm (x offset)."""
        if self.beam_to_lidar_transform is not None:
            return self.beam_to_lidar_transform.copy()
        out = np.eye(4)
        out[0, 3] = self.lidar_origin_to_beam_origin_mm
        return out

    def T_lidar_imu(self) -> np.ndarray:
        """(4, 4) m: IMU frame -> LiDAR frame = inv(lidar_to_sensor) @ imu_to_sensor."""
        out = np.linalg.inv(self.lidar_to_sensor_transform) @ self.imu_to_sensor_transform
        out[:3, 3] *= 1e-3
        return out

    def T_imu_lidar(self) -> np.ndarray:
        """(4, 4) m: pose of the LiDAR frame in the IMU frame (FAST-LIO extrinsic_R/T)."""
        return np.linalg.inv(self.T_lidar_imu())

    def T_sensor(self, frame: str) -> np.ndarray:
        """(4, 4) m: pose of os_lidar / os_imu / os_sensor in the sensor frame."""
        mats = {"os_sensor": np.eye(4), "os_lidar": self.lidar_to_sensor_transform.copy(),
                "os_imu": self.imu_to_sensor_transform.copy()}
        if frame not in mats:
            raise ValueError(f"frame must be one of {sorted(mats)}, got '{frame}'")
        out = mats[frame]
        out[:3, 3] *= 1e-3
        return out

    def to_dict(self, layout: str = "legacy") -> dict[str, Any]:
        """JSON-ready dict: 'legacy' = flat keys + data_format; 'nested' = FW 2.x sections."""
        fmt = {"pixels_per_column": self.pixels_per_column,
               "columns_per_frame": self.columns_per_frame,
               "columns_per_packet": self.columns_per_packet,
               "pixel_shift_by_row": list(self.pixel_shift_by_row),
               "column_window": list(self.column_window),
               "udp_profile_lidar": self.udp_profile_lidar, "udp_profile_imu": "LEGACY"}
        beams = {"beam_altitude_angles": list(self.beam_altitude_angles),
                 "beam_azimuth_angles": list(self.beam_azimuth_angles),
                 "lidar_origin_to_beam_origin_mm": float(self.lidar_origin_to_beam_origin_mm),
                 "beam_to_lidar_transform": _flat(self.beam_to_lidar())}
        l2s, i2s = _flat(self.lidar_to_sensor_transform), _flat(self.imu_to_sensor_transform)
        if layout == "legacy":
            return {**beams, "data_format": fmt, "lidar_mode": self.lidar_mode,
                    "lidar_to_sensor_transform": l2s, "imu_to_sensor_transform": i2s,
                    "prod_line": self.prod_line, "client_version": "coin_lio.sim"}
        if layout == "nested":
            return {"beam_intrinsics": beams, "lidar_data_format": fmt,
                    "config_params": {"lidar_mode": self.lidar_mode,
                                      "azimuth_window": [0, 360000],
                                      "columns_per_packet": self.columns_per_packet,
                                      "udp_profile_lidar": self.udp_profile_lidar},
                    "lidar_intrinsics": {"lidar_to_sensor_transform": l2s},
                    "imu_intrinsics": {"imu_to_sensor_transform": i2s},
                    "sensor_info": {"prod_line": self.prod_line},
                    "client_version": "coin_lio.sim"}
        raise ValueError(f"layout must be 'legacy' or 'nested', got '{layout}'")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "OusterMetadata":
        """Accepts the flat (legacy) layout and the nested one (beam_intrinsics, lidar_data_format,
        lidar_intrinsics, imu_intrinsics, config_params)."""
        def pick(*paths: str, default: Any = KeyError) -> Any:
            for path in paths:
                node: Any = data
                for key in path.split("/"):
                    if not isinstance(node, Mapping) or key not in node:
                        break
                    node = node[key]
                else:
                    return node
            if default is KeyError:
                raise KeyError(f"metadata lacks {' or '.join(paths)}")
            return default

        fmt_keys = ("data_format", "lidar_data_format")
        fmt = next((data[k] for k in fmt_keys if isinstance(data.get(k), Mapping)), None)
        if fmt is None:
            raise KeyError("metadata lacks data_format / lidar_data_format")
        beam_to_lidar = pick("beam_to_lidar_transform", "beam_intrinsics/beam_to_lidar_transform",
                             default=None)
        return cls(
            beam_altitude_angles=pick("beam_altitude_angles",
                                      "beam_intrinsics/beam_altitude_angles"),
            beam_azimuth_angles=pick("beam_azimuth_angles", "beam_intrinsics/beam_azimuth_angles"),
            pixel_shift_by_row=fmt["pixel_shift_by_row"],
            columns_per_frame=fmt["columns_per_frame"],
            lidar_origin_to_beam_origin_mm=pick(
                "lidar_origin_to_beam_origin_mm", "beam_intrinsics/lidar_origin_to_beam_origin_mm",
                default=0.0),
            lidar_mode=pick("lidar_mode", "config_params/lidar_mode",
                            default=f"{fmt['columns_per_frame']}x10"),
            lidar_to_sensor_transform=pick("lidar_to_sensor_transform",
                                           "lidar_intrinsics/lidar_to_sensor_transform",
                                           default=LIDAR_TO_SENSOR_MM),
            imu_to_sensor_transform=pick("imu_to_sensor_transform",
                                         "imu_intrinsics/imu_to_sensor_transform",
                                         default=IMU_TO_SENSOR_MM),
            beam_to_lidar_transform=beam_to_lidar,
            column_window=fmt.get("column_window"),
            columns_per_packet=fmt.get("columns_per_packet", 16),
            prod_line=pick("prod_line", "sensor_info/prod_line", default=""),
            udp_profile_lidar=fmt.get("udp_profile_lidar", "RNG19_RFL8_SIG16_NIR16"),
        )

    def write(self, path: str | Path, layout: str = "legacy") -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(layout), indent=2) + "\n")
        return path

    @classmethod
    def read(cls, path: str | Path) -> "OusterMetadata":
        return cls.from_dict(json.loads(Path(path).read_text()))


def _parse_mode(mode: str) -> tuple[int, int]:
    try:
        cols, hz = (int(x) for x in str(mode).lower().split("x"))
    except ValueError:
        raise ValueError(f"lidar_mode must look like '1024x10', got '{mode}'") from None
    return cols, hz


def _flat(mat: np.ndarray) -> list[float]:
    return [float(x) for x in np.asarray(mat, dtype=np.float64).reshape(-1)]
