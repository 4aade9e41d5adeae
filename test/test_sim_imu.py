"""Trajectory derivatives and the IMU model: dead reckoning the ideal IMU retraces the truth."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from coin_lio.sim import ImuConfig, TrajectoryConfig, ideal_imu, make_scene, simulate_imu
from coin_lio.sim.trajectory import Path, SplineTrajectory

G = np.array([0.0, 0.0, -9.81])


def trajectory(scene: str, profile: str, seed: int = 3) -> SplineTrajectory:
    spec = make_scene(scene, seed)
    return SplineTrajectory(Path(spec.waypoints, spec.closed), TrajectoryConfig(profile=profile),
                            60.0, seed=seed)


def dead_reckon(traj, t0: float, seconds: float, rate: float) -> tuple[float, float]:
    """Integrate the noise-free IMU from the true state at t0: (position error m, rotation deg)."""
    dt, n = 1.0 / rate, int(round(seconds * rate))
    t = t0 + np.arange(n + 1) * dt
    gyro, acc = ideal_imu(traj, t)
    st = traj.state(np.array([t0]))
    rot, p, v = st.R[0], st.p[0], st.v[0]
    for i in range(n):
        rot1 = rot @ Rotation.from_rotvec(0.5 * (gyro[i] + gyro[i + 1]) * dt).as_matrix()
        a0, a1 = rot @ acc[i] + G, rot1 @ acc[i + 1] + G
        p = p + v * dt + dt * dt / 6 * (2 * a0 + a1)
        v = v + 0.5 * dt * (a0 + a1)
        rot = rot1
    end = traj.state(np.array([t0 + seconds]))
    return (float(np.linalg.norm(p - end.p[0])),
            float(np.degrees(Rotation.from_matrix(end.R[0].T @ rot).magnitude())))


@pytest.mark.parametrize("scene,profile", [("tunnel", "smooth"), ("corridor", "dynamic"),
                                           ("stairs", "dynamic")])
def test_ideal_imu_integrates_back_to_the_trajectory(scene, profile):
    traj = trajectory(scene, profile)
    for t0 in (1.0, 9.0):   # across the start of motion, and at cruise speed
        err_p, err_r = dead_reckon(traj, t0, 3.0, 400.0)
        assert err_p < 2e-4 and err_r < 1e-3, (t0, err_p, err_r)
    coarse_p, _ = dead_reckon(traj, 9.0, 3.0, 100.0)
    fine_p, _ = dead_reckon(traj, 9.0, 3.0, 400.0)
    assert fine_p < coarse_p / 8          # second-order convergence: integration error only


def test_analytic_derivatives_match_finite_differences():
    traj = trajectory("urban", "dynamic")
    t = np.linspace(1.0, 40.0, 57)
    h = 1e-4
    s0, sp, sm = traj.state(t), traj.state(t + h), traj.state(t - h)
    assert np.allclose((sp.p - sm.p) / (2 * h), s0.v, atol=1e-6)
    assert np.allclose((sp.v - sm.v) / (2 * h), s0.a, atol=1e-4)
    # omega_body: R^T dR/dt is the skew matrix of omega
    dR = np.einsum("nji,njk->nik", s0.R, (sp.R - sm.R) / (2 * h))
    omega = np.stack([dR[:, 2, 1], dR[:, 0, 2], dR[:, 1, 0]], axis=1)
    assert np.allclose(omega, s0.omega, atol=1e-6)


def test_static_start_and_profiles():
    for profile, yaw_peak in (("smooth", 20.0), ("dynamic", 90.0)):
        traj = trajectory("tunnel", profile)
        rest = traj.state(np.linspace(0.0, 1.49, 50))
        gyro, acc = ideal_imu(traj, np.linspace(0.0, 1.49, 50))
        assert np.allclose(rest.v, 0.0) and np.allclose(gyro, 0.0)
        assert np.allclose(np.linalg.norm(acc, axis=1), 9.81)
        assert np.allclose(acc, acc[0])   # tilted, at rest: gravity only
        moving = traj.state(np.linspace(5.0, 60.0, 2000))
        yaw_rate = np.degrees(np.abs(moving.omega[:, 2])).max()
        assert (yaw_rate > 0.8 * yaw_peak) if profile == "dynamic" else (yaw_rate < yaw_peak)
        assert yaw_rate < 130.0


def test_imu_noise_and_bias_follow_the_configuration():
    traj = trajectory("field", "smooth")
    cfg = ImuConfig(rate_hz=200.0, acc_bias_init_sigma=0.0, gyr_bias_init_sigma=0.0,
                    acc_bias_rw=0.0, gyr_bias_rw=0.0)
    s = simulate_imu(traj, 30.0, cfg, seed=1)
    assert len(s.t) == 6000 and np.allclose(np.diff(s.t), 1 / 200.0)
    gyro, acc = ideal_imu(traj, s.t)
    assert np.std(s.gyro - gyro) == pytest.approx(0.01 * np.sqrt(200.0), rel=0.05)
    assert np.std(s.acc - acc) == pytest.approx(0.01 * np.sqrt(200.0), rel=0.05)
    drift = simulate_imu(traj, 30.0, ImuConfig(), seed=1)
    assert np.abs(drift.bias_gyro[-1] - drift.bias_gyro[0]).max() > 0
    assert not np.array_equal(simulate_imu(traj, 1.0, ImuConfig(), seed=2).acc,
                              simulate_imu(traj, 1.0, ImuConfig(), seed=3).acc)
    quiet = simulate_imu(traj, 1.0, ImuConfig.noiseless(), seed=2)
    assert np.array_equal(quiet.acc, ideal_imu(traj, quiet.t)[1])


@pytest.mark.parametrize("kwargs,match", [({"rate_hz": 10.0}, "rate_hz"),
                                          ({"acc_noise_density": -1.0}, "acc_noise_density"),
                                          ({"gravity": 3.0}, "gravity")])
def test_imu_config_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ImuConfig(**kwargs)


def test_trajectory_config_rejects_bad_values():
    with pytest.raises(ValueError, match="static_duration"):
        TrajectoryConfig(static_duration=0.5)
    with pytest.raises(ValueError, match="profile"):
        TrajectoryConfig(profile="wild")
    spec = make_scene("tunnel", 0, path_length=50.0)
    with pytest.raises(ValueError, match="too short"):
        SplineTrajectory(Path(spec.waypoints, spec.closed), TrajectoryConfig(), 120.0)
