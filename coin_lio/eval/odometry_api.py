"""The one interface every odometry obeys, so one runner runs them all (COIN-LIO, KISS-ICP, rko_lio).

Frames: `sensor` is the LiDAR frame of the point clouds. `world` is the odometry's own fixed frame
(usually its first pose); the runner relates it to ground truth, so no method needs to know GT frames.
Extrinsic convention: T_a_b maps points from frame b into frame a (p_a = T_a_b @ p_b).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, runtime_checkable

import numpy as np


@dataclass
class SensorSetup:
    """What an odometry may need to know about the rig, given by the caller (never guessed)."""

    T_lidar_imu: np.ndarray = field(default_factory=lambda: np.eye(4))  # p_lidar = T @ p_imu
    lidar_metadata: dict | None = None   # Ouster metadata JSON (beam angles, ...), if known
    scan_period_s: float = 0.1
    max_num_threads: int = 0             # 0: the library's default

    def __post_init__(self) -> None:
        T = np.asarray(self.T_lidar_imu, dtype=np.float64)
        if T.shape != (4, 4) or not np.allclose(T[3], [0, 0, 0, 1]) or not np.allclose(
                T[:3, :3] @ T[:3, :3].T, np.eye(3), atol=1e-6):
            raise ValueError(f"T_lidar_imu must be a rigid 4x4 transform, got\n{T}")
        self.T_lidar_imu = T


@runtime_checkable
class Odometry(Protocol):
    """Streaming odometry. Calls come in time order: every IMU sample with t <= a scan's last point
    time is given before that scan."""

    name: str

    def add_imu(self, t_s: float, gyro: np.ndarray, acc: np.ndarray) -> None:
        """One IMU sample in the IMU frame: gyro (3,) rad/s, acc (3,) m/s^2 specific force."""

    def add_scan(self, t_s: float, points: np.ndarray, point_times: np.ndarray) -> np.ndarray | None:
        """One scan. t_s: scan start (header stamp), s. points: (N, 3) float64 in the sensor frame,
        valid points only. point_times: (N,) float64 absolute seconds.
        Returns T_world_sensor (4x4) at time point_times.max() (the scan end), or None if no pose."""


@runtime_checkable
class OrganizedScanOdometry(Odometry, Protocol):
    """Optional richer entry for methods that need the organised cloud (e.g. COIN-LIO's image)."""

    def add_organized_scan(self, t_s: float, cloud: np.ndarray,
                           point_times: np.ndarray) -> np.ndarray | None:
        """cloud: structured (H, W) array as published (invalid points included, fields by name);
        point_times: (H, W) float64 absolute seconds. Same return contract as add_scan."""


# name -> "module:callable"; the callable takes (setup, **options) and returns an Odometry.
# Resolved lazily so that listing methods never imports kiss_icp / rko_lio.
ODOMETRY_FACTORIES: dict[str, str] = {
    "coin_lio": "coin_lio.pipeline:make_odometry",
    "coin_lio_geometric": "coin_lio.pipeline:make_geometric_odometry",
    "kiss_icp": "coin_lio.eval.peers:KissIcpOdometry",
    "rko_lio": "coin_lio.eval.peers:RkoLioOdometry",
}


def register_odometry(name: str, target: str | Callable[..., Odometry]) -> None:
    """Make `name` available to the runner; target is a callable or 'module:callable'."""
    ODOMETRY_FACTORIES[name] = target  # type: ignore[assignment]


def create_odometry(name: str, setup: SensorSetup, **options: Any) -> Odometry:
    """Build a registered odometry; ImportError (with the reason) if its package is missing."""
    try:
        target = ODOMETRY_FACTORIES[name]
    except KeyError:
        raise KeyError(f"unknown odometry '{name}', known: {sorted(ODOMETRY_FACTORIES)}") from None
    if isinstance(target, str):
        module, _, attr = target.partition(":")
        target = getattr(importlib.import_module(module), attr)
    odom = target(setup, **options)
    if not isinstance(odom, Odometry):
        raise TypeError(f"'{name}' does not implement the Odometry protocol")
    return odom
