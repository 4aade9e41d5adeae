"""Unit tests of the geometric LIO core: IMU propagation, deskewing, plane fitting, the
iterated update, the local map, weak-direction detection, configuration."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from coin_lio.config import ExtrinsicConfig, GeometryConfig, ImuConfig, LioConfig, MapConfig, UpdateConfig
from coin_lio.core import so3
from coin_lio.core.degeneracy import analyse
from coin_lio.core.deskew import deskew, lidar_motion
from coin_lio.core.iekf import Measurements, iterated_update
from coin_lio.core.imu_propagation import ImuSample, ImuTrack, propagate
from coin_lio.core.local_map import LocalMap, voxel_downsample
from coin_lio.core.plane_kernel import _smallest_eigenvector
from coin_lio.core.plane_residuals import fit_planes
from coin_lio.core.state import DIM, NavState
from suite_tools.param_files import node_section

G = 9.81


def _room(rng, n=6000, half=(12.0, 8.0), height=4.0):
    """Points on the floor, ceiling and four walls of a box room (world frame)."""
    pts = []
    for _ in range(n // 6):
        x, y = rng.uniform(-half[0], half[0]), rng.uniform(-half[1], half[1])
        z = rng.uniform(0, height)
        pts += [[x, y, 0.0], [x, y, height], [half[0], y, z], [-half[0], y, z], [x, half[1], z], [x, -half[1], z]]
    return np.asarray(pts)


def test_so3_exp_log_round_trip():
    w = np.array([[0.3, -0.2, 0.1], [1e-12, 0, 0], [0, 0, 3.0]])
    R = so3.exp(w)
    for wi, Ri in zip(w, R):
        np.testing.assert_allclose(Ri, Rotation.from_rotvec(wi).as_matrix(), atol=1e-12)
        np.testing.assert_allclose(so3.log(Ri), wi, atol=1e-9)


def test_propagation_matches_constant_turn_and_acceleration():
    """Constant body rate and body acceleration: compare with a fine numerical integration."""
    omega, a_body = np.array([0.0, 0.0, 0.5]), np.array([1.0, 0.0, 0.0])
    x0 = NavState()
    dt, T = 0.005, 1.0
    samples = []
    for k in range(int(T / dt) + 1):
        samples.append(ImuSample(k * dt, omega, a_body - np.array([0, 0, 0]) + np.array([0, 0, 0])))
    # specific force = a_body - R^T g; R^T g = (0, 0, -G) as the rotation is about z
    samples = [ImuSample(s.t, s.gyro, a_body + np.array([0, 0, G])) for s in samples]
    x, P, track = propagate(x0, np.eye(DIM) * 1e-6, samples, 0.0, T, ImuConfig(), 1.0)
    # closed form: heading psi = w t; v' = R(psi) a  -> v = (sin(wt), 1 - cos(wt)) / w
    w = omega[2]
    v_true = np.array([np.sin(w * T), 1 - np.cos(w * T), 0.0]) / w
    p_true = np.array([(1 - np.cos(w * T)) / w**2, (T - np.sin(w * T) / w) / w, 0.0])
    np.testing.assert_allclose(x.vel, v_true, atol=2e-3)
    np.testing.assert_allclose(x.pos, p_true, atol=2e-3)
    np.testing.assert_allclose(so3.log(x.rot), [0, 0, w * T], atol=1e-9)
    assert np.allclose(P, P.T) and np.all(np.linalg.eigvalsh(P) > 0)
    assert P[0, 0] > 1e-6  # position uncertainty grew
    R_mid, _ = track.poses_at(np.array([0.5]))
    np.testing.assert_allclose(so3.log(R_mid[0]), [0, 0, 0.25], atol=1e-9)


def test_deskew_moves_points_to_scan_end_frame():
    rng = np.random.default_rng(0)
    world = rng.uniform(-10, 10, (500, 3))
    times = np.sort(rng.uniform(0, 0.1, 500))
    v, w = np.array([2.0, 0.5, 0.0]), np.array([0.0, 0.1, 0.8])
    # exact constant-twist motion of the IMU; the LiDAR sits at an extrinsic offset
    track = ImuTrack(np.array([0.0]), np.eye(3)[None], np.zeros((1, 3)), v[None], np.zeros((1, 3)), w[None])
    end = NavState(rot=so3.exp(w * 0.1), pos=v * 0.1, vel=v)
    end.rot_il, end.pos_il = so3.exp(np.array([0, 0, np.pi])), np.array([0.1, -0.05, 0.2])
    R_wi, p_wi = track.poses_at(times)
    R_wl = R_wi @ end.rot_il
    p_wl = p_wi + R_wi @ end.pos_il
    raw = np.einsum("nji,nj->ni", R_wl, world - p_wl)          # each point seen at its own time
    out = deskew(raw, times, track, end)
    T_end = end.lidar_pose()
    expected = (world - T_end[:3, 3]) @ T_end[:3, :3]
    np.testing.assert_allclose(out.points, expected, atol=1e-9)
    np.testing.assert_allclose(out.redistort(out.points, out.index), raw, atol=1e-9)
    # the transforms made already at a superset of the times (the image's columns): the same
    # points bit for bit; a set that lacks a point's time is not used
    grid = np.union1d(times, np.linspace(0, 0.1, 37))
    motion = (grid, *lidar_motion(grid, track, end))
    np.testing.assert_array_equal(deskew(raw, times, track, end, motion).points, out.points)
    partial = (grid[::2], *lidar_motion(grid[::2], track, end))
    np.testing.assert_array_equal(deskew(raw, times, track, end, partial).points, out.points)


def test_indexed_transform_is_numpys_gather_and_einsum_bit_for_bit():
    """transform_indexed (deskew's compiled pass) = R[index] p + t[index] as numpy computes it,
    on sizes around numpy's unrolling (1 .. 4001 points)."""
    from coin_lio.core.motion_kernel import transform_indexed

    rng = np.random.default_rng(3)
    R = np.stack([so3.exp(v) for v in rng.normal(0, 1, (64, 3))])
    t = rng.normal(0, 5, (64, 3))
    for n in (1, 2, 3, 5, 8, 17, 1100, 4001):
        idx = rng.integers(0, 64, n)
        p = rng.normal(0, 30, (n, 3))
        want = np.einsum("nij,nj->ni", R[idx], p) + t[idx]
        np.testing.assert_array_equal(transform_indexed(R, t, idx, p), want)


def test_time_positions_are_numpys_searchsorted():
    """time_positions (deskew's lookup of each point's time) = min(searchsorted(times, q), U - 1)
    and array_equal(times[index], q), on uniform, random and sparse increasing times; NaN is
    never equal."""
    from coin_lio.core.motion_kernel import time_positions

    rng = np.random.default_rng(5)
    for trial in range(300):
        u = int(rng.integers(1, 200))
        times = [100.0 + np.arange(u) * 1e-4, np.sort(rng.uniform(0, 1, u)),
                 np.unique(np.cumsum(rng.exponential(1.0, u)))][trial % 3]
        q = np.concatenate([rng.choice(times, 40), rng.uniform(times[0] - 1, times[-1] + 1, 20), times[[0, -1]]])
        for queries in (q, rng.choice(times, 30)):
            index, equal, finite = time_positions(times, queries)
            want = np.minimum(np.searchsorted(times, queries), len(times) - 1)
            np.testing.assert_array_equal(index, want)
            assert equal == np.array_equal(times[want], queries) and finite
    index, equal, finite = time_positions(np.arange(4.0), np.array([1.0, np.nan]))
    assert not equal and not finite and index[0] == 1
    # one outlier among absolute stamps: the guess is far off for every query, bisection finds it
    times = np.concatenate([[0.0], 1.7e9 + np.arange(5000) * 1e-4])
    queries = rng.choice(times, 3000)
    index, equal, _ = time_positions(times, queries)
    np.testing.assert_array_equal(index, np.minimum(np.searchsorted(times, queries), len(times) - 1))
    assert equal


def test_plane_fit_gives_normal_distance_and_rejects_non_planar():
    rng = np.random.default_rng(1)
    m = LocalMap(MapConfig(voxel_size=0.1))
    floor = np.c_[rng.uniform(-5, 5, (4000, 2)), np.zeros(4000)]
    m.insert(floor)
    q = np.array([[1.0, 1.0, 0.05], [-2.0, 0.5, -0.03]])
    planes = fit_planes(q, q + [0, 0, 5.0], m, GeometryConfig())
    assert len(planes) == 2
    np.testing.assert_allclose(np.abs(planes.normal[:, 2]), 1.0, atol=1e-6)
    np.testing.assert_allclose(np.einsum("ij,ij->i", q, planes.normal) + planes.d,
                               [0.05, -0.03] * np.sign(planes.normal[:, 2]), atol=1e-6)
    # a corner: the nearest points lie on three faces, so no plane fits them within 0.1 m
    g = np.arange(0, 2.0, 0.4)
    a, b = [u.ravel() for u in np.meshgrid(g, g)]
    corner = np.unique(np.vstack([np.c_[a, b, 0 * a], np.c_[a, 0 * a, b], np.c_[0 * a, a, b]]), axis=0)
    cm = LocalMap(MapConfig(voxel_size=0.1))
    cm.insert(corner)
    assert len(fit_planes(np.full((1, 3), 0.05), np.ones((1, 3)) * 5, cm, GeometryConfig())) == 0


def test_smallest_eigenvector_matches_eigh():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(200, 6, 3)) * [2.0, 1.0, 0.05]
    X = np.einsum("mij,mkj->mki", Rotation.random(200, random_state=3).as_matrix(), X)
    D = X - X.mean(axis=1, keepdims=True)
    C = np.einsum("mki,mkj->mij", D, D)
    v = np.empty((len(C), 3))
    for m, c in enumerate(C):
        _smallest_eigenvector(c[0, 0], c[1, 1], c[2, 2], c[0, 1], c[0, 2], c[1, 2], v[m])
    w = np.linalg.eigh(C)[1][:, :, 0]
    np.testing.assert_allclose(np.abs(np.einsum("ij,ij->i", v, w)), 1.0, atol=1e-9)


