"""IMU initialisation and forward propagation of the error-state Kalman filter (FAST-LIO2).

Propagation keeps the pose at every IMU sample of the scan (`ImuTrack`), which deskewing uses
to move each point to the scan-end frame (and the photometric part to move it back).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from coin_lio.config import ImuConfig
from coin_lio.core import so3
from coin_lio.core.motion_kernel import interp_rows
from coin_lio.core.propagation_kernel import propagate_kernel
from coin_lio.core.small_linalg_kernel import nearest_rotation_kernel
from coin_lio.core.state import BA, BG, DIM, GRAV, POS, POS_IL, ROT, ROT_IL, NavState


@dataclass
class ImuSample:
    t: float             # s
    gyro: np.ndarray     # (3,) rad/s, IMU frame
    acc: np.ndarray      # (3,) m/s^2 (or g: rescaled at initialisation), IMU frame


@dataclass
class ImuTrack:
    """Piecewise-constant-acceleration motion over a scan; segment k starts at times[k]."""

    times: np.ndarray    # (K,) s
    rot: np.ndarray      # (K, 3, 3) R_WI at segment start
    pos: np.ndarray      # (K, 3)
    vel: np.ndarray      # (K, 3)
    acc_w: np.ndarray    # (K, 3) world acceleration over the segment (gravity included)
    omega: np.ndarray    # (K, 3) body angular rate over the segment (bias removed)

    def shifted(self, delta: float) -> "ImuTrack":
        """The same motion read delta s later: shifted(delta) at t is this track at t + delta."""
        return replace(self, times=self.times - delta)

    def poses_at(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """R_WI (M, 3, 3) and p_WI (M, 3) at times t (M,), extrapolating the nearest segment."""
        k = np.clip(np.searchsorted(self.times, t, side="right") - 1, 0, len(self.times) - 1)
        dt = (t - self.times[k])[:, None]
        R = self.rot[k] @ so3.exp(self.omega[k] * dt)
        p = self.pos[k] + self.vel[k] * dt + 0.5 * self.acc_w[k] * dt**2
        return R, p


class ImuInitializer:
    """Gravity direction, gyro bias and accelerometer scale from the first (static) samples."""

    def __init__(self, cfg: ImuConfig) -> None:
        self.cfg = cfg
        self.samples: list[ImuSample] = []

    def add(self, s: ImuSample) -> None:
        self.samples.append(s)

    @property
    def ready(self) -> bool:
        if len(self.samples) < self.cfg.init_samples:
            return False
        return self.samples[-1].t - self.samples[0].t >= self.cfg.init_duration

    def moving(self) -> bool:
        """True when the data look like motion (the estimate will be biased): accelerometer norm
        spread > 0.5 m/s^2 (after scaling to gravity) or a mean turn rate > 0.2 rad/s."""
        acc = np.array([s.acc for s in self.samples])
        norms = np.linalg.norm(acc, axis=1)
        spread = norms.std() * self.cfg.gravity / max(norms.mean(), 1e-9)
        return bool(spread > 0.5 or np.linalg.norm(np.mean([s.gyro for s in self.samples], axis=0)) > 0.2)

    def initial_state(self) -> tuple[NavState, np.ndarray, float]:
        """(state, covariance (24, 24), accelerometer scale)."""
        acc = np.array([s.acc for s in self.samples])
        gyr = np.array([s.gyro for s in self.samples])
        mean_acc = acc.mean(axis=0)
        norm = np.linalg.norm(mean_acc)
        if not np.isfinite(norm) or norm < 1e-3:
            raise ValueError("IMU initialisation: mean acceleration is zero or invalid")
        state = NavState()
        # World frame: gravity along -z, yaw and position of the first IMU pose (REP-105 odom).
        state.rot = gravity_aligned_rotation(mean_acc / norm)
        state.grav = np.array([0.0, 0.0, -self.cfg.gravity])
        state.bg = gyr.mean(axis=0)
        P = np.eye(DIM)
        P[ROT_IL, ROT_IL] *= 1e-5
        P[POS_IL, POS_IL] *= 1e-5
        P[BG, BG] *= 1e-4
        P[BA, BA] *= 1e-3
        P[GRAV, GRAV] *= 1e-5
        P[POS, POS] *= 1e-6   # the world frame is defined by the first pose
        P[ROT, ROT] *= 1e-6
        return state, P, self.cfg.gravity / norm


def gravity_aligned_rotation(up_body: np.ndarray) -> np.ndarray:
    """R_WI with zero yaw that maps the measured 'up' (unit specific force at rest, IMU frame)
    onto +z of the world."""
    z = np.array([0.0, 0.0, 1.0])
    axis = np.cross(up_body, z)
    s, c = np.linalg.norm(axis), float(np.dot(up_body, z))
    if s < 1e-12:
        return np.eye(3) if c > 0 else np.diag([1.0, -1.0, -1.0])
    return so3.exp(axis / s * np.arctan2(s, c))


def propagate(state: NavState, P: np.ndarray, samples: list[ImuSample], t0: float, t1: float,
              cfg: ImuConfig, acc_scale: float) -> tuple[NavState, np.ndarray, ImuTrack]:
    """Propagate mean and covariance from t0 to t1 through the samples (midpoint inputs).

    `samples` must cover t0..t1 as well as the data allows: the last sample before t0 first,
    then the ones inside; beyond the last sample the last input is held.
    """
    if not samples:
        raise ValueError("propagation needs at least one IMU sample")
    as_f8 = np.ascontiguousarray                 # pos, rot, vel: the kernel copies them (no copy here)
    x = NavState(as_f8(state.pos, np.float64), as_f8(state.rot, np.float64), np.array(state.rot_il),
                 np.array(state.pos_il), as_f8(state.vel, np.float64), np.array(state.bg), np.array(state.ba),
                 np.array(state.grav))
    times = np.array([s.t for s in samples])
    gyro = np.array([s.gyro for s in samples])
    acc = np.array([s.acc for s in samples]) * acc_scale
    # Input knots: t0, every sample strictly inside (t0, t1), t1; inputs interpolated linearly.
    knots = np.concatenate([[t0], times[(times > t0) & (times < t1)], [t1]])
    g_k = interp_samples(knots, times, gyro)
    a_k = interp_samples(knots, times, acc)
    q = np.repeat(np.array([cfg.gyr_noise, cfg.acc_noise, cfg.gyr_bias_noise, cfg.acc_bias_noise], float), 3)
    # the kernel copies rot, pos, vel and P before it moves them
    x.rot, x.pos, x.vel, P, *track = propagate_kernel(knots, g_k, a_k, x.rot, x.pos, x.vel, x.bg, x.ba,
                                                      x.grav, np.ascontiguousarray(P), q)
    tr = ImuTrack(knots[:-1].copy(), *track)
    rot, ok = nearest_rotation_kernel(x.rot)     # compiled: numpy's SVD cost ~90 us inside a scan
    x.rot = rot if ok else so3.orthonormalize(x.rot)
    return x, 0.5 * (P + P.T), tr


def interp_samples(t: np.ndarray, ts: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Linear interpolation of (M, 3) samples at times t, held constant outside (np.interp per
    column, bit for bit, in one compiled pass: six np.interp calls and a stack cost ~25 us)."""
    return interp_rows(np.asarray(t, np.float64), np.asarray(ts, np.float64), np.asarray(values, np.float64))
