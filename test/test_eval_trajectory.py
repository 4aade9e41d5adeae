"""TUM files, the Trajectory dataclass and association by timestamp."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from coin_lio.eval.trajectory import (Trajectory, TumFormatError, associate, matching_time_indices,
                                      read_tum, write_tum)


def _random_traj(n=50, seed=0, t0=1_700_000_000.0, dt=0.1):
    rng = np.random.default_rng(seed)
    return Trajectory(t0 + dt * np.arange(n), rng.normal(size=(n, 3)) * 10,
                      Rotation.random(n, random_state=seed).as_quat(), name="rand")


def test_tum_round_trip(tmp_path):
    traj = _random_traj()
    back = read_tum(write_tum(tmp_path / "a.tum", traj, header="made by a test"))
    assert len(back) == len(traj)
    np.testing.assert_allclose(back.timestamps, traj.timestamps, atol=2e-7)  # float64 at 1.7e9 s
    np.testing.assert_allclose(back.positions, traj.positions, atol=1e-9)
    np.testing.assert_allclose(np.abs(np.sum(back.quats_xyzw * traj.quats_xyzw, axis=1)), 1.0, atol=1e-9)
    np.testing.assert_allclose(back.poses(), traj.poses(), atol=1e-8)


def test_tum_comments_and_blank_lines(tmp_path):
    p = tmp_path / "b.tum"
    p.write_text("# header\n\n1.0 0 0 0 0 0 0 1\n   \n2.0 1 2 3 0 0 0 2  # trailing comment\n")
    traj = read_tum(p)
    assert len(traj) == 2 and traj.name == "b"
    np.testing.assert_allclose(traj.positions[1], [1, 2, 3])
    np.testing.assert_allclose(traj.quats_xyzw[1], [0, 0, 0, 1])  # normalised


@pytest.mark.parametrize("line, reason", [
    ("1.0 0 0 0 0 0 1", "expected 8 values"),
    ("1.0 0 0 0 0 0 0 1 5", "expected 8 values"),
    ("1.0 0 0 zero 0 0 0 1", "not a number"),
    ("1.0 0 0 nan 0 0 0 1", "non-finite"),
    ("1.0 0 0 0 0 0 0 0", "zero quaternion"),
])
def test_tum_malformed_line_names_file_and_line(tmp_path, line, reason):
    p = tmp_path / "bad.tum"
    p.write_text("# ok\n0.5 0 0 0 0 0 0 1\n" + line + "\n")
    with pytest.raises(TumFormatError, match=rf"bad\.tum:3: {reason}"):
        read_tum(p)


def test_from_poses_and_transformed():
    traj = _random_traj(10)
    again = Trajectory.from_poses(traj.timestamps, traj.poses())
    np.testing.assert_allclose(again.poses(), traj.poses(), atol=1e-12)
    L, R = np.eye(4), np.eye(4)
    L[:3, :3], L[:3, 3] = Rotation.from_euler("xyz", [0.1, -0.2, 0.3]).as_matrix(), [1, 2, 3]
    R[:3, :3], R[:3, 3] = Rotation.from_euler("z", 180, degrees=True).as_matrix(), [0.1, 0, 0]
    np.testing.assert_allclose(traj.transformed(L, R).poses(), L @ traj.poses() @ R, atol=1e-12)
    assert traj.path_length() == pytest.approx(
        np.sum(np.linalg.norm(np.diff(traj.positions, axis=0), axis=1)))


def test_association_nearest_within_max_diff():
    gt = _random_traj(301, dt=0.01)                     # 100 Hz over 3 s
    t_est = gt.timestamps[5::10] + 0.003                 # 10 Hz, 3 ms late
    t_est = np.append(t_est, gt.timestamps[-1] + 0.011)  # past the end by 11 ms: no partner
    est = Trajectory(t_est, np.zeros((len(t_est), 3)), np.tile([0, 0, 0, 1.0], (len(t_est), 1)))
    ref, e = associate(gt, est, max_diff=0.01)
    assert len(ref) == len(e) == len(t_est) - 1
    assert np.all(np.abs(ref.timestamps - e.timestamps) <= 0.0031)
    with pytest.raises(ValueError, match="no matching timestamps"):
        associate(gt, est.subset([len(est) - 1]), max_diff=0.01)


def test_matching_indices_tie_and_unsorted_like_evo():
    i1, i2 = matching_time_indices(np.array([1.005]), np.array([1.0, 1.01]), 0.01)
    assert list(i1) == [0] and list(i2) == [0]           # equal distance: the earlier stamp (evo)
    i1, i2 = matching_time_indices(np.array([1.0, 2.0]), np.array([2.001, 0.999]), 0.01)
    assert list(i1) == [0, 1] and list(i2) == [1, 0]