@pytest.mark.parametrize("offset", [np.r_[0.15, -0.1, 0.05, 0.02, -0.01, 0.03],
                                    np.r_[-0.3, 0.2, 0.0, 0.0, 0.0, -0.05]])
def test_iterated_update_recovers_known_transform(offset):
    """A scan of the room taken from a displaced pose; the prior says identity."""
    rng = np.random.default_rng(4)
    room = _room(rng)
    m = LocalMap(MapConfig(voxel_size=0.3))
    m.insert(room)
    T_true = np.eye(4)
    T_true[:3, :3], T_true[:3, 3] = so3.exp(offset[3:]), offset[:3] + [0, 0, 1.5]
    scan_w = room[rng.choice(len(room), 3000, replace=False)] + rng.normal(0, 0.005, (3000, 3))
    body = (scan_w - T_true[:3, 3]) @ T_true[:3, :3]
    prior = NavState(pos=np.array([0, 0, 1.5]))
    P = np.eye(DIM) * 1.0
    cfg = LioConfig()

    def measure(x, it):
        T = x.lidar_pose()
        world = body @ T[:3, :3].T + T[:3, 3]
        pl = fit_planes(world, body, m, cfg.geometry)
        p_i = body[pl.point_index]
        h = np.einsum("mj,mj->m", world[pl.point_index], pl.normal) + pl.d
        H = np.hstack([pl.normal, np.cross(p_i, pl.normal @ x.rot)])
        return Measurements(h, H, np.full(len(h), 1e-3))

    res = iterated_update(prior, P, measure, UpdateConfig(max_iterations=10))
    est = res.state.lidar_pose()
    np.testing.assert_allclose(est[:3, 3], T_true[:3, 3], atol=0.01)
    assert np.degrees(np.linalg.norm(so3.log(est[:3, :3].T @ T_true[:3, :3]))) < 0.1
    assert res.converged


