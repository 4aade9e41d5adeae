"""The first map from the scans of the IMU initialisation (coin_lio.core.map_seed): what stood
still for confirm_s enters at once, a car driving past does not; without old enough scans, or at
a start in motion, the first scan is the map at once as before."""
from __future__ import annotations

import numpy as np
import pytest

from coin_lio.config import LioConfig, MapConfig
from coin_lio.core.local_map import LocalMap, voxel_keys
from coin_lio.core.map_seed import MAX_HELD, InitScans
from lio_fixtures import feed_rest_imu


def _scene(rng, t: float, car: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(static (N, 3), car (M, 3)) LiDAR points, sensor 1.5 m above ground: the ground, a wall
    8 m to the left, and a 4.4 m car side 2.5 m to the right driving along it (-y) at 6 m/s (above
    the ground's voxels: its lowest points share them with the ground)."""
    r, a = np.sqrt(rng.uniform(4, 900, 3000)), rng.uniform(-np.pi, np.pi, 3000)
    ground = np.c_[r * np.cos(a), r * np.sin(a), np.full(3000, -1.5)]
    wall = np.c_[np.full(600, -8.0), rng.uniform(-10, 10, 600), rng.uniform(-1.5, 1.0, 600)]
    side = np.c_[np.full(500, 2.5), rng.uniform(-2.2, 2.2, 500) + 6.0 - 6.0 * t, rng.uniform(-0.9, 0.0, 500)]
    return np.vstack([ground, wall]), (side if car else np.zeros((0, 3)))


def _identity(p: np.ndarray) -> np.ndarray:
    return p


def test_the_first_map_keeps_what_stood_still_and_leaves_a_passing_car_out():
    rng = np.random.default_rng(0)
    m, held = LocalMap(MapConfig(voxel_size=0.5, confirm_s=1.0)), InitScans(1.0)
    for k in range(10):                                        # 1 s of initialisation at rest
        static, car = _scene(rng, 0.1 * k)
        held.add(np.vstack([static, car]), 0.1 * k)
    static, car = _scene(rng, 1.0)
    now, waiting = held.seed(m, _identity, np.vstack([static, car]), 1.0)
    in_map = set(voxel_keys(m.points, 0.5).tolist())
    assert not in_map & set(voxel_keys(car, 0.5).tolist()), "no voxel of the car entered"
    static_voxels = set(voxel_keys(static, 0.5).tolist())
    assert len(in_map & static_voxels) >= 0.85 * len(static_voxels - set(voxel_keys(car, 0.5).tolist()))
    assert now == len(m) and waiting >= len(set(voxel_keys(car, 0.5).tolist())) and len(held) == 0
    # the car's voxels wait like any new voxel: seen again 1 s later they would enter; it has gone
    assert not m.has_point_near(car).any() and m.has_point_near(static).mean() > 0.85


@pytest.mark.parametrize("case", ["none held", "too recent", "moving start", "no confirmation"])
def test_otherwise_the_first_scan_is_the_map_at_once(case):
    rng = np.random.default_rng(1)
    m = LocalMap(MapConfig(voxel_size=0.5, confirm_s=0.0 if case == "no confirmation" else 1.0))
    held = InitScans(1.0)
    static, car = _scene(rng, 1.0)
    first = np.vstack([static, car])
    if case == "too recent":                                   # 0.5 s of scans: none is confirm_s old
        held.add(_scene(rng, 0.5)[0], 0.5)
    elif case == "moving start":     # the wall only, held 3 m away: a start in motion (on open
        first = np.vstack([static[static[:, 2] > -1.4], car])     # ground the ground would match)
        held.add(static[static[:, 2] > -1.4] + [3.0, 0.0, 0.0], 0.0)
    elif case == "no confirmation":
        held.add(_scene(rng, 0.0)[0], 0.0)
    now, waiting = held.seed(m, _identity, first, 1.0)
    assert waiting == 0 and now == len(m) == len(set(voxel_keys(first, 0.5).tolist()))


def test_only_the_scans_seeding_can_use_are_held():
    held = InitScans(1.0)
    pts = np.zeros((5, 3))
    for k in range(40):
        held.add(pts, 0.1 * k)
    ts = [t for t, _ in held.scans]
    assert len(held) == 11 and ts[-1] - ts[0] == pytest.approx(1.0) and ts[-1] - ts[1] < 1.0
    for k in range(200):                                       # stamps going back: still bounded
        held.add(pts, 3.0 - 0.01 * k)
    assert len(held) == MAX_HELD


@pytest.mark.parametrize("confirm_s", [1.0, 0.0])
def test_the_pipeline_seeds_its_map_from_the_scans_of_the_imu_initialisation(confirm_s):
    from coin_lio.pipeline import LioPipeline

    cfg = LioConfig()
    cfg.photometric.enabled = False
    cfg.map.confirm_s = confirm_s
    p = LioPipeline(cfg)
    rng = np.random.default_rng(2)
    k, first = 0, None
    for s in range(14):                                        # the car passes while the IMU initialises
        t = 0.1 * (s + 1)
        k = feed_rest_imu(p, rng, k, t)
        static, car = _scene(rng, t)
        res = p.process_scan(np.vstack([static, car]), np.full(len(static) + len(car), t))
        if res.status == "mapped":
            first = (res.T_world_lidar, car)
            break
    assert first is not None
    T, car = first
    car_world = car @ T[:3, :3].T + T[:3, 3]
    assert np.all(np.isfinite(T)) and len(p.map) > 300
    said = [m for kind, m in p.events if kind == "first_map"]
    if confirm_s > 0:
        assert not p.map.has_point_near(car_world).any(), "the car entered the first map"
        assert len(said) == 1 and "wait for static confirmation" in said[0]
    else:                                                      # FAST-LIO2's first map: the car in it
        assert p.map.has_point_near(car_world).mean() > 0.9 and not said
