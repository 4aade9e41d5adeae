"""COIN-LIO's photometric rows inside the filter: Jacobians against finite differences, and the
weak direction of a simulated tunnel found along its axis (end to end through the pipeline)."""
from __future__ import annotations

import numpy as np
import pytest

from coin_lio.config import PhotometricConfig
from coin_lio.core import so3
from coin_lio.core.imu_propagation import ImuTrack
from coin_lio.core.photometric import PhotometricTracker
from coin_lio.core.state import NavState


@pytest.fixture(scope="module")
def tunnel(tmp_path_factory):
    from bag_fixtures import simulated_sequence

    return simulated_sequence(tmp_path_factory.mktemp("seq") / "tunnel", "tunnel", 3.0, 1, 64, 1024)


def _first_scan(seq):
    from suite_tools.pointcloud2 import pointcloud2_to_array
    from coin_lio.io.scan import scan_from_cloud
    from suite_tools.bag_io import read_bag

    msgs = [m for m in read_bag(seq / "bag", ["/ouster/points"])]
    msg = msgs[len(msgs) // 2].decode()
    st = msg.header.stamp
    return scan_from_cloud(pointcloud2_to_array(msg), st.sec * 1_000_000_000 + st.nanosec)


def test_photometric_jacobian_matches_finite_differences(tunnel):
    scan = _first_scan(tunnel)
    cfg = PhotometricConfig(metadata_path=str(tunnel / "metadata.json"))
    tr = PhotometricTracker(cfg)
    # a moving sensor: the pixel times matter (points are moved to their pixel's time)
    v, w = np.array([1.5, 0.2, 0.0]), np.array([0.0, 0.05, 0.4])
    t0 = scan.stamp
    track = ImuTrack(np.array([t0]), np.eye(3)[None], np.zeros((1, 3)), v[None], np.zeros((1, 3)), w[None])
    x = NavState(rot=so3.exp(w * 0.1), pos=v * 0.1, vel=v)
    x.rot_il, x.pos_il = np.diag([-1.0, -1.0, 1.0]), np.array([-0.006, 0.012, 0.029])
    tr.prepare(scan.cloud, scan.times, track, x)
    tr.track_and_select(x, np.array([[1.0, 0.0, 0.0]]))
    assert len(tr.patches) >= 20
    # evaluate slightly off the selection pose so the residuals are not all ~0
    x0 = x.boxplus(np.r_[0.01, -0.02, 0.005, 0.002, -0.001, 0.003, np.zeros(18)])

    def fd_error(tracker):
        m0 = tracker.measure(x0)
        assert len(m0.h) >= 10 * 25
        eps = 1e-6
        fd = np.zeros_like(m0.H)
        for k in range(6):
            d = np.zeros(24)
            d[k] = eps
            hp, hm = tracker.measure(x0.boxplus(d)).h, tracker.measure(x0.boxplus(-d)).h
            assert len(hp) == len(hm) == len(m0.h)
            fd[:, k] = (hp - hm) / (2 * eps)
        return np.abs(m0.H - fd) / (np.abs(fd).max(axis=0) + 1e-12)

    # 1. the chain rule itself: on an image whose bilinear interpolation and gradients are exact
    #    (linear in u and v) and with the exact projection slope, analytic == numeric
    h, w = tr.frame.image.shape
    vv, uu = np.mgrid[0:h, 0:w].astype(np.float32)
    tr.frame.image, tr.frame.grad_u, tr.frame.grad_v = 0.5 * uu + 3.0 * vv, np.full_like(uu, 0.5), np.full_like(uu, 3.0)
    tr.model.jacobian_fy = "local"
    tr.patches = tr.patches.keep((tr.patches.uv[:, 0] > 40) & (tr.patches.uv[:, 0] < w - 40))  # off the seam
    err = fd_error(tr)
    assert np.percentile(err, 99) < 1e-4, np.percentile(err, 99)
    # 2. with the real filtered image and the reference's nominal slope the rows are an
    #    approximation (central-difference gradients, one fy for all rows): close, not exact
    tr.prepare(scan.cloud, scan.times, track, x)
    tr.model.jacobian_fy = "nominal"
    err = fd_error(tr)
    assert np.median(err) < 0.1


def test_weak_direction_of_a_tunnel_is_its_axis(tunnel):
    from coin_lio.node_config import load_node_config
    from coin_lio.offline_runner import resolve_inputs, run
    import json

    bag, cfg, _ = resolve_inputs(tunnel, load_node_config(None), None)
    cfg.lio.photometric.enabled = False
    out = tunnel.parent / "run"
    run(bag, cfg, out, progress=False)
    rows = [json.loads(line) for line in open(out / "degeneracy.jsonl")]
    tracked = [r for r in rows if r["status"] == "tracked"]
    assert len(tracked) > 5
    traj = np.loadtxt(out / "trajectory.tum")
    gt = np.loadtxt(tunnel / "ground_truth.tum")
    from scipy.spatial.transform import Rotation

    for r in tracked[-5:]:
        assert len(r["weak_translation"]) == 1, r["weak_translation"]      # exactly one weak direction
        i = int(np.argmin(np.abs(traj[:, 0] - r["t"])))
        j = int(np.argmin(np.abs(gt[:, 0] - r["t"])))
        weak_body = Rotation.from_quat(traj[i, 4:]).inv().apply(r["weak_translation"][0])
        axis_body = Rotation.from_quat(gt[j, 4:]).inv().apply([1.0, 0.0, 0.0])   # the tunnel runs along x
        assert abs(np.dot(weak_body, axis_body)) > 0.98




def test_velodyne_like_sensor_gets_photometric_help_in_a_tunnel(tmp_path):
    """Not Ouster-only: a 16-ring sensor (unorganised cloud, ring + per-point time) builds its image
    by ring + azimuth, tracks patches, and beats its geometric mode along the tunnel."""
    import csv

    from coin_lio.node_config import load_node_config
    from coin_lio.offline_runner import resolve_inputs, run
    from coin_lio.sim.sequence import SequenceConfig, generate_sequence

    seq = tmp_path / "velodyne_tunnel"
    generate_sequence(SequenceConfig(scene="tunnel", sensor="velodyne", duration=8.0, seed=0), seq,
                      progress=False)
    ape = {}
    for photometric in (True, False):
        bag, cfg, gt = resolve_inputs(seq, load_node_config(None), None)
        cfg.lio.photometric.enabled = photometric
        out = tmp_path / f"run_{photometric}"
        ape[photometric] = run(bag, cfg, out, gt, progress=False)["metrics"]["ape_m"]["rmse"]
        rows = list(csv.DictReader(open(out / "timing.csv")))
        used = sum(int(r["photometric_rows"]) for r in rows)
        assert (used > 0) == photometric
    assert ape[True] < 0.5 * ape[False], ape


def test_new_patches_are_chosen_only_below_the_refill_level(tunnel):
    """features.refill_below: 1.0 (the reference) refills to 60 patches whenever one is lost; 0.75
    leaves them while at least 45 are tracked, then refills to 60."""
    from dataclasses import replace

    scan = _first_scan(tunnel)
    x = NavState()
    x.rot_il, x.pos_il = np.diag([-1.0, -1.0, 1.0]), np.array([-0.006, 0.012, 0.029])
    track = ImuTrack(np.array([scan.stamp]), np.eye(3)[None], np.zeros((1, 3)), np.zeros((1, 3)),
                     np.zeros((1, 3)), np.zeros((1, 3)))
    counts = {}
    for refill in (1.0, 0.75):
        cfg = PhotometricConfig(metadata_path=str(tunnel / "metadata.json"))
        cfg = replace(cfg, features=replace(cfg.features, refill_below=refill))
        tr = PhotometricTracker(cfg)
        tr.prepare(scan.cloud, scan.times, track, x)
        tr.track_and_select(x, np.array([[1.0, 0.0, 0.0]]))
        assert len(tr.patches) == 60
        seen = []
        for keep in (58, 30):
            tr.patches = tr.patches.keep(np.arange(len(tr.patches)) < keep)
            tr.track_and_select(x, np.array([[1.0, 0.0, 0.0]]))     # the same scan again
            seen.append((tr.stats["tracked"], tr.stats["new"]))
        counts[refill] = seen
    for tracked, new in counts[1.0]:                                  # always back to 60
        assert tracked < 60 and new == 60 - tracked
    (kept, none), (few, refilled) = counts[0.75]
    assert 45 <= kept < 60 and none == 0                              # enough: nothing chosen
    assert few < 45 and refilled == 60 - few                          # too few: back to 60
    with pytest.raises(ValueError, match="refill_below"):
        replace(PhotometricConfig().features, refill_below=0.0)


def test_each_pixel_gets_the_time_of_the_point_that_fills_it(tunnel):
    """prepare()'s time index, for an Ouster scan's per-column times (increasing, as drivers
    publish them, or not: a column order the driver rotated), and for per-point times: every
    filled pixel's time (times[time_index]) is the time of the cloud point that fills it."""
    from coin_lio.core.motion_kernel import column_time_layout

    scan = _first_scan(tunnel)
    x = NavState()
    track = ImuTrack(np.array([scan.stamp]), np.eye(3)[None], np.zeros((1, 3)), np.zeros((1, 3)),
                     np.zeros((1, 3)), np.zeros((1, 3)))
    h, w = scan.times.shape
    columns = np.broadcast_to(scan.times[0], (h, w))
    rotated = np.roll(columns, 300, axis=1)                      # one wrap: not increasing
    per_point = columns + np.linspace(0, 1e-4, h)[:, None]       # rows differ
    for times, layout in ((columns, 2), (rotated, 1), (per_point, 0)):
        times = np.ascontiguousarray(times)
        assert column_time_layout(times) == layout
        tr = PhotometricTracker(PhotometricConfig(metadata_path=str(tunnel / "metadata.json")))
        tr.prepare(scan.cloud, times, track, x)
        filled = tr.frame.point_index >= 0
        got = np.unique(times)[tr.time_index] if layout != 2 else times[0][tr.time_index]
        np.testing.assert_array_equal(got[filled], times.reshape(-1)[tr.frame.point_index[filled]])
        assert len(tr.R_u) == len(np.unique(times))
    nan = np.ascontiguousarray(columns).copy()
    nan[3, 5] = np.nan
    assert column_time_layout(nan) == 0


def test_patches_seen_from_too_far_aside_are_dropped(tunnel):
    """photometric.max_view_change_deg: a patch's reference intensities are one view of it; when
    the ray to it has turned by more than the limit since it was selected, tracking drops it
    ('view'), whatever its age. The same scan tracked again, with the selection viewpoints moved
    so each patch is seen 25 or 35 degrees aside (limit 30)."""
    from dataclasses import replace

    scan = _first_scan(tunnel)
    x = NavState()
    x.rot_il, x.pos_il = np.diag([-1.0, -1.0, 1.0]), np.array([-0.006, 0.012, 0.029])
    track = ImuTrack(np.array([scan.stamp]), np.eye(3)[None], np.zeros((1, 3)), np.zeros((1, 3)),
                     np.zeros((1, 3)), np.zeros((1, 3)))
    sensor = x.lidar_pose()[:3, 3]
    out = {}
    for limit, turn in ((30.0, 25.0), (30.0, 35.0), (0.0, 35.0)):
        cfg = replace(PhotometricConfig(metadata_path=str(tunnel / "metadata.json")), max_view_change_deg=limit)
        tr = PhotometricTracker(cfg)
        tr.prepare(scan.cloud, scan.times, track, x)
        tr.track_and_select(x, np.array([[1.0, 0.0, 0.0]]))
        n = len(tr.patches)
        np.testing.assert_allclose(tr.patches.origin, np.repeat(sensor[None], n, axis=0))
        assert np.allclose(tr.patches.view_change_cos(sensor), 1.0)
        centre = tr.patches.world[:, tr.patches.world.shape[1] // 2]
        ray = centre - sensor
        axis = np.cross(ray, [0.0, 0.0, 1.0])                      # perpendicular to each ray
        axis /= np.linalg.norm(axis, axis=1, keepdims=True)
        tr.patches.origin = centre - np.stack([so3.exp(np.radians(turn) * a) @ r for a, r in zip(axis, ray)])
        np.testing.assert_allclose(np.degrees(np.arccos(np.clip(tr.patches.view_change_cos(sensor), -1, 1))),
                                   turn, atol=1e-6)
        tr.stats["dropped"] = {}
        tr.track_and_select(x, np.array([[1.0, 0.0, 0.0]]))     # the same scan again
        out[(limit, turn)] = (n, dict(tr.stats["dropped"]))
    n, drops = out[(30.0, 25.0)]
    assert drops.get("view", 0) == 0
    n, drops = out[(30.0, 35.0)]
    assert drops["view"] >= n - drops.get("left_image", 0) - drops.get("occluded", 0) - drops.get("ncc", 0) > n // 2
    assert out[(0.0, 35.0)][1].get("view", 0) == 0                  # 0: age alone, as the reference
    with pytest.raises(ValueError, match="max_view_change_deg"):
        replace(PhotometricConfig(), max_view_change_deg=-1.0)
