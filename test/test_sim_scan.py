"""One sweep: column timing, motion distortion, returns and dropouts, Velodyne layout, speed."""
from __future__ import annotations

import time

import numpy as np
import pytest

from suite_tools.pointcloud2 import OUSTER_ORIGINAL_DTYPE
from coin_lio.sim import (LidarNoiseConfig, LidarSimulator, LinearTrajectory, OusterConfig,
                          VelodyneConfig, destagger, make_scene)
from coin_lio.sim.lidar_model import VELODYNE_DTYPE
from coin_lio.sim.primitives import Plane
from coin_lio.sim.scene import Scene
from coin_lio.sim.textures import Constant
from coin_lio.sim.trajectory import Path, SplineTrajectory, TrajectoryConfig


def box_room() -> Scene:
    walls = [Plane(point=(8, 0, 0), normal=(-1, 0, 0)), Plane(point=(-8, 0, 0), normal=(1, 0, 0)),
             Plane(point=(0, 6, 0), normal=(0, -1, 0)), Plane(point=(0, -6, 0), normal=(0, 1, 0)),
             Plane(point=(0, 0, -1.5), normal=(0, 0, 1)),
             Plane(point=(0, 0, 3), normal=(0, 0, -1))]
    return Scene("box", walls)


def world_points(sim: LidarSimulator, traj, cloud, t_start: float, per_column: bool) -> np.ndarray:
    """Cloud (os_lidar) -> world with the pose at each point's time, or at the scan start."""
    t = t_start + cloud["t"].reshape(-1) * 1e-9 if per_column else np.full(cloud.size, t_start)
    r_wb, p_wb = traj.pose(t)
    r_wl = r_wb @ sim.T_body_lidar[:3, :3]
    p_wl = np.einsum("nij,j->ni", r_wb, sim.T_body_lidar[:3, 3]) + p_wb
    pts = np.stack([cloud["x"], cloud["y"], cloud["z"]], -1).reshape(-1, 3).astype(np.float64)
    return np.einsum("nij,nj->ni", r_wl, pts) + p_wl


def test_column_timestamps_span_the_sweep():
    for destaggered in (False, True):
        cfg = OusterConfig(rows=32, cols=1024, destaggered=destaggered)
        sim = LidarSimulator(cfg, LidarNoiseConfig.noiseless())
        cloud = sim.scan(box_room(), LinearTrajectory(), 0.0, rng=0)
        expected = (np.arange(1024, dtype=np.int64) * 100_000_000) // 1024
        raw_t = destagger(cloud["t"], sim.meta.pixel_shift_by_row, inverse=True) if destaggered \
            else cloud["t"]
        assert np.array_equal(raw_t, np.broadcast_to(expected, (32, 1024)))
        assert raw_t.max() < 100_000_000
        assert cloud.dtype == OUSTER_ORIGINAL_DTYPE
        assert np.array_equal(cloud["ring"], np.broadcast_to(np.arange(32)[:, None], (32, 1024)))


def test_motion_distortion_uses_the_pose_at_each_column_time():
    """Moving at 5 m/s and turning at 90 deg/s: per-column poses put every point back on the
    walls; the scan-start pose alone smears them by decimetres."""
    traj = LinearTrajectory(p0=(-2.0, 0.0, 0.0), velocity=(5.0, 1.0, 0.0), yaw_deg=10.0,
                            yaw_rate_deg=90.0)
    sim = LidarSimulator(OusterConfig(rows=32, cols=1024), LidarNoiseConfig.noiseless())
    cloud = sim.scan(box_room(), traj, 0.3, rng=0)
    valid = cloud["range"].reshape(-1) > 0

    def off_wall(p):
        return np.min(np.abs(np.stack([np.abs(p[:, 0]) - 8, np.abs(p[:, 1]) - 6, p[:, 2] + 1.5,
                                       p[:, 2] - 3], 1)), axis=1)

    good = off_wall(world_points(sim, traj, cloud, 0.3, True)[valid])
    bad = off_wall(world_points(sim, traj, cloud, 0.3, False)[valid])
    assert good.max() < 2e-3                 # mm range quantisation, float32 storage
    assert np.percentile(bad, 90) > 0.1


