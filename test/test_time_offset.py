"""coin_lio.core.time_offset: the IMU-LiDAR clock offset from scan rotations and the gyro, on
hand-built motion (exact rotations, gyro stamped late, with and without the simulator's gyro
noise), and the pipeline moving its IMU clock."""
import numpy as np
import pytest

from coin_lio.config import ImuConfig, LioConfig
from coin_lio.core import so3
from coin_lio.core.time_offset import TimeOffsetEstimator
from coin_lio.pipeline import LioPipeline

RATE_HZ, SCAN_S = 200.0, 0.1


def _omega(t: np.ndarray) -> np.ndarray:
    """(N, 3) rad/s: a wobbling turn, rich in rate changes."""
    return np.stack([0.8 * np.sin(2.1 * t), 0.5 * np.cos(3.3 * t + 0.4), 0.3 + 0.9 * np.sin(1.3 * t)], axis=1)


def _rotations(t_scan: np.ndarray, dt: float = 1e-4, omega=_omega) -> list[np.ndarray]:
    """R_WI at the scan times, integrated finely from omega (default _omega)."""
    t = np.arange(0.0, t_scan[-1] + dt, dt)
    steps = so3.exp(omega(t + 0.5 * dt) * dt)             # (N, 3, 3) midpoint increments
    R, out, k = np.eye(3), [], 0
    for ti, step in zip(t, steps):
        while k < len(t_scan) and ti >= t_scan[k] - 1e-12:
            out.append(R.copy())
            k += 1
        R = R @ step
    return out


def _window(stamps: np.ndarray, t_a: float, t_b: float) -> np.ndarray:
    """As the pipeline's: the last reading at or before t_a through the first after t_b."""
    lo = np.searchsorted(stamps, t_a, side="right") - 1
    return np.arange(lo, np.searchsorted(stamps, t_b, side="right") + 1)


def _feed(est: TimeOffsetEstimator, delta: float, noise: float = 0.0, seconds: float = 6.0) -> None:
    rng = np.random.default_rng(0)
    t_scan = np.arange(0.5, seconds, SCAN_S) + 0.0013          # scan ends between readings
    Rs = _rotations(t_scan)
    stamps = np.arange(0.0, seconds + 0.5, 1 / RATE_HZ)
    gyro = _omega(stamps - delta) + rng.normal(0, noise, (len(stamps), 3))   # reading of true time s - delta
    for a in range(len(t_scan) - 1):
        inside = _window(stamps, t_scan[a], t_scan[a + 1])
        taken = est.add_pair(t_scan[a], Rs[a], t_scan[a + 1], Rs[a + 1], np.zeros(3), stamps[inside], gyro[inside])
        assert taken == (a > 0)          # the first has no reading before it (the instrument's start)
    assert est._pending is not None      # the last waits for the reading after its window


@pytest.mark.parametrize("delta", [0.0, 0.004, -0.012, 0.03])
def test_offset_of_a_late_or_early_gyro_is_found(delta):
    est = TimeOffsetEstimator()
    _feed(est, delta)
    e = est.estimate()
    assert e.pairs == 52 and abs(e.delta - delta) < 0.0005 + 0.03 * abs(delta), e


def test_gyro_noise_shows_in_sigma_and_the_estimate_stays_inside_it():
    est = TimeOffsetEstimator()
    _feed(est, 0.01, noise=0.02)
    e = est.estimate()
    assert 1e-5 < e.sigma < 2e-3 and abs(e.delta - 0.01) < 4 * e.sigma + 3e-4, e


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_noisy_gyro_offset_is_found_in_full_and_slow_motion_claims_nothing(seed):
    """0.1 rad/s of white noise a reading at 100 Hz (the simulator's IMU): D is made of noisy
    readings, so least squares on it is attenuated (20 ms read as 6-10) with a sigma of ~1.3 ms
    that puts the truth 10 sigma away; the instrumented estimate finds the offset within its
    sigma. In slow motion, where the noise is most of D, its sigma says it knows nothing."""
    rng = np.random.default_rng(seed)
    t_scan = np.arange(0.5, 10.0, SCAN_S) + 0.0013
    stamps = np.arange(0.0, 10.5, 0.01)
    for scale, delta in ((1.0, 0.02), (0.1, 0.0)):
        Rs = _rotations(t_scan, omega=lambda t: scale * _omega(t))
        gyro = scale * _omega(stamps - delta) + rng.normal(0, 0.1, (len(stamps), 3))
        est = TimeOffsetEstimator()
        for a in range(len(t_scan) - 1):
            i = _window(stamps, t_scan[a], t_scan[a + 1])
            est.add_pair(t_scan[a], Rs[a], t_scan[a + 1], Rs[a + 1], np.zeros(3), stamps[i], gyro[i])
        e = est.estimate()
        if scale == 1.0:
            assert abs(e.delta - delta) < 3 * e.sigma and e.sigma < 0.005, e
            assert est.s_dr / est.s_dd < 0.6 * delta                 # least squares' attenuated reading
        else:
            assert e is None or e.sigma > 0.01, e                    # nothing the pipeline would act on


def test_steady_turn_carries_no_offset_information():
    est = TimeOffsetEstimator()
    w = np.array([0.1, -0.2, 0.5])
    stamps = np.arange(0.0, 3.0, 1 / RATE_HZ)
    for t in np.arange(0.5, 2.5, SCAN_S):
        inside = (stamps >= t - 0.01) & (stamps <= t + SCAN_S + 0.01)
        est.add_pair(t, so3.exp(w * t), t + SCAN_S, so3.exp(w * (t + SCAN_S)), np.zeros(3),
                     stamps[inside], np.tile(w, (inside.sum(), 1)))
    assert est.estimate() is None                       # D = 0: sum D.D vanishes


def test_pairs_without_imu_cover_with_a_knock_or_a_failed_update_are_not_used():
    est = TimeOffsetEstimator()
    stamps = np.arange(0.0, 1.0, 0.005)
    gyro = _omega(stamps)
    assert not est.add_pair(0.5, np.eye(3), 0.6, np.eye(3), np.zeros(3), stamps[stamps > 0.52], gyro[stamps > 0.52])
    assert not est.add_pair(0.5, np.eye(3), 0.6, so3.exp(np.array([0.3, 0, 0])), np.zeros(3), stamps, gyro)
    knock = gyro.copy()
    knock[110:112, 0] += 4.0                            # 4 rad/s for 10 ms: a knock on the frame
    assert not est.add_pair(0.5, np.eye(3), 0.6, so3.exp(np.array([0.3, 0, 0])), np.zeros(3), stamps, knock)
    assert est.pairs == 0 and est.estimate() is None


def test_pipeline_keeps_its_clock_offset_over_resets_and_moves_buffered_samples():
    pipe = LioPipeline(LioConfig(imu=ImuConfig(time_offset=0.01)))
    for i in range(5):
        pipe.add_imu(1.0 + 0.01 * i, np.zeros(3), np.array([0, 0, 9.81]))
    assert pipe.time_offset == 0.01 and pipe.imu[0].t == pytest.approx(0.99)
    pipe.reset()
    assert pipe.time_offset == 0.01                     # a property of the hardware, not the run
    with pytest.raises(ValueError, match="offset_max_sigma"):
        ImuConfig(offset_max_sigma=0.0)
