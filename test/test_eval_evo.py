"""Our APE / RPE equal evo's (evo.core.sync / trajectory / metrics, as evo_ape / evo_rpe run them)
on the same TUM files: a smooth random GT at 100 Hz and a drifting, noisy 10 Hz estimate."""
from __future__ import annotations

import copy

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from coin_lio.eval.metrics import ape, evaluate, rpe
from coin_lio.eval.trajectory import Trajectory, associate, read_tum, write_tum

try:
    from evo.core import metrics as evo_metrics
    from evo.core import sync as evo_sync
    from evo.tools import file_interface as evo_files
except ImportError as exc:  # pragma: no cover - depends on the environment
    pytest.skip(f"evo is not importable ({exc}); install it with `pip install evo`",
                allow_module_level=True)

T0 = 1_700_000_000.0


def _smooth(t, seed):
    """Positions (N, 3) and rotations of a smooth random drive (~1.5-2.5 m/s)."""
    rng = np.random.default_rng(seed)
    s = t - T0
    f, a, ph = rng.uniform(0.02, 0.1, (3, 3)), rng.uniform(2, 12, (3, 3)), rng.uniform(0, 6, (3, 3))
    pos = np.stack([np.sum(a[k] * np.sin(f[k] * s[:, None] + ph[k]), axis=1) for k in range(3)], 1)
    pos[:, 0] += 1.8 * s
    pos[:, 2] *= 0.1
    yaw = 0.4 * np.sin(0.05 * s) + 0.1 * s
    rot = Rotation.from_euler("zyx", np.stack([yaw, 0.05 * np.sin(0.3 * s), 0.03 * np.cos(0.2 * s)], 1))
    return pos, rot


@pytest.fixture(scope="module")
def tum_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("evo")
    rng = np.random.default_rng(7)
    t_gt = T0 + np.arange(0, 90.0, 0.01)
    t_gt = t_gt[(t_gt < T0 + 40.0) | (t_gt > T0 + 40.6)]  # a GT gap: estimates there match nothing
    pos, rot = _smooth(t_gt, 1)
    write_tum(d / "gt.tum", Trajectory(t_gt, pos, rot.as_quat()))
    t_est = T0 + 0.0999 + np.arange(0, 89.5, 0.1) + rng.uniform(-0.004, 0.004, 895)
    pos, rot = _smooth(t_est, 1)
    drift = np.cumsum(rng.normal(0, 0.01, (len(t_est), 3)), axis=0)
    yaw_drift = Rotation.from_euler("z", np.cumsum(rng.normal(0, 2e-4, len(t_est)))[:, None])
    world = Rotation.from_euler("xyz", [0.02, -0.01, 1.3])
    est_pos = world.apply(pos + drift + rng.normal(0, 0.02, pos.shape)) + [5.0, -2.0, 0.3]
    write_tum(d / "est.tum", Trajectory(t_est, est_pos, (world * yaw_drift * rot).as_quat()))
    return d / "gt.tum", d / "est.tum"


def _evo_pair(tum_files, max_diff=0.01):
    ref = evo_files.read_tum_trajectory_file(str(tum_files[0]))
    est = evo_files.read_tum_trajectory_file(str(tum_files[1]))
    return evo_sync.associate_trajectories(ref, est, max_diff=max_diff)


def _ours(tum_files, max_diff=0.01):
    return associate(read_tum(tum_files[0]), read_tum(tum_files[1]), max_diff)


def test_association_matches_evo(tum_files):
    e_ref, e_est = _evo_pair(tum_files)
    ref, est = _ours(tum_files)
    assert 800 < len(ref) < 895
    assert len(ref) == e_ref.num_poses == e_est.num_poses
    np.testing.assert_allclose(ref.timestamps, e_ref.timestamps, atol=1e-9, rtol=0)
    np.testing.assert_allclose(est.timestamps, e_est.timestamps, atol=1e-9, rtol=0)


def test_ape_matches_evo_ape_align(tum_files):
    """== evo_ape tum gt.tum est.tum --align (translation part, SE(3) Umeyama, no scale)."""
    e_ref, e_est = _evo_pair(tum_files)
    e_est = copy.deepcopy(e_est)
    e_est.align(e_ref, correct_scale=False)
    metric = evo_metrics.APE(evo_metrics.PoseRelation.translation_part)
    metric.process_data((e_ref, e_est))
    evo_stats = metric.get_all_statistics()
    res = ape(*_ours(tum_files))
    assert res.stats["rmse"] > 0.1                           # the test is not trivially zero
    np.testing.assert_allclose(res.errors, metric.error, atol=1e-6, rtol=0)
    for key in ("rmse", "mean", "median", "std", "min", "max"):
        assert res.stats[key] == pytest.approx(evo_stats[key], abs=1e-6), key


@pytest.mark.parametrize("all_pairs", [False, True])
@pytest.mark.parametrize("from_ref", [False, True])
def test_rpe_matches_evo_rpe_delta_10_m(tum_files, all_pairs, from_ref):
    """== evo_rpe tum gt.tum est.tum --delta 10 --delta_unit m [--all_pairs] [--pairs_from_reference]."""
    e_ref, e_est = _evo_pair(tum_files)
    metric = evo_metrics.RPE(evo_metrics.PoseRelation.translation_part, delta=10.0,
                             delta_unit=evo_metrics.Unit.meters, rel_delta_tol=0.1,
                             all_pairs=all_pairs, pairs_from_reference=from_ref)
    metric.process_data((e_ref, e_est))
    res = rpe(*_ours(tum_files), delta=10.0, all_pairs=all_pairs, pairs_from_reference=from_ref)
    assert [j for _, j in res.pairs] == metric.delta_ids
    np.testing.assert_allclose(res.errors_m, metric.error, atol=1e-6, rtol=0)
    evo_stats = metric.get_all_statistics()
    for key in ("rmse", "mean", "median", "max"):
        assert res.stats_m[key] == pytest.approx(evo_stats[key], abs=1e-6), key
        assert res.stats_pct[key] == pytest.approx(evo_stats[key] / 10.0 * 100.0, abs=1e-5), key
    assert res.stats_pct["mean"] > 0.1


def test_evaluate_defaults_equal_the_evo_commands_it_prints(tum_files):
    gt, est = read_tum(tum_files[0]), read_tum(tum_files[1])
    out = evaluate(gt, est)
    e_ref, e_est = _evo_pair(tum_files)
    rpe_m = evo_metrics.RPE(evo_metrics.PoseRelation.translation_part, 10.0, evo_metrics.Unit.meters,
                            0.1, all_pairs=True, pairs_from_reference=True)
    rpe_m.process_data((e_ref, e_est))
    assert out["rpe"]["m"]["mean"] == pytest.approx(rpe_m.get_statistic(evo_metrics.StatisticsType.mean),
                                                    abs=1e-6)
    e_est.align(e_ref)
    ape_m = evo_metrics.APE(evo_metrics.PoseRelation.translation_part)
    ape_m.process_data((e_ref, e_est))
    assert out["ape_m"]["rmse"] == pytest.approx(ape_m.get_statistic(evo_metrics.StatisticsType.rmse),
                                                 abs=1e-6)
    assert out["evo_equivalent"]["rpe"].startswith(
        "evo_rpe tum GT EST --t_max_diff 0.01 --delta 10 --delta_unit m --all_pairs --pairs_from_reference")
