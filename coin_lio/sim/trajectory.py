"""Body (IMU frame) trajectories with analytic derivatives: what the IMU model differentiates.

SplineTrajectory: a C2 cubic spline P(s) through scene waypoints, traversed with a speed ramp
(static start, then smootherstep up to cruise speed); heading follows the path tangent, plus
profile-dependent yaw swings, roll/pitch sway and shaking, all sums of sinusoids faded in by the
same ramp. Orientation R = Rz(yaw) Ry(pitch) Rx(roll) maps body vectors to the world (z up).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.interpolate import CubicSpline

PROFILES = ("smooth", "dynamic")


@dataclass
class TrajectoryState:
    """Per-time quantities, arrays over N times; everything in the world frame except omega."""

    p: np.ndarray       # (N, 3) position of the body origin
    v: np.ndarray       # (N, 3) velocity
    a: np.ndarray       # (N, 3) acceleration
    R: np.ndarray       # (N, 3, 3) world <- body
    omega: np.ndarray   # (N, 3) angular velocity in the body frame


@dataclass
class TrajectoryConfig:
    """Motion profile; None fields take the profile's default (see resolved())."""

    profile: str = "smooth"
    static_duration: float = 1.5         # s at rest before moving (IMU initialisation)
    ramp_duration: float = 2.0           # s from rest to cruise speed
    speed: float | None = None           # m/s cruise (smooth 1.2, dynamic 1.6)
    yaw_rate_peak_deg: float | None = None   # deg/s of the added yaw swings (smooth 0, dynamic 90)
    tilt_deg: float | None = None        # roll/pitch sway amplitude (smooth 2, dynamic 5)
    shake_deg: float | None = None       # fast roll/pitch shake (smooth 0, dynamic 1.5)
    bob_m: float | None = None           # m, vertical/lateral shake (smooth 0, dynamic 0.015)
    initial_tilt_deg: float = 3.0        # max |roll|, |pitch| at rest (random per seed)

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"profile must be one of {PROFILES}, got '{self.profile}'")
        if self.static_duration < 1.0:
            raise ValueError(f"static_duration must be >= 1 s (IMU initialisation), got "
                             f"{self.static_duration}")
        if self.ramp_duration <= 0:
            raise ValueError(f"ramp_duration must be > 0, got {self.ramp_duration}")
        for name in ("speed", "yaw_rate_peak_deg", "tilt_deg", "shake_deg", "bob_m"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if self.speed is not None and not 0 < self.speed <= 20:
            raise ValueError(f"speed must be in (0, 20] m/s, got {self.speed}")

    def resolved(self) -> dict:
        dyn = self.profile == "dynamic"
        defaults = {"speed": 1.6 if dyn else 1.2, "yaw_rate_peak_deg": 90.0 if dyn else 0.0,
                    "tilt_deg": 5.0 if dyn else 2.0, "shake_deg": 1.5 if dyn else 0.0,
                    "bob_m": 0.015 if dyn else 0.0}
        out = asdict(self)
        for key, value in defaults.items():
            if out[key] is None:
                out[key] = value
        return out


class Trajectory:
    """Interface: state(t) for arrays of times in seconds since the sequence start."""

    def state(self, t: np.ndarray) -> TrajectoryState:
        raise NotImplementedError

    def pose(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(R (N, 3, 3), p (N, 3)) world <- body."""
        s = self.state(np.atleast_1d(np.asarray(t, dtype=np.float64)))
        return s.R, s.p


class LinearTrajectory(Trajectory):
    """Constant velocity and constant yaw rate from (p0, yaw0): handy for tests."""

    def __init__(self, p0=(0.0, 0.0, 0.0), velocity=(0.0, 0.0, 0.0), yaw_deg: float = 0.0,
                 yaw_rate_deg: float = 0.0) -> None:
        self.p0, self.vel = np.asarray(p0, float), np.asarray(velocity, float)
        self.yaw0, self.rate = np.radians(yaw_deg), np.radians(yaw_rate_deg)

    def state(self, t):
        t = np.atleast_1d(np.asarray(t, dtype=np.float64))
        yaw = self.yaw0 + self.rate * t
        zeros = np.zeros_like(t)
        return TrajectoryState(self.p0 + t[:, None] * self.vel, np.tile(self.vel, (t.size, 1)),
                               np.zeros((t.size, 3)), euler_zyx(yaw, zeros, zeros),
                               np.stack([zeros, zeros, zeros + self.rate], axis=1))


class RotatedBody(Trajectory):
    """The motion of `base` seen in a body frame turned by a constant R_base_body (same origin):
    R = R_base R_base_body, omega = R_base_body^T omega_base; p, v, a unchanged. An IMU mounted
    rotated on a rig that follows `base`."""

    def __init__(self, base: Trajectory, R_base_body: np.ndarray) -> None:
        self.base, self.R = base, np.asarray(R_base_body, float)

    def state(self, t):
        s = self.base.state(t)
        return TrajectoryState(s.p, s.v, s.a, s.R @ self.R, s.omega @ self.R)


class Path:
    """C2 cubic spline through waypoints (K, 3), parametrised by chord length (|P'| ~ 1)."""

    def __init__(self, waypoints: np.ndarray, closed: bool) -> None:
        pts = np.asarray(waypoints, dtype=np.float64)
        if pts.ndim != 2 or pts.shape[1] != 3 or len(pts) < 3:
            raise ValueError("waypoints must be (K >= 3, 3)")
        if closed:
            pts = np.vstack([pts, pts[:1]])
        s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
        if np.any(np.diff(s) <= 1e-9):
            raise ValueError("consecutive waypoints must differ")
        self.closed, self.length = closed, float(s[-1])
        self.spline = CubicSpline(s, pts, bc_type="periodic" if closed else "natural")

    def __call__(self, s: np.ndarray, nu: int = 0) -> np.ndarray:
        return self.spline(s, nu)


class _Sines:
    """Sum of sinusoids sum_k A_k sin(w_k t + phi_k) per output column, with two derivatives."""

    def __init__(self, amp: np.ndarray, omega: np.ndarray, phase: np.ndarray) -> None:
        self.amp, self.omega, self.phase = amp, omega, phase   # (K, D) each

    def __call__(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        arg = t[:, None, None] * self.omega + self.phase          # (N, K, D)
        s, c = np.sin(arg), np.cos(arg)
        return ((self.amp * s).sum(1), (self.amp * self.omega * c).sum(1),
                -(self.amp * self.omega ** 2 * s).sum(1))


def _ramp(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Smootherstep e(x) on [0, 1] with e', e'' and its integral G(x); 0 before, 1 after."""
    xc = np.clip(x, 0.0, 1.0)
    inside = (x > 0) & (x < 1)
    e = xc ** 3 * (10 - 15 * xc + 6 * xc ** 2)
    de = np.where(inside, 30 * xc ** 2 * (1 - xc) ** 2, 0.0)
    dde = np.where(inside, 60 * xc * (1 - xc) * (1 - 2 * xc), 0.0)
    g = xc ** 6 - 3 * xc ** 5 + 2.5 * xc ** 4 + np.clip(x - 1.0, 0.0, None)
    return e, de, dde, g


class SplineTrajectory(Trajectory):
    """Scene path + motion profile; deterministic for a seed."""

    def __init__(self, path: Path, config: TrajectoryConfig, duration: float,
                 seed: int = 0) -> None:
        self.path, self.config, self.duration = path, config, float(duration)
        prm = config.resolved()
        self.t0, self.tr, self.v = config.static_duration, config.ramp_duration, prm["speed"]
        needed = self.v * (duration - self.t0 - 0.5 * self.tr)
        if not path.closed and needed > path.length:
            raise ValueError(f"path of {path.length:.0f} m too short for {duration} s at "
                             f"{self.v} m/s ({needed:.0f} m)")
        rng = np.random.default_rng([seed, 0x7A1])
        tilt0 = np.radians(config.initial_tilt_deg) * rng.uniform(-1, 1, 2)
        self.roll0, self.pitch0 = tilt0
        # angles: columns (yaw, pitch, roll); slow sway plus fast shake
        w_slow = 2 * np.pi * rng.uniform([0.08, 0.11], [0.2, 0.25], (3, 2))
        yaw_peak = np.radians(prm["yaw_rate_peak_deg"])
        yaw_w = 2 * np.pi * np.array([0.3, 0.55])
        yaw_a = yaw_peak / (2 * yaw_w[0] + yaw_w[1]) * np.array([2.0, 1.0])
        tilt, shake = np.radians(prm["tilt_deg"]), np.radians(prm["shake_deg"])
        amp = np.array([[yaw_a[0], tilt, tilt], [yaw_a[1], tilt / 2, tilt / 2],
                        [0.0, shake, shake], [0.0, shake / 2, shake / 2]])
        omega = np.vstack([[yaw_w[0], *w_slow[0, :1], *w_slow[1, :1]],
                           [yaw_w[1], *w_slow[0, 1:], *w_slow[1, 1:]],
                           2 * np.pi * rng.uniform(2.0, 3.0, (1, 3)),
                           2 * np.pi * rng.uniform(3.0, 4.5, (1, 3))])
        self.angles = _Sines(amp, omega, rng.uniform(0, 2 * np.pi, amp.shape))
        bob = prm["bob_m"]
        bob_w = 2 * np.pi * np.array([[0.9, 0.9, 1.8]]) * rng.uniform(0.9, 1.1, (1, 3))
        self.shake = _Sines(np.array([[bob / 2, bob / 2, bob]]), bob_w,
                            rng.uniform(0, 2 * np.pi, (1, 3)))

    def state(self, t):
        t = np.atleast_1d(np.asarray(t, dtype=np.float64))
        e, de, dde, g = _ramp((t - self.t0) / self.tr)
        de, dde = de / self.tr, dde / self.tr ** 2
        s, sd, sdd = self.v * self.tr * g, self.v * e, self.v * de
        p1, p2 = self.path(s, 1), self.path(s, 2)
        sh, shd, shdd = self.shake(t)
        p = self.path(s) + e[:, None] * sh
        v = p1 * sd[:, None] + de[:, None] * sh + e[:, None] * shd
        a = (p2 * (sd ** 2)[:, None] + p1 * sdd[:, None] + dde[:, None] * sh
             + 2 * de[:, None] * shd + e[:, None] * shdd)
        ang, angd, _ = self.angles(t)
        heading = np.arctan2(p1[:, 1], p1[:, 0])
        dheading = (p1[:, 0] * p2[:, 1] - p1[:, 1] * p2[:, 0]) / (p1[:, 0] ** 2 + p1[:, 1] ** 2)
        yaw = heading + e * ang[:, 0]
        pitch = self.pitch0 + e * ang[:, 1]
        roll = self.roll0 + e * ang[:, 2]
        yaw_d = dheading * sd + de * ang[:, 0] + e * angd[:, 0]
        pitch_d = de * ang[:, 1] + e * angd[:, 1]
        roll_d = de * ang[:, 2] + e * angd[:, 2]
        return TrajectoryState(p, v, a, euler_zyx(yaw, pitch, roll),
                               euler_zyx_rates(pitch, roll, yaw_d, pitch_d, roll_d))


def euler_zyx(yaw: np.ndarray, pitch: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """(N, 3, 3) Rz(yaw) @ Ry(pitch) @ Rx(roll)."""
    cy, sy, cp, sp, cr, sr = (np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch),
                              np.cos(roll), np.sin(roll))
    return np.stack([
        np.stack([cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr], -1),
        np.stack([sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr], -1),
        np.stack([-sp, cp * sr, cp * cr], -1)], axis=-2)


def euler_zyx_rates(pitch, roll, yaw_d, pitch_d, roll_d) -> np.ndarray:
    """(N, 3) body angular velocity of Rz Ry Rx from the Euler angle rates."""
    cp, sp, cr, sr = np.cos(pitch), np.sin(pitch), np.cos(roll), np.sin(roll)
    return np.stack([roll_d - yaw_d * sp, pitch_d * cr + yaw_d * sr * cp,
                     yaw_d * cr * cp - pitch_d * sr], axis=-1)