def test_local_map_one_point_per_voxel_knn_and_trim():
    rng = np.random.default_rng(5)
    cfg = MapConfig(voxel_size=0.5, half_extent=20.0, trim_distance=1.0)
    m = LocalMap(cfg)
    pts = rng.uniform(-30, 30, (5000, 3))
    added = m.insert(pts)
    assert added == len(voxel_downsample(pts, 0.5)) == len(m)
    assert m.insert(pts) == 0                       # same voxels: nothing new
    more = rng.uniform(-30, 30, (500, 3))
    m.insert(more)                                  # indexed in place by the grid
    q = rng.uniform(-25, 25, (50, 3))
    d, i = m.knn(q, 5)
    brute = np.sort(((q[:, None] - m.points[None]) ** 2).sum(-1), axis=1)[:, :5]
    np.testing.assert_allclose(d, brute, rtol=1e-9)
    np.testing.assert_allclose(((q[:, None] - m.points[i]) ** 2).sum(-1), d, rtol=1e-9)
    dropped = m.trim(np.zeros(3))
    assert dropped > 0 and np.all(np.abs(m.points) <= 20.0)
    np.testing.assert_array_equal(np.sort(m.keys), m.keys)
    d, i = m.knn(q, 5)                              # the grid rebuilt over what is left
    brute = np.sort(((q[:, None] - m.points[None]) ** 2).sum(-1), axis=1)[:, :5]
    np.testing.assert_allclose(d, brute, rtol=1e-9)