def test_returns_dropouts_and_invalid_points():
    scene = Scene("dark", [Plane(point=(0, 0, -1.5), normal=(0, 0, 1), texture=Constant(0.3))])
    noise = LidarNoiseConfig(range_sigma=0.02, dropout_prob=0.1)
    sim = LidarSimulator(OusterConfig(rows=64, cols=512, max_range=40.0), noise)
    cloud = sim.scan(scene, LinearTrajectory(), 0.0, rng=3)
    rng_m = cloud["range"] * 1e-3
    valid = cloud["range"] > 0
    assert np.all(cloud["x"][~valid] == 0) and np.all(cloud["intensity"][~valid] == 0)
    assert np.all(rng_m[valid] <= 40.0) and np.all(rng_m[valid] >= 0.3)
    up = np.asarray(sim.meta.beam_altitude_angles) > 0
    assert not valid[up].any()                          # sky: no return
    floor = valid[~up]
    near_rows = ~up & (np.asarray(sim.meta.beam_altitude_angles) < -20)
    assert 0.85 < valid[near_rows].mean() < 0.95        # 10 % random dropouts
    assert floor.mean() < valid[near_rows].mean()       # grazing / weak far returns drop too
    far = valid & (rng_m > 10)
    near = valid & (rng_m < 3)
    assert np.median(cloud["intensity"][near]) > 5 * np.median(cloud["intensity"][far])
    noiseless = LidarSimulator(OusterConfig(rows=64, cols=512, max_range=40.0),
                               LidarNoiseConfig.noiseless()).scan(scene, LinearTrajectory(), 0.0)
    both = valid & (noiseless["range"] > 0)
    err = (cloud["range"][both].astype(float) - noiseless["range"][both]) * 1e-3
    assert np.std(err) == pytest.approx(0.02, rel=0.1)
    assert np.all(cloud["reflectivity"][valid] > 20) and np.all(cloud["reflectivity"][valid] < 40)


def test_velodyne_layout_and_timing():
    cfg = VelodyneConfig(rings=16, cols=900)
    sim = LidarSimulator(cfg, LidarNoiseConfig.noiseless())
    cloud = sim.scan(box_room(), LinearTrajectory(), 0.0, rng=0)
    assert cloud.dtype == VELODYNE_DTYPE and cloud.dtype.itemsize == 22 and cloud.ndim == 1
    assert len(cloud) == 16 * 900                               # closed room, all return
    assert np.all(np.diff(cloud["time"]) >= -1e-9) and cloud["time"].max() < 0.1
    for ring in (0, 15):
        pts = cloud[cloud["ring"] == ring]
        elev = np.degrees(np.arctan2(pts["z"], np.hypot(pts["x"], pts["y"])))
        assert np.allclose(elev, -15.0 if ring == 0 else 15.0, atol=1e-3)
    first = cloud[:16]
    assert np.allclose(np.arctan2(first["y"], first["x"]), 0.0, atol=1e-6)   # starts along +x
    second = cloud[16:32]
    assert np.all(np.arctan2(second["y"], second["x"]) < 0)                  # clockwise


def test_configs_reject_bad_values():
    with pytest.raises(ValueError, match="rows"):
        OusterConfig(rows=100)
    with pytest.raises(ValueError, match="2048x20"):
        OusterConfig(cols=2048, frequency_hz=20)
    with pytest.raises(ValueError, match="cloud_frame"):
        OusterConfig(cloud_frame="os_imu")
    with pytest.raises(ValueError, match="rings"):
        VelodyneConfig(rings=8)
    with pytest.raises(ValueError, match="dropout_prob"):
        LidarNoiseConfig(dropout_prob=1.5)


def test_scan_speed_128x1024():
    spec = make_scene("urban", 0)
    traj = SplineTrajectory(Path(spec.waypoints, spec.closed), TrajectoryConfig(profile="dynamic"),
                            60.0, seed=0)
    sim = LidarSimulator(OusterConfig(rows=128, cols=1024))
    sim.scan(spec.scene, traj, 10.0, rng=0)
    times = []
    for k in range(3):
        tic = time.perf_counter()
        sim.scan(spec.scene, traj, 10.1 + 0.1 * k, rng=k)
        times.append(time.perf_counter() - tic)
    print(f"128x1024 urban scan: {1e3 * np.median(times):.0f} ms")
    assert np.median(times) < 1.0
