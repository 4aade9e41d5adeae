"""Peer adapters (KISS-ICP, rko_lio) on a tiny synthetic LiDAR + IMU run: poses finite, roughly right."""
from __future__ import annotations

import numpy as np
import pytest

from coin_lio.eval.odometry_api import Odometry, SensorSetup, create_odometry
from coin_lio.eval.synthetic import SyntheticRig

CASES = [("kiss_icp", {"mapping.voxel_size": 0.5}),
         ("rko_lio", {"voxel_size": 0.5}),                   # base frame = IMU (default)
         ("rko_lio", {"voxel_size": 0.5, "base": "lidar"})]  # IMU transported to the LiDAR


def _feed(odom, rig: SyntheticRig, n_scans: int):
    """Feed IMU (100 Hz) and scans (10 Hz) in time order; returns [(t_end, pose or None)]."""
    rng = np.random.default_rng(0)
    out, k_imu, period = [], 0, 1.0 / rig.lidar_hz
    for k in range(n_scans):
        t_start = rig.t0 + k * period
        xyz, t_rel = rig.scan(t_start, rng)
        times = np.broadcast_to(t_start + t_rel * 1e-9, xyz.shape[:2])
        valid = np.any(xyz != 0, axis=-1)
        points, point_times = xyz[valid].astype(np.float64), times[valid]
        while rig.t0 + k_imu / rig.imu_hz <= point_times.max():
            t = rig.t0 + k_imu / rig.imu_hz
            gyro, acc = rig.imu_sample(t)
            odom.add_imu(t, gyro, acc)
            k_imu += 1
        out.append((point_times.max(), odom.add_scan(t_start, points, point_times)))
    return out


@pytest.mark.parametrize("peer, options", CASES, ids=["kiss_icp", "rko_lio", "rko_lio-base-lidar"])
def test_peer_adapter_tracks_synthetic_run(peer, options):
    pytest.importorskip(peer, reason=f"{peer} is not installed")
    rig = SyntheticRig()
    odom = create_odometry(peer, SensorSetup(T_lidar_imu=np.linalg.inv(rig.T_imu_lidar)), **options)
    assert isinstance(odom, Odometry) and odom.name == peer
    results = _feed(odom, rig, 26)                       # 2.6 s: static 0.5 s, then ~1.6 m
    assert all(p is not None and p.shape == (4, 4) and np.all(np.isfinite(p)) for _, p in results)
    # Relative motion first -> last scan, in the first scan's LiDAR frame, against ground truth.
    (t_a, P_a), (t_b, P_b) = results[0], results[-1]
    est_rel = np.linalg.inv(P_a) @ P_b
    gt_rel = np.linalg.inv(rig.lidar_pose(t_a)[0]) @ rig.lidar_pose(t_b)[0]
    travelled = np.linalg.norm(gt_rel[:3, 3])
    assert travelled > 1.2
    assert np.linalg.norm(est_rel[:3, 3] - gt_rel[:3, 3]) < 0.15 * travelled
    yaw_err = np.arccos(np.clip((np.trace(est_rel[:3, :3].T @ gt_rel[:3, :3]) - 1) / 2, -1, 1))
    assert np.rad2deg(yaw_err) < 3.0


def test_create_odometry_rejects_unknown_and_bad_extrinsic():
    with pytest.raises(KeyError, match="unknown odometry"):
        create_odometry("nope", SensorSetup())
    with pytest.raises(ValueError, match="rigid"):
        SensorSetup(T_lidar_imu=np.diag([1.0, 1.0, 2.0, 1.0]))
