"""Ouster beam geometry of a real sensor from its metadata: ouster-sdk's xyz look-up table,
the beam origins, and COIN-LIO's image projection and column shift. Used by the real-data readers
(coin_lio.io) and by the simulator (coin_lio.sim), which renders the same geometry.

Geometry (ouster-sdk make_xyz_lut): for raw (measurement) column v and row u, encoder angle
e = 2 pi - 2 pi v / W, beam azimuth a = -beam_azimuth_angles[u], altitude alt = beam_altitude_angles[u];
    direction d = (cos(e + a) cos(alt), sin(e + a) cos(alt), sin(alt))
    point = range * d + n (cos e, sin e, 0) - n d,  n = lidar_origin_to_beam_origin.
Sensor-frame points are lidar_to_sensor_transform applied to that.
"""
from __future__ import annotations

import numpy as np

from coin_lio.io.ouster_metadata import OusterMetadata

CLOUD_FRAMES = ("os_lidar", "os_sensor")


def ouster_xyz_lut(meta: OusterMetadata, frame: str = "os_lidar") -> tuple[np.ndarray, np.ndarray]:
    """(direction (H, W, 3), offset (H, W, 3) in m): point = range_m * direction + offset.

    Same numbers as ouster-sdk make_xyz_lut (raw column order); frame 'os_sensor' applies
    lidar_to_sensor_transform, 'os_lidar' leaves the LiDAR frame.
    """
    w = meta.columns_per_frame
    enc = 2.0 * np.pi - np.arange(w) * (2.0 * np.pi / w)                 # (W,)
    az = -np.radians(meta.beam_azimuth_angles)[:, None]                   # (H, 1)
    alt = np.radians(meta.beam_altitude_angles)[:, None]                  # (H, 1)
    direction = np.stack(np.broadcast_arrays(np.cos(enc + az) * np.cos(alt),
                                             np.sin(enc + az) * np.cos(alt),
                                             np.sin(alt) + 0.0 * enc), axis=-1)  # (H, W, 3)
    btl = meta.beam_to_lidar()
    n, z0 = btl[0, 3], btl[2, 3]
    dist = n if z0 == 0 else float(np.hypot(n, z0))
    origin = np.stack([np.cos(enc) * n, np.sin(enc) * n, np.full(w, z0)], axis=-1)  # (W, 3)
    offset = origin[None, :, :] - direction * dist                       # (H, W, 3) mm
    if frame == "os_sensor":
        rot, trans = meta.lidar_to_sensor_transform[:3, :3], meta.lidar_to_sensor_transform[:3, 3]
        direction = direction @ rot.T
        offset = offset @ rot.T + trans
    elif frame != "os_lidar":
        raise ValueError(f"frame must be one of {CLOUD_FRAMES}, got '{frame}'")
    return direction, offset * 1e-3


def beam_origins_m(meta: OusterMetadata) -> tuple[np.ndarray, float]:
    """((W, 3) beam origin per raw column in the LiDAR frame in m, range offset in m)."""
    w = meta.columns_per_frame
    enc = 2.0 * np.pi - np.arange(w) * (2.0 * np.pi / w)
    btl = meta.beam_to_lidar()
    n, z0 = btl[0, 3], btl[2, 3]
    dist = n if z0 == 0 else float(np.hypot(n, z0))
    origin = np.stack([np.cos(enc) * n, np.sin(enc) * n, np.full(w, z0)], axis=-1) * 1e-3
    return origin, dist * 1e-3


def coin_lio_project(points: np.ndarray, meta: OusterMetadata) -> tuple[np.ndarray, np.ndarray]:
    """COIN-LIO's projection of (N, 3) points -> (u, v) continuous pixel coordinates
    (coin_lio.photometric.projection.ImageModel.project; u wrapped into [0, W)).

    Points in the LiDAR frame land on destaggered column (u + W/2 + pixel_shift_offset) % W, in
    sensor axes on (u + offset) % W; that column offset is COIN-LIO's u_shift.
    """
    from coin_lio.photometric.projection import ImageModel

    uv, _ = ImageModel.from_metadata(meta).project(points)
    return uv[:, 0], uv[:, 1]


def coin_lio_u_shift(meta: OusterMetadata, cloud_frame: str, pixel_shift_offset: int = 0) -> int:
    """COIN-LIO image/u_shift for clouds in `cloud_frame` (projection applied in that frame)."""
    cols = meta.columns_per_frame
    half = cols // 2 if cloud_frame == "os_lidar" else 0
    return int((half + pixel_shift_offset) % cols)
