"""Real-sensor effects of the simulator: one switchable config for the LiDAR and the IMU.

All effects are off by default (an unchanged config gives the bytes it gave before effects
existed). LiDAR effects act on each sweep's range image before the driver's layout is written
(coin_lio.sim.scan_effects); IMU effects act on the samples and their stamps; knocks are short
jolts of the rig added to the trajectory (KnockedBody), so the ground truth, the LiDAR and the
IMU all see them. Everything is drawn from the sequence seed.

Realistic levels (SensorEffects.realistic(), `coin-lio-sim --effects realistic`; chosen, not
measured): packet loss 0.5 % of packets (a loaded host or shared network; a dedicated GigE link
loses far fewer), no column window (a setting, not a defect), IMU stamps 5 ms late
(software-stamped IMU), IMU clipping at +-2 g / +-250 deg/s (ICM-20948 smallest full scales; the
IMU of Ouster OS sensors), a knock every 10 s on average (5 g, 300 deg/s peaks), 0.1 % spurious
returns at 0.5-5 m (light dust), 30 % of depth-edge pixels mixed, 12 pedestrians and 4 vehicles
passing per minute (a busy street or a shared tunnel; coin_lio.sim.movers).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.spatial.transform import Rotation

from coin_lio.sim.imu import ImuConfig, ImuSamples, simulate_imu
from coin_lio.sim.trajectory import Trajectory, TrajectoryState

STANDARD_G = 9.80665        # m/s^2: IMU full-scale ranges are in standard g
VELODYNE_FIRINGS_PER_PACKET = {16: 24, 32: 12, 64: 6}   # VLP-16, HDL-32E, HDL-64E data packets


@dataclass(frozen=True)
class SensorEffects:
    """Switches and levels of the real-sensor effects; the defaults switch every effect off."""

    packet_drop_prob: float = 0.0       # probability that one LiDAR data packet is lost
    columns_per_packet: int = 16        # Ouster measurement columns per UDP lidar packet
    firings_per_packet: int = 0         # Velodyne firings per data packet; 0: by ring count
    #                                     (16 rings: 24, 32: 12, 64: 6)
    column_window: tuple[int, int] | None = None
    #   raw (measurement) columns [first, last], inclusive, wrapping when first > last; the rest
    #   return nothing (Ouster azimuth window; Velodyne: firing index j = azimuth -360 j / cols)
    imu_time_offset: float = 0.0        # s: the IMU sample of true time t is stamped t + offset
    imu_saturation: bool = False        # clip the readings at the full-scale ranges below
    acc_range_g: float = 2.0            # +- g per axis (ICM-20948 ACCEL_FS_SEL = 0)
    gyro_range_dps: float = 250.0       # +- deg/s per axis (ICM-20948 GYRO_FS_SEL = 0)
    knock_rate_hz: float = 0.0          # mean knocks per second (Poisson, after the static start)
    knock_acc_g: float = 5.0            # peak acceleration of a knock, g (random direction)
    knock_gyro_dps: float = 300.0       # peak angular rate of a knock, deg/s (random axis)
    knock_width_s: float = 0.015        # sigma of the knock's Gaussian displacement bump, s
    noise_return_frac: float = 0.0      # share of all pixels replaced by a spurious return
    noise_return_range_m: tuple[float, float] = (0.5, 5.0)   # uniform range of those, m
    mixed_pixel_frac: float = 0.0       # share of depth-edge pixels given a mixed range
    mixed_pixel_min_jump_m: float = 0.5  # range step between horizontal neighbours = an edge
    pedestrians_per_min: float = 0.0    # people passing: along or across the path (coin_lio.sim.movers)
    vehicles_per_min: float = 0.0       # oncoming cars passing beside the path

    def __post_init__(self) -> None:
        def check(ok: bool, what: str) -> None:
            if not ok:
                raise ValueError(f"SensorEffects: {what}")

        check(0.0 <= self.packet_drop_prob < 1.0, "packet_drop_prob must be in [0, 1)")
        check(1 <= self.columns_per_packet <= 128, "columns_per_packet must be in [1, 128]")
        check(0 <= self.firings_per_packet <= 128, "firings_per_packet must be in [0, 128]")
        if self.column_window is not None:
            object.__setattr__(self, "column_window", tuple(int(c) for c in self.column_window))
            check(len(self.column_window) == 2 and min(self.column_window) >= 0,
                  "column_window must be two column indices >= 0 (first, last)")
        check(abs(self.imu_time_offset) <= 1.0, "|imu_time_offset| must be <= 1 s")
        check(1.0 < self.acc_range_g <= 64.0, "acc_range_g must be in (1, 64] g")
        check(0.0 < self.gyro_range_dps <= 8000.0, "gyro_range_dps must be in (0, 8000] deg/s")
        check(0.0 <= self.knock_rate_hz <= 10.0, "knock_rate_hz must be in [0, 10]")
        check(self.knock_acc_g >= 0 and self.knock_gyro_dps >= 0, "knock peaks must be >= 0")
        check(0.002 <= self.knock_width_s <= 0.2, "knock_width_s must be in [0.002, 0.2] s")
        check(0.0 <= self.noise_return_frac <= 0.5, "noise_return_frac must be in [0, 0.5]")
        lo, hi = self.noise_return_range_m
        object.__setattr__(self, "noise_return_range_m", (float(lo), float(hi)))
        check(0.0 < lo < hi <= 100.0, "noise_return_range_m must satisfy 0 < lo < hi <= 100")
        check(0.0 <= self.mixed_pixel_frac <= 1.0, "mixed_pixel_frac must be in [0, 1]")
        check(self.mixed_pixel_min_jump_m > 0, "mixed_pixel_min_jump_m must be > 0")
        check(0.0 <= self.pedestrians_per_min <= 120.0 and 0.0 <= self.vehicles_per_min <= 60.0,
              "pedestrians_per_min must be in [0, 120] and vehicles_per_min in [0, 60]")

    @classmethod
    def realistic(cls, **overrides) -> "SensorEffects":
        """Every defect at the level stated in the module docstring (column window: none)."""
        base = dict(packet_drop_prob=0.005, imu_time_offset=0.005, imu_saturation=True,
                    knock_rate_hz=0.1, noise_return_frac=0.001, mixed_pixel_frac=0.3,
                    pedestrians_per_min=12.0, vehicles_per_min=4.0)
        return cls(**{**base, **overrides})

    def replace(self, **changes) -> "SensorEffects":
        return replace(self, **changes)

    @property
    def lidar_enabled(self) -> bool:
        return (self.packet_drop_prob > 0 or self.column_window is not None
                or self.noise_return_frac > 0 or self.mixed_pixel_frac > 0)

    @property
    def movers_enabled(self) -> bool:
        return self.pedestrians_per_min > 0 or self.vehicles_per_min > 0

    @property
    def knocks_enabled(self) -> bool:
        return self.knock_rate_hz > 0 and (self.knock_acc_g > 0 or self.knock_gyro_dps > 0)

    def enabled(self) -> list[str]:
        """Names of the effects that change the output."""
        on = {"dropped_packets": self.packet_drop_prob > 0,
              "column_window": self.column_window is not None,
              "imu_time_offset": self.imu_time_offset != 0, "imu_saturation": self.imu_saturation,
              "knocks": self.knocks_enabled, "noise_returns": self.noise_return_frac > 0,
              "mixed_pixels": self.mixed_pixel_frac > 0, "moving_objects": self.movers_enabled}
        return [name for name, flag in on.items() if flag]

    def packet_columns(self, sensor: str, rings: int) -> int:
        """Columns (Ouster) or firings (Velodyne) one lost packet takes with it."""
        if sensor == "ouster":
            return self.columns_per_packet
        return self.firings_per_packet or VELODYNE_FIRINGS_PER_PACKET.get(rings, 12)

    def check_columns(self, cols: int) -> None:
        """ValueError when the column window does not fit a sweep of `cols` columns."""
        if self.column_window is not None and max(self.column_window) >= cols:
            raise ValueError(f"column_window {self.column_window} outside the {cols} columns")

    def imu_stamp_note(self) -> str:
        dt = self.imu_time_offset
        return (f"; but imu_time_offset = {dt} s: the sample of true time t is stamped t + {dt}"
                if dt else "")

    def describe(self, sensor: str, rings: int, cols: int, knocks: "Knocks | None" = None,
                 movers: list | None = None) -> dict:
        """The sequence.json 'effects' entry: what was applied, at which level."""
        out: dict = {"enabled": self.enabled()}      # the full config: config.effects
        if self.packet_drop_prob > 0:
            per = self.packet_columns(sensor, rings)
            out["dropped_packets"] = {
                "prob_per_packet": self.packet_drop_prob,
                ("columns_per_packet" if sensor == "ouster" else "firings_per_packet"): per,
                "packets_per_scan": -(-cols // per),
                "missing": "ouster: x y z range intensity reflectivity ambient = 0, t and ring "
                           "kept" if sensor == "ouster" else "velodyne: the points are absent"}
        if self.column_window is not None:
            first, last = self.column_window
            out["column_window"] = {"first": first, "last": last,
                                    "columns": (last - first) % cols + 1, "of": cols}
        if self.imu_time_offset != 0:
            out["imu_time_offset"] = {"seconds": self.imu_time_offset, "compensated_by":
                                      "IMU clock minus LiDAR clock = lio.imu.time_offset = "
                                      "FAST-LIO time_offset_lidar_to_imu of the same value"}
        if self.imu_saturation:
            out["imu_saturation"] = {"acc_range_g": self.acc_range_g,
                                     "acc_limit_mps2": self.acc_range_g * STANDARD_G,
                                     "gyro_range_dps": self.gyro_range_dps,
                                     "gyro_limit_radps": np.radians(self.gyro_range_dps)}
        for name, keys in (("knocks", ("knock_rate_hz", "knock_acc_g", "knock_gyro_dps",
                                       "knock_width_s")),
                           ("noise_returns", ("noise_return_frac", "noise_return_range_m")),
                           ("mixed_pixels", ("mixed_pixel_frac", "mixed_pixel_min_jump_m"))):
            if name in out["enabled"]:
                out[name] = {k: getattr(self, k) for k in keys}
        if knocks is not None:
            out["knocks"]["events"] = knock_summary(knocks)
        if self.movers_enabled:
            out["moving_objects"] = {"pedestrians_per_min": self.pedestrians_per_min,
                                     "vehicles_per_min": self.vehicles_per_min,
                                     "placed": [{"kind": m.kind, "start_m": [round(float(x), 2) for x in m.start],
                                                 "velocity_mps": [round(float(x), 2) for x in m.velocity],
                                                 "active_s": [round(m.t_from, 2), round(m.t_to, 2)]}
                                                for m in (movers or [])]}
        return out


def saturate_imu(gyro: np.ndarray, acc: np.ndarray,
                 effects: SensorEffects) -> tuple[np.ndarray, np.ndarray]:
    """(gyro (N, 3) rad/s, acc (N, 3) m/s^2) clipped per axis at the full-scale ranges."""
    if not effects.imu_saturation:
        return gyro, acc
    g_lim = np.radians(effects.gyro_range_dps)
    a_lim = effects.acc_range_g * STANDARD_G
    return np.clip(gyro, -g_lim, g_lim), np.clip(acc, -a_lim, a_lim)


def recorded_imu(traj: Trajectory, duration: float, config: ImuConfig, seed: int, t0_ns: int,
                 effects: SensorEffects) -> tuple[ImuSamples, np.ndarray, np.ndarray, np.ndarray]:
    """(samples of simulate_imu, stamps (N,) ns, gyro (N, 3) rad/s, acc (N, 3) m/s^2 as recorded)
    covering stamps t0 .. t0 + duration (s): the sample of true time t is stamped
    t0 + t + imu_time_offset (those stamped before t0 dropped: the recording starts at the first
    scan); readings clipped when imu_saturation is on."""
    imu = simulate_imu(traj, duration + max(-effects.imu_time_offset, 0.0), config, seed=seed)
    stamps = t0_ns + np.round((imu.t + effects.imu_time_offset) * 1e9).astype(np.int64)
    gyro, acc = saturate_imu(imu.gyro, imu.acc, effects)
    keep = stamps >= t0_ns
    return imu, stamps[keep], gyro[keep], acc[keep]


@dataclass
class Knocks:
    """Knock events: centre times (K,) s, world directions (K, 3), body axes (K, 3), sigma s,
    displacement amplitude d m and rotation amplitude phi rad of the Gaussian bumps."""

    t: np.ndarray
    direction: np.ndarray
    axis: np.ndarray
    sigma: float
    d: float
    phi: float


def draw_knocks(effects: SensorEffects, seed: int, t_from: float, t_to: float) -> Knocks:
    """Poisson knock times in [t_from, t_to] (s) with random directions, from `seed`."""
    rng = np.random.default_rng([seed, 0xC0C])
    n = int(rng.poisson(effects.knock_rate_hz * max(t_to - t_from, 0.0)))
    t = np.sort(rng.uniform(t_from, max(t_to, t_from), n))
    keep, last = np.zeros(n, bool), -np.inf   # 16 sigma apart at least: bumps never overlap
    for i in range(n):
        keep[i] = t[i] - last >= 16 * effects.knock_width_s
        last = t[i] if keep[i] else last
    unit = rng.standard_normal((2, n, 3))
    unit /= np.linalg.norm(unit, axis=-1, keepdims=True)
    s = effects.knock_width_s
    # peak |acceleration| of d exp(-tau^2 / 2) is d / s^2 (at the centre); peak |rate| of
    # phi exp(-tau^2 / 2) is phi / s exp(-1/2) (at tau = -+1)
    return Knocks(t[keep], unit[0][keep], unit[1][keep], s,
                  effects.knock_acc_g * STANDARD_G * s * s,
                  np.radians(effects.knock_gyro_dps) * s * np.exp(0.5))


class KnockedBody(Trajectory):
    """`base` plus knocks: each a Gaussian bump g = exp(-((t - tc) / sigma)^2 / 2) in position
    (d g along a world direction: the IMU reads d g'' up to d / sigma^2) and in attitude (a body
    rotation by phi g about a body axis). Both return to the base motion within ~4 sigma."""

    def __init__(self, base: Trajectory, knocks: Knocks) -> None:
        self.base, self.knocks = base, knocks

    def state(self, t):
        t = np.atleast_1d(np.asarray(t, dtype=np.float64))
        s = self.base.state(t)
        k = self.knocks
        if len(k.t) == 0:
            return s
        # knocks never overlap (draw_knocks spaces them 16 sigma apart, each acts within
        # 8 sigma): the nearest one is the only one, its rotation about one fixed axis, so
        # E = Exp(rotvec) and omega = E^T omega_base + d(rotvec)/dt exactly
        idx = np.searchsorted(k.t, t)
        lo, hi = np.clip(idx - 1, 0, len(k.t) - 1), np.clip(idx, 0, len(k.t) - 1)
        j = np.where(np.abs(t - k.t[lo]) <= np.abs(t - k.t[hi]), lo, hi)     # nearest knock
        tau = (t - k.t[j]) / k.sigma                                       # (N,)
        g = np.where(np.abs(tau) < 8.0, np.exp(-0.5 * tau ** 2), 0.0)
        g1, g2 = -tau / k.sigma * g, (tau ** 2 - 1.0) / k.sigma ** 2 * g  # d/dt, d2/dt2
        u, m = k.direction[j], k.axis[j]                                   # (N, 3) each
        p, v, a = (base + k.d * x[:, None] * u for base, x in ((s.p, g), (s.v, g1), (s.a, g2)))
        E = Rotation.from_rotvec(k.phi * g[:, None] * m).as_matrix()      # (N, 3, 3) body
        omega = np.einsum("nji,nj->ni", E, s.omega) + k.phi * g1[:, None] * m
        return TrajectoryState(p, v, a, s.R @ E, omega)


def add_knocks(traj: Trajectory, effects: SensorEffects, seed: int, t_from: float,
               t_to: float) -> tuple[Trajectory, Knocks | None]:
    """(KnockedBody over traj, its knocks) when knocks are on, else (traj, None)."""
    if not effects.knocks_enabled:
        return traj, None
    knocks = draw_knocks(effects, seed, t_from, t_to)
    return KnockedBody(traj, knocks), knocks


def knock_summary(knocks: Knocks) -> dict:
    """For sequence.json: the knock times (s since the start) and their sizes."""
    return {"t_s": np.round(knocks.t, 6), "displacement_m": knocks.d,
            "rotation_deg": np.degrees(knocks.phi), "sigma_s": knocks.sigma}