def test_weak_direction_found_along_a_tunnel_axis():
    rng = np.random.default_rng(6)
    phi = rng.uniform(0, 2 * np.pi, 2000)
    normals = np.c_[np.zeros(2000), np.cos(phi), np.sin(phi)]   # tunnel along x
    d = analyse(np.diag([10.0, 10, 10, 1e-6, 10, 10]), normals, LioConfig().degeneracy)
    assert d.weak_translation.shape == (1, 3)
    np.testing.assert_allclose(np.abs(d.weak_translation[0]), [1, 0, 0], atol=1e-6)
    assert d.weak.sum() == 1 and np.abs(d.eigenvectors[3:, d.weak][:, 0]).argmax() == 0
    box = np.vstack([np.eye(3)] * 100)
    assert len(analyse(np.eye(6) * 100, box, LioConfig().degeneracy).weak_translation) == 0


def test_extrinsic_reaches_the_filter_state():
    from coin_lio.pipeline import LioPipeline

    T = ExtrinsicConfig(translation=[0.1, 0.2, 0.3], rotation=[-1.0, 0, 0, 0, -1.0, 0, 0, 0, 1.0])
    p = LioPipeline(LioConfig(extrinsic=T))
    for k in range(120):
        p.add_imu(k * 0.01, np.zeros(3), np.array([0, 0, G]))
    pts = _room(np.random.default_rng(7), 600)
    p.process_scan(pts, np.full(len(pts), 1.15))
    np.testing.assert_allclose(p.state.rot_il, np.diag([-1.0, -1, 1]))
    np.testing.assert_allclose(p.state.pos_il, [0.1, 0.2, 0.3])


def test_config_validation_and_yaml_mirror():
    from pathlib import Path

    import yaml

    from coin_lio.node_config import NodeConfig, load_node_config
    from suite_tools.config_params import ConfigError, build, flatten

    with pytest.raises(ValueError):
        MapConfig(voxel_size=-1.0)
    with pytest.raises(ConfigError, match="unknown"):
        build(LioConfig, {"map.voxl": 1.0})
    with pytest.raises(ConfigError, match="integer"):
        build(LioConfig, {"update.max_iterations": 2.5})
    path = Path(__file__).resolve().parents[1] / "config" / "coin_lio.yaml"
    cfg = load_node_config(path)
    yaml_keys = set(flatten_yaml(node_section(yaml.safe_load(path.read_text()), "coin_lio_node")))
    assert yaml_keys == set(flatten(NodeConfig())), "config/coin_lio.yaml must mirror NodeConfig"
    assert cfg.lio.extrinsic.matrix()[0, 0] == -1.0


