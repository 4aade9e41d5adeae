"""Adapters of the peer odometries to coin_lio.eval.odometry_api.Odometry.

KISS-ICP 1.3 (LiDAR only) and rko_lio 0.4 (LiDAR + IMU), both C++ cores behind pybind. Their
packages are imported only when an adapter is built. Both return T_world_lidar at the scan end.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from coin_lio.eval.odometry_api import SensorSetup


def _set_dotted(obj: Any, key: str, value: Any) -> None:
    *parents, leaf = key.split(".")
    for p in parents:
        obj = getattr(obj, p)
    if not hasattr(obj, leaf):
        raise KeyError(f"unknown option '{key}'")
    setattr(obj, leaf, value)


class KissIcpOdometry:
    """KISS-ICP: `KissICP(config).register_frame(points, timestamps)`, pose in `.last_pose`.

    Deskew: kiss-icp 1.x normalises the per-point stamps itself ((t - min) / (max - min)) and
    deskews every point to the LAST stamp with the previous scan-to-scan motion, so `.last_pose`
    is T_world_lidar at point_times.max(). Stamps are passed relative to the scan's first point (no
    precision loss); a scan whose points all share one time goes without stamps (deskew off), as
    equal stamps would divide by zero. IMU samples are ignored. World = the first scan's LiDAR frame.
    Options: dotted KISSConfig fields, e.g. {"mapping.voxel_size": 0.5, "data.max_range": 50.0};
    voxel_size defaults to data.max_range / 100 like kiss-icp's own config loader.
    """

    name = "kiss_icp"

    def __init__(self, setup: SensorSetup, **options: Any) -> None:
        from kiss_icp.config import KISSConfig
        from kiss_icp.kiss_icp import KissICP

        config = KISSConfig()
        config.registration.max_num_threads = int(setup.max_num_threads)
        for key, value in options.items():
            _set_dotted(config, key, value)
        if config.mapping.voxel_size is None:
            config.mapping.voxel_size = float(config.data.max_range / 100.0)
        self.config = config
        self._odom = KissICP(config)

    def add_imu(self, t_s: float, gyro: np.ndarray, acc: np.ndarray) -> None:
        return None

    def add_scan(self, t_s: float, points: np.ndarray, point_times: np.ndarray) -> np.ndarray | None:
        if len(points) == 0:
            return None
        rel = np.asarray(point_times, np.float64) - float(np.min(point_times))
        stamps = rel if self.config.data.deskew and rel.max() > 0.0 else np.zeros(0)
        self._odom.register_frame(np.ascontiguousarray(points, dtype=np.float64), stamps)
        return np.array(self._odom.last_pose, dtype=np.float64)


class RkoLioOdometry:
    """rko_lio: `LIO(LIOConfig(...))`, `add_imu_measurement(acc, gyro, t_ns, extrinsic_imu2base)`,
    `register_scan(points, t_ns (N,) int64, extrinsic_lidar2base, start_ns, end_ns)`, `pose()`.

    Units: absolute int64 nanoseconds everywhere (converted from our float seconds by rounding);
    acc in m/s^2, gyro in rad/s. rko_lio estimates the pose of a "base" frame given by the two
    extrinsics (extrinsic_x2base maps points from x into base). base="imu" (default): IMU samples
    need no transport, points are moved into the IMU frame with T_imu_lidar = inv(setup.T_lidar_imu);
    the returned pose is pose() @ T_imu_lidar. base="lidar": the IMU is transported to the LiDAR
    (rko_lio differentiates gyro for the lever arm) and pose() is already T_world_lidar.
    Deskew: rko_lio integrates the IMU over [previous scan end, end_ns] and deskews to end_ns =
    point_times.max(). Its first scan only fixes the world frame (= base at that scan) and it
    drops IMU samples before it. Options: LIOConfig fields (voxel_size, max_range, deskew,
    initialization_phase, ...) plus base.
    """

    name = "rko_lio"

    def __init__(self, setup: SensorSetup, base: str = "imu", **options: Any) -> None:
        from rko_lio.config import LIOConfig
        from rko_lio.lio import LIO
        from rko_lio.rko_lio_pybind import InputError

        if base not in ("imu", "lidar"):
            raise ValueError(f"base must be 'imu' or 'lidar', got '{base}'")
        config = LIOConfig(**options)
        if setup.max_num_threads:
            config.max_num_threads = int(setup.max_num_threads)
        self.config = config
        self._lio = LIO(config)
        self._input_error = InputError
        T_lidar_imu = setup.T_lidar_imu
        if base == "imu":
            self._imu2base, self._lidar2base = None, np.linalg.inv(T_lidar_imu)
        else:
            self._imu2base, self._lidar2base = T_lidar_imu.copy(), None
        self._T_base_lidar = np.eye(4) if self._lidar2base is None else self._lidar2base

    def add_imu(self, t_s: float, gyro: np.ndarray, acc: np.ndarray) -> None:
        self._lio.add_imu_measurement(np.asarray(acc, np.float64), np.asarray(gyro, np.float64),
                                      int(round(t_s * 1e9)), extrinsic_imu2base=self._imu2base)

    def add_scan(self, t_s: float, points: np.ndarray, point_times: np.ndarray) -> np.ndarray | None:
        if len(points) == 0:
            return None
        t_ns = np.round(np.asarray(point_times, np.float64) * 1e9).astype(np.int64)
        end_ns = int(t_ns.max())
        start_ns = min(int(round(t_s * 1e9)), int(t_ns.min()))
        try:
            self._lio.register_scan(np.ascontiguousarray(points, dtype=np.float64), t_ns,
                                    extrinsic_lidar2base=self._lidar2base,
                                    start_time_ns=start_ns, end_time_ns=end_ns)
        except self._input_error:  # rko_lio rejects the scan (e.g. too few points): no pose
            return None
        return np.asarray(self._lio.pose(), dtype=np.float64) @ self._T_base_lidar
