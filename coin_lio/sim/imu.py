"""IMU model: specific force and angular rate from a trajectory's analytic derivatives, plus noise.

acc = R^T (a_world - g) + b_a + n_a with g = (0, 0, -9.81) (at rest the IMU reads +9.81 on z),
gyro = omega_body + b_g + n_g. Noise in continuous-time densities (Kalibr convention): white noise
sigma per sample = density * sqrt(rate); biases random-walk with sigma = density_rw * sqrt(dt).
The defaults give a per-sample sigma of 0.1 (m/s^2, rad/s) at 100 Hz -- FAST-LIO's acc_cov/gyr_cov
= 0.1 read as standard deviations (FAST-LIO uses them as per-sample variances: a conservative
filter tuning over this truth).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from coin_lio.sim.trajectory import Trajectory

GRAVITY = np.array([0.0, 0.0, -9.81])


@dataclass
class ImuConfig:
    rate_hz: float = 100.0
    acc_noise_density: float = 0.01      # m/s^2/sqrt(Hz)
    gyr_noise_density: float = 0.01      # rad/s/sqrt(Hz)
    acc_bias_rw: float = 1e-3            # m/s^3/sqrt(Hz)
    gyr_bias_rw: float = 1e-4            # rad/s^2/sqrt(Hz)
    acc_bias_init_sigma: float = 0.03    # m/s^2, initial bias drawn per seed
    gyr_bias_init_sigma: float = 0.003   # rad/s
    gravity: float = 9.81
    frame_id: str = "os_imu"

    def __post_init__(self) -> None:
        if not 50.0 <= self.rate_hz <= 2000.0:
            raise ValueError(f"rate_hz must be in [50, 2000] (100-400 is typical), "
                             f"got {self.rate_hz}")
        for name in ("acc_noise_density", "gyr_noise_density", "acc_bias_rw", "gyr_bias_rw",
                     "acc_bias_init_sigma", "gyr_bias_init_sigma"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 9.0 < self.gravity < 10.5:
            raise ValueError(f"gravity must be near 9.81 m/s^2, got {self.gravity}")

    @classmethod
    def noiseless(cls, rate_hz: float = 100.0) -> "ImuConfig":
        return cls(rate_hz=rate_hz, acc_noise_density=0.0, gyr_noise_density=0.0,
                   acc_bias_rw=0.0, gyr_bias_rw=0.0, acc_bias_init_sigma=0.0,
                   gyr_bias_init_sigma=0.0)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["acc_noise_sigma_per_sample"] = self.acc_noise_density * np.sqrt(self.rate_hz)
        out["gyr_noise_sigma_per_sample"] = self.gyr_noise_density * np.sqrt(self.rate_hz)
        return out


@dataclass
class ImuSamples:
    t: np.ndarray          # (N,) s since the sequence start
    gyro: np.ndarray       # (N, 3) rad/s
    acc: np.ndarray        # (N, 3) m/s^2
    bias_gyro: np.ndarray  # (N, 3) true gyro bias
    bias_acc: np.ndarray   # (N, 3) true accelerometer bias


def ideal_imu(trajectory: Trajectory, t: np.ndarray,
              gravity: float = 9.81) -> tuple[np.ndarray, np.ndarray]:
    """Noise-free (gyro (N, 3), acc (N, 3)) of the body frame at times t (s)."""
    st = trajectory.state(np.atleast_1d(np.asarray(t, dtype=np.float64)))
    g = np.array([0.0, 0.0, -gravity])
    acc = np.einsum("nji,nj->ni", st.R, st.a - g)
    return st.omega.copy(), acc


def simulate_imu(trajectory: Trajectory, duration: float, config: ImuConfig,
                 seed: int = 0) -> ImuSamples:
    """Samples at k / rate for k = 0 .. while t < duration, with noise and drifting biases."""
    n = int(np.floor(duration * config.rate_hz - 1e-9)) + 1
    t = np.arange(n) / config.rate_hz
    gyro, acc = ideal_imu(trajectory, t, config.gravity)
    rng = np.random.default_rng([seed, 0x1A0])
    dt = 1.0 / config.rate_hz
    b_g0 = rng.normal(0.0, config.gyr_bias_init_sigma, 3)
    b_a0 = rng.normal(0.0, config.acc_bias_init_sigma, 3)
    steps_g = rng.normal(0.0, config.gyr_bias_rw * np.sqrt(dt), (n, 3))
    steps_a = rng.normal(0.0, config.acc_bias_rw * np.sqrt(dt), (n, 3))
    steps_g[0] = steps_a[0] = 0.0
    b_g = b_g0 + np.cumsum(steps_g, axis=0)
    b_a = b_a0 + np.cumsum(steps_a, axis=0)
    n_g = rng.normal(0.0, config.gyr_noise_density * np.sqrt(config.rate_hz), (n, 3))
    n_a = rng.normal(0.0, config.acc_noise_density * np.sqrt(config.rate_hz), (n, 3))
    return ImuSamples(t, gyro + b_g + n_g, acc + b_a + n_a, b_g, b_a)