def flatten_yaml(d, prefix=""):
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten_yaml(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def test_imu_gap_and_time_jump_reset_the_filter():
    from coin_lio.pipeline import LioPipeline

    p = LioPipeline(LioConfig())
    for k in range(150):
        p.add_imu(k * 0.01, np.zeros(3), np.array([0, 0, G]))
    pts = _room(np.random.default_rng(8), 600)
    p.process_scan(pts, np.full(len(pts), 1.45))
    assert p.initialised
    assert p.add_imu(1.5 + 2.0, np.zeros(3), np.array([0, 0, G]))      # a 2 s gap
    assert not p.initialised and ("imu_gap" in {k for k, _ in p.events})
    assert not p.add_imu(3.5, np.zeros(3), np.array([0, 0, G]))        # duplicated stamp
    assert not p.add_imu(3.6, np.full(3, np.nan), np.array([0, 0, G]))  # NaN
    assert not p.add_imu(3.7, np.zeros(3), np.array([0, 0, 1e4]))      # beyond physics
    p.add_imu(0.5, np.zeros(3), np.array([0, 0, G]))                    # back in time: reset
    assert "time_jump" in {k for k, _ in p.events}


def test_extrinsic_estimation_runs_and_stays_close(tmp_path):
    from bag_fixtures import simulated_sequence
    from coin_lio.node_config import load_node_config
    from coin_lio.offline_runner import resolve_inputs, run

    seq = simulated_sequence(tmp_path / "urban", "urban", 4.0, 5, 32, 512)
    bag, cfg, gt = resolve_inputs(seq, load_node_config(None), None)
    cfg.lio.update.estimate_extrinsic = True
    cfg.lio.photometric.enabled = False
    s = run(bag, cfg, tmp_path / "out", gt, progress=False)
    assert s["metrics"]["ape_m"]["rmse"] < 0.1


def test_preprocess_straight_from_the_cloud_keeps_the_same_points():
    """process_cloud's selection on the driver's float32 xyz equals preprocess() of the valid
    points taken out first: NaN, zero, too near, too far and masked-out returns dropped alike,
    then every point_stride-th of the rest, row-major."""
    from coin_lio.pipeline import LioPipeline

    rng = np.random.default_rng(11)
    H, W = 16, 64
    cloud = np.zeros((H, W), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("intensity", "<f4")])
    xyz = rng.normal(0, 1, (H, W, 3)) * rng.choice([0.3, 5.0, 200.0], (H, W, 1))
    for j, c in enumerate("xyz"):
        cloud[c] = xyz[..., j]
    cloud["x"][0, :5] = np.nan
    cloud["x"][1, :5] = cloud["y"][1, :5] = cloud["z"][1, :5] = 0.0
    times = 100.0 + rng.uniform(0, 0.1, (H, W))
    times[2, :3] = np.nan
    valid = rng.uniform(size=(H, W)) > 0.1
    pipe = LioPipeline()
    got_pts, got_t, _ = pipe.preprocess_cloud(cloud, times, valid)
    ref = np.stack([cloud[c] for c in "xyz"], axis=-1).astype(np.float64)
    keep = valid & np.all(np.isfinite(ref), axis=-1) & np.isfinite(times)
    want_pts, want_t = pipe.preprocess(ref[keep], times[keep])
    assert 50 < len(want_pts) < H * W / pipe.cfg.preprocess.point_stride
    np.testing.assert_array_equal(got_pts, want_pts)
    np.testing.assert_array_equal(got_t, want_t)


