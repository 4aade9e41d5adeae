"""Umeyama alignment, APE, RPE and KITTI drift on trajectories with known answers."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from coin_lio.eval.metrics import ape, evaluate, kitti_drift, path_pairs, rpe, umeyama_alignment
from coin_lio.eval.trajectory import Trajectory


def _se3(rotvec, t):
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = Rotation.from_rotvec(rotvec).as_matrix(), t
    return T


def _line(n=1001, spacing=1.0, dt=0.1):
    """Straight run along x, 1 m per pose, identity orientation."""
    pos = np.zeros((n, 3))
    pos[:, 0] = spacing * np.arange(n)
    return Trajectory(dt * np.arange(n), pos, np.tile([0, 0, 0, 1.0], (n, 1)))


def test_umeyama_recovers_known_se3_and_sim3():
    rng = np.random.default_rng(1)
    src = rng.normal(size=(200, 3)) * 5
    R = Rotation.from_rotvec([0.3, -1.2, 2.0]).as_matrix()
    t = np.array([4.0, -2.0, 7.5])
    rot, trans, s = umeyama_alignment(src, src @ R.T + t)
    np.testing.assert_allclose(rot, R, atol=1e-10)
    np.testing.assert_allclose(trans, t, atol=1e-10)
    assert s == 1.0
    rot, trans, s = umeyama_alignment(src, 1.7 * src @ R.T + t, with_scale=True)
    assert s == pytest.approx(1.7, abs=1e-10)
    np.testing.assert_allclose(trans, t, atol=1e-9)
    with pytest.raises(ValueError, match="degenerate"):
        umeyama_alignment(np.zeros((5, 3)), np.zeros((5, 3)))


def test_ape_of_rigidly_moved_copy_is_zero():
    rng = np.random.default_rng(2)
    n = 100
    gt = Trajectory(np.arange(n) * 0.1, np.cumsum(rng.normal(size=(n, 3)), axis=0),
                    Rotation.random(n, random_state=3).as_quat())
    moved = gt.transformed(left=_se3([0.2, 0.1, -2.5], [10, -3, 1]))
    assert ape(gt, moved, align=False).stats["rmse"] > 1.0
    res = ape(gt, moved)
    assert res.stats["rmse"] < 1e-9 and res.stats["max"] < 1e-9
    np.testing.assert_allclose(res.alignment, np.linalg.inv(_se3([0.2, 0.1, -2.5], [10, -3, 1])),
                               atol=1e-9)
    # RPE is invariant to the estimate's world frame, too.
    assert rpe(gt, moved, delta=5.0).stats_m["max"] < 1e-9


@pytest.mark.parametrize("all_pairs", [False, True])
@pytest.mark.parametrize("from_ref", [False, True])
def test_rpe_of_constant_scale_drift(all_pairs, from_ref):
    gt = _line(201)                                                      # 200 m, 1 m per pose
    est = Trajectory(gt.timestamps, gt.positions * 1.02, gt.quats_xyzw)  # 2 % too long
    res = rpe(gt, est, delta=10.0, all_pairs=all_pairs, pairs_from_reference=from_ref)
    steps = np.array([j - i for i, j in res.pairs])
    # A segment of k poses is k m of GT and 1.02 k m of estimate: error 0.02 k m, exactly.
    np.testing.assert_allclose(res.errors_m, 0.02 * steps, rtol=1e-9)
    if not all_pairs:  # 0-10-20-...-200 on either path (10 x 1.02 m is the first >= 10 m)
        assert res.pairs == [(i, i + 10) for i in range(0, 200, 10)]
        assert res.stats_pct["mean"] == pytest.approx(2.0, abs=1e-9)
    else:              # every start; near the end 9 poses (9 m / 9.18 m) are within the 10 % tolerance
        assert set(steps.tolist()) == {10, 9} and len(res.pairs) == 192
        assert res.stats_pct["median"] == pytest.approx(2.0, abs=1e-9)


def test_rpe_of_heading_drift_known_value():
    # Estimate turns 0.1 deg per metre too much; over a 10 m segment starting aligned, the end point
    # of the estimate's relative motion deviates from GT by a known amount.
    n = 101
    gt = _line(n)
    yaw = np.deg2rad(0.1) * np.arange(n)
    pos = np.zeros((n, 3))
    pos[1:, 0] = np.cumsum(np.cos(yaw[:-1]))
    pos[1:, 1] = np.cumsum(np.sin(yaw[:-1]))
    est = Trajectory(gt.timestamps, pos, Rotation.from_euler("z", yaw[:, None]).as_quat())
    res = rpe(gt, est, delta=10.0, all_pairs=False, pairs_from_reference=True)
    dyaw = np.deg2rad(0.1)
    rel = np.array([np.sum(np.cos(dyaw * np.arange(10))), np.sum(np.sin(dyaw * np.arange(10)))])
    expected = np.linalg.norm(rel - [10.0, 0.0])
    np.testing.assert_allclose(res.errors_m, expected, rtol=1e-9)


def test_path_pairs_consecutive_and_all():
    pos = np.zeros((31, 3))
    pos[:, 0] = np.arange(31) * 0.5
    assert path_pairs(pos, 5.0) == [(0, 10), (10, 20), (20, 30)]
    pairs = path_pairs(pos, 5.0, all_pairs=True, tol=0.5)
    # evo semantics: the closest pose to 5 m ahead, accepted within tol -- (21, 30) is 4.5 m.
    assert pairs[0] == (0, 10) and pairs[-2:] == [(20, 30), (21, 30)] and len(pairs) == 22


def test_kitti_drift_of_scale_drift_is_that_percentage():
    gt = _line(1001)
    est = Trajectory(gt.timestamps, gt.positions * 1.01, gt.quats_xyzw)
    k = kitti_drift(gt, est)
    # devkit: a segment ends at the first pose MORE than L metres on, i.e. L + 1 poses at 1 m.
    expected = [0.01 * (L + 1) / L for L in range(100, 900, 100) for _ in range(0, 1000 - L, 10)]
    assert k.n_segments == len(expected)
    assert k.t_err_pct == pytest.approx(100 * np.mean(expected), abs=1e-9)
    assert k.r_err_deg_per_100m == pytest.approx(0.0, abs=1e-6)
    short = kitti_drift(gt.subset(range(50)), est.subset(range(50)))
    assert short.n_segments == 0 and np.isnan(short.t_err_pct)


def test_kitti_drift_agrees_with_kiss_icp_devkit_port():
    kiss_metrics = pytest.importorskip("kiss_icp.metrics", reason="kiss-icp not installed")
    rng = np.random.default_rng(3)
    n = 1500
    yaw = np.cumsum(rng.normal(0, 0.01, n))
    yaw_e = yaw + np.cumsum(rng.normal(0, 0.002, n))

    def walk(y, s):
        return np.cumsum(np.stack([np.cos(y), np.sin(y), 0.01 * rng.normal(size=n)], 1) * s, 0)

    gt = Trajectory(np.arange(n) * 0.1, walk(yaw, 1.0), Rotation.from_euler("z", yaw[:, None]).as_quat())
    est = Trajectory(gt.timestamps, walk(yaw_e, 1.01), Rotation.from_euler("z", yaw_e[:, None]).as_quat())
    k = kitti_drift(gt, est)
    t_err, r_err = kiss_metrics.sequence_error(list(gt.poses()), list(est.poses()))
    assert k.t_err_pct == pytest.approx(t_err, rel=1e-6)        # kiss-icp: %, float32 inside
    assert k.r_err_deg_per_100m == pytest.approx(r_err * 100, rel=1e-2)  # deg/m there


def test_evaluate_reports_everything():
    gt = _line(301)
    est = Trajectory(gt.timestamps + 0.002, gt.positions * 1.01, gt.quats_xyzw)
    out = evaluate(gt, est)
    assert out["n_matched"] == 301 and out["gt_distance_m"] == pytest.approx(300.0)
    assert out["rpe"]["pct"]["median"] == pytest.approx(1.0, abs=1e-6)
    assert out["kitti"]["t_err_pct"] == pytest.approx(1.0, abs=0.02)
    assert out["ape_m"] is None and "degenerate" in out["ape_error"]  # a line: no unique alignment
    gt.positions[:, 1] = np.sin(gt.positions[:, 0] / 30.0)
    out = evaluate(gt, Trajectory(gt.timestamps, gt.positions * 1.01, gt.quats_xyzw))
    assert out["ape_m"]["rmse"] > 0.1
    assert "--all_pairs --pairs_from_reference" in out["evo_equivalent"]["rpe"]


def test_evaluate_interpolates_the_reference_when_estimate_stamps_fall_between():
    """A scan cropped by a column window ends (and is stamped) at its last column, 62 ms into a
    100 ms sweep: no ground-truth stamp within 10 ms, so the reference is interpolated."""
    t_gt = np.arange(0.0, 8.0, 0.1)

    def pose(t):                                   # moving on a circle, turning with it
        position = np.c_[5 * np.cos(0.3 * t), 5 * np.sin(0.3 * t), 0.1 * t]
        return position, Rotation.from_rotvec(np.c_[0 * t, 0 * t, 0.3 * t]).as_quat()
    gt = Trajectory(t_gt, *pose(t_gt), name="gt")
    t_est = t_gt[:-1] + 0.062
    est = Trajectory(t_est, *pose(t_est), name="est")
    out = evaluate(gt, est)
    assert out["reference_interpolated"] and out["n_matched"] == len(t_est)
    assert out["ape_m"]["rmse"] < 0.01            # chord error of linear interpolation only
    same = evaluate(gt, Trajectory(t_gt + 0.0002, *pose(t_gt + 0.0002), name="est"))
    assert not same["reference_interpolated"] and same["n_matched"] == len(t_gt)