def test_voxel_downsample_keeps_the_point_nearest_each_voxel_centre():
    """The hash-table kernel against a sort-based reference: one index per voxel, the point
    nearest the centre, ordered by voxel key; non-finite points are refused."""
    from coin_lio.core.local_map import _downsample_with_keys, voxel_keys

    rng = np.random.default_rng(12)
    pts = np.vstack([rng.normal(0, 2.0, (3000, 3)), rng.uniform(-40, 40, (500, 3))])
    for size in (0.5, 1.3):
        keys = voxel_keys(pts, size)
        centre = (np.floor(pts / size) + 0.5) * size
        d = ((pts - centre) ** 2).sum(axis=1)
        order = np.lexsort((d, keys))
        first = np.r_[True, keys[order][1:] != keys[order][:-1]]
        np.testing.assert_array_equal(voxel_downsample(pts, size), order[first])
        sel, sel_keys = _downsample_with_keys(pts, size)          # the keys the map insert uses
        np.testing.assert_array_equal(sel_keys, voxel_keys(pts[sel], size))
    assert len(voxel_downsample(np.zeros((0, 3)), 0.5)) == 0
    with pytest.raises(ValueError, match="voxel range"):
        voxel_downsample(np.array([[np.nan, 0.0, 0.0]]), 0.5)


def test_so3_log_matches_scipy_from_tiny_angles_to_pi():
    rng = np.random.default_rng(13)
    vs = rng.normal(size=(400, 3)) * rng.choice([1e-12, 1e-6, 1e-2, 1.0, 3.0], (400, 1))
    for v in vs:
        np.testing.assert_allclose(so3.log(so3.exp(v)), Rotation.from_rotvec(v).as_rotvec(), atol=1e-12)
    for axis in np.eye(3):                                      # at pi, v and -v are the same rotation
        w = so3.log(so3.exp(np.pi * axis))
        assert np.isclose(np.linalg.norm(w), np.pi) and np.allclose(np.abs(w), np.pi * axis)


def test_compiled_state_arithmetic_and_update_step_match_their_definitions():
    """state_kernel: x [+] dx and y [-] x against their definitions (R Exp(dr), Log(R_x^T R_y),
    gravity kept at its norm), round trips, and one update step against the normal equations
    written out in numpy, with the measured columns 6 (pose) and 15 (pose and velocity, as a
    zero-velocity update stacks them)."""
    from coin_lio.core.state_kernel import information_step

    rng = np.random.default_rng(11)
    for _ in range(50):
        x = NavState(pos=rng.normal(size=3), rot=so3.exp(rng.normal(size=3)), rot_il=so3.exp(0.1 * rng.normal(size=3)),
                     pos_il=rng.normal(size=3) * 0.1, vel=rng.normal(size=3), bg=rng.normal(size=3) * 1e-3,
                     ba=rng.normal(size=3) * 1e-2, grav=np.array([0.1, -0.2, -9.81]))
        dx = rng.normal(size=DIM) * rng.choice([1e-9, 1e-3, 0.3])
        y = x.boxplus(dx)
        np.testing.assert_allclose(y.pos, x.pos + dx[0:3], atol=1e-15)
        np.testing.assert_allclose(y.rot, x.rot @ Rotation.from_rotvec(dx[3:6]).as_matrix(), atol=1e-14)
        np.testing.assert_allclose(y.rot_il, x.rot_il @ Rotation.from_rotvec(dx[6:9]).as_matrix(), atol=1e-14)
        np.testing.assert_allclose(np.linalg.norm(y.grav), 9.81, rtol=1e-14)
        back = y.boxminus(x)
        np.testing.assert_allclose(back[:21], dx[:21], atol=1e-12)          # gravity: renormalised
        np.testing.assert_allclose(y.boxminus(y), np.zeros(DIM), atol=0)
    A = rng.normal(size=(DIM, DIM))
    P_inv = np.linalg.inv(A @ A.T + np.eye(DIM))
    for c in (6, 15):
        H, h, var = rng.normal(size=(300, c)), rng.normal(size=300), rng.uniform(1e-4, 1e-2, 300)
        dxp = rng.normal(size=DIM) * 0.01
        info = P_inv.copy()
        info[:c, :c] += H.T @ (H / var[:, None])
        rhs = P_inv @ dxp
        rhs[:c] += H.T @ (h / var)
        step, got, ok = information_step(P_inv, H, h, var, dxp)
        assert ok
        np.testing.assert_allclose(got, info, rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(step, -np.linalg.solve(info, rhs), rtol=1e-9, atol=1e-12)
