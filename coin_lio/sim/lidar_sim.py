"""LidarSimulator.scan: one sweep with motion distortion, noise, dropouts and the driver's layout.

Every measurement column is cast from the LiDAR pose at its own time (t_start + j * period / W),
so a moving sensor produces a distorted sweep exactly like a real one. Ouster output: organised
(rows, cols) in the ouster-ros "original" layout, raw column order unless destaggered; invalid
pixels are zero (x, y, z, range, intensity, reflectivity) but keep t, ring and ambient.
Velodyne output: unorganised (N,) x, y, z, intensity, ring, time (s since the scan start).
"""
from __future__ import annotations

import numpy as np

from coin_lio.io.ouster_geometry import beam_origins_m, ouster_xyz_lut
from coin_lio.photometric.projection import destagger
from coin_lio.sim.lidar_model import VELODYNE_DTYPE, LidarNoiseConfig, OusterConfig, VelodyneConfig
from coin_lio.sim.scan_effects import apply_scan_effects
from coin_lio.sim.scene import Scene
from coin_lio.sim.sensor_effects import SensorEffects
from coin_lio.sim.trajectory import Trajectory
from suite_tools.pointcloud2 import OUSTER_ORIGINAL_DTYPE


class LidarSimulator:
    """Casts sweeps of an Ouster or Velodyne model; `T_body_lidar` (4x4, m) places the LiDAR
    frame in the trajectory's body (IMU) frame; `effects` adds the LiDAR's real-sensor effects
    (coin_lio.sim.sensor_effects; None or all off: the plain sweep)."""

    def __init__(self, sensor: OusterConfig | VelodyneConfig,
                 noise: LidarNoiseConfig | None = None,
                 T_body_lidar: np.ndarray | None = None,
                 effects: SensorEffects | None = None) -> None:
        self.sensor = sensor
        self.noise = noise if noise is not None else LidarNoiseConfig()
        self.effects = effects if effects is not None and effects.lidar_enabled else None
        self.is_ouster = isinstance(sensor, OusterConfig)
        if self.is_ouster:
            self.meta = sensor.metadata()
            self.T_body_lidar = (self.meta.T_imu_lidar() if T_body_lidar is None
                                 else np.asarray(T_body_lidar, float))
            h, w = sensor.rows, sensor.cols
            dirs, _ = ouster_xyz_lut(self.meta, "os_lidar")
            self.dirs = dirs                                   # (H, W, 3) LiDAR frame
            self.origins, self.range_offset = beam_origins_m(self.meta)   # (W, 3), m
            self.lut_dir, self.lut_off = ouster_xyz_lut(self.meta, sensor.cloud_frame)
            self.col_offsets_ns = (np.arange(w, dtype=np.int64) * sensor.period_ns) // w
            self.point_offsets_s = np.broadcast_to(self.col_offsets_ns * 1e-9, (h, w))
        else:
            self.meta = None
            self.T_body_lidar = (np.eye(4) if T_body_lidar is None
                                 else np.asarray(T_body_lidar, float))
            h, w = sensor.rings, sensor.cols
            alt = np.radians(sensor.altitudes_deg())[:, None]            # (H, 1) firing order
            rot = -np.arange(w) * (2 * np.pi / w)                          # clockwise from +x
            self.dirs = np.stack(np.broadcast_arrays(np.cos(rot) * np.cos(alt),
                                                     np.sin(rot) * np.cos(alt),
                                                     np.sin(alt) + 0 * rot), axis=-1)
            self.origins, self.range_offset = np.zeros((w, 3)), 0.0
            self.col_offsets_ns = (np.arange(w, dtype=np.int64) * sensor.period_ns) // w
            fire = np.arange(h)[:, None] * sensor.laser_period_s
            self.point_offsets_s = self.col_offsets_ns[None, :] * 1e-9 + fire      # (H, W)
            self.ring_of_laser = np.argsort(np.argsort(sensor.altitudes_deg())).astype(np.uint16)
        self.shape = (h, w)
        if effects is not None:
            effects.check_columns(w)
            window = effects.column_window
            self.packet_columns = effects.packet_columns("ouster" if self.is_ouster
                                                         else "velodyne", h)
            if self.is_ouster:     # the sensor's data format says so
                self.meta.columns_per_packet = effects.columns_per_packet
                self.meta.column_window = window if window is not None else (0, w - 1)

    @property
    def period_ns(self) -> int:
        return self.sensor.period_ns

    def rays(self, trajectory: Trajectory, t_start: float) -> tuple[np.ndarray, np.ndarray]:
        """World (origins (H, W, 3), unit directions (H, W, 3)) of a sweep, each beam from the
        LiDAR pose at its firing time (raw column order)."""
        h, w = self.shape
        times = (t_start + self.col_offsets_ns * 1e-9 if self.is_ouster
                 else t_start + self.point_offsets_s.reshape(-1))
        r_wb, p_wb = trajectory.pose(times)
        r_bl, p_bl = self.T_body_lidar[:3, :3], self.T_body_lidar[:3, 3]
        r_wl = r_wb @ r_bl
        p_wl = np.einsum("nij,j->ni", r_wb, p_bl) + p_wb
        if self.is_ouster:      # one pose per column: (W, 3, 3)
            d = np.einsum("wij,hwj->hwi", r_wl, self.dirs)
            o = np.einsum("wij,wj->wi", r_wl, self.origins) + p_wl
            o = np.broadcast_to(o, (h, w, 3))
        else:                   # one pose per point (lasers fire in sequence)
            r_wl, p_wl = r_wl.reshape(h, w, 3, 3), p_wl.reshape(h, w, 3)
            d = np.einsum("hwij,hwj->hwi", r_wl, self.dirs)
            o = p_wl
        return o, d

    def cast(self, scene: Scene, trajectory: Trajectory, t_start: float) -> dict[str, np.ndarray]:
        """Noise-free sweep: per pixel (H, W) the distance along the beam, incidence cosine,
        surface reflectivity and whether anything was hit."""
        h, w = self.shape
        o, d = self.rays(trajectory, t_start)
        t_max = self.sensor.max_range - self.range_offset + 1.0
        fired = t_start + np.broadcast_to(self.point_offsets_s, (h, w)).reshape(-1)   # (H*W,) s
        hits = scene.cast(o.reshape(-1, 3), d.reshape(-1, 3), t_max, fired)
        cos_inc = np.abs(np.einsum("ij,ij->i", hits.normal, d.reshape(-1, 3)))
        sun = np.asarray(scene.sun_direction, float) / np.linalg.norm(scene.sun_direction)
        lit = 0.35 + 0.65 * np.clip(hits.normal @ sun, 0.0, None)
        return {"dist": hits.t.reshape(h, w), "cos": cos_inc.reshape(h, w),
                "refl": hits.reflectivity.reshape(h, w), "hit": hits.hit.reshape(h, w),
                "lit": lit.reshape(h, w), "sky": scene.sky_ambient, "ambient": scene.ambient_level}

    def scan(self, scene: Scene, trajectory: Trajectory, t_start: float,
             rng: np.random.Generator | int | None = None) -> np.ndarray:
        """One sweep starting at t_start (s, trajectory time) as the driver publishes it."""
        rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        c = self.cast(scene, trajectory, t_start)
        nz = self.noise
        h, w = self.shape
        rng_r, rng_s, rng_f, rng_a = (rng.standard_normal((h, w)) for _ in range(4))
        rng_u = rng.random((h, w))
        dist = np.where(c["hit"], c["dist"], 0.0)
        range_m = dist + self.range_offset + nz.range_sigma * rng_r
        signal = nz.signal_gain * c["refl"] * c["cos"] / (dist ** 2 + 1.0)
        signal = np.clip(signal + nz.signal_noise * np.sqrt(signal) * rng_s, 0.0, 65535.0)
        valid = (c["hit"] & (range_m >= self.sensor.min_range) & (range_m <= self.sensor.max_range)
                 & (c["cos"] >= nz.grazing_cos_min) & (signal >= nz.min_signal)
                 & (rng_u >= nz.dropout_prob))
        ambient = np.where(c["hit"], c["ambient"] * c["refl"] * c["lit"], c["sky"])
        ambient = np.clip(ambient + nz.ambient_noise * rng_a, 0.0, 65535.0)
        refl = c["refl"]
        if self.effects is not None:    # draws after the noise: the noise stays the same
            range_m, signal, refl, ambient, valid = apply_scan_effects(
                self.effects, self.packet_columns, self.sensor.min_range, range_m, signal, refl,
                ambient, valid, rng)
        if self.is_ouster:
            return self._ouster_cloud(range_m, signal, refl, ambient, valid, rng_f)
        return self._velodyne_cloud(range_m, refl, valid)

    def _ouster_cloud(self, range_m, signal, refl, ambient, valid, noise_f) -> np.ndarray:
        h, w = self.shape
        range_mm = np.where(valid, np.round(range_m * 1000.0), 0).astype(np.uint32)
        xyz = self.lut_dir * (range_mm * 1e-3)[..., None] + self.lut_off
        xyz = np.where(valid[..., None], xyz, 0.0)
        out = np.zeros((h, w), dtype=OUSTER_ORIGINAL_DTYPE)
        out["x"], out["y"], out["z"] = xyz[..., 0], xyz[..., 1], xyz[..., 2]
        out["intensity"] = np.where(valid, signal, 0.0)
        out["t"] = np.broadcast_to(self.col_offsets_ns.astype(np.uint32), (h, w))
        rfl = np.clip(np.round(refl * 100.0 + self.noise.reflectivity_noise * noise_f), 0, 255)
        out["reflectivity"] = np.where(valid, rfl, 0).astype(np.uint16)
        out["ring"] = np.arange(h, dtype=np.uint16)[:, None]
        out["ambient"] = np.round(ambient).astype(np.uint16)
        out["range"] = range_mm
        if self.sensor.destaggered:
            out = destagger(out, self.meta.pixel_shift_by_row)
        return out

    def _velodyne_cloud(self, range_m, refl, valid) -> np.ndarray:
        xyz = self.dirs * range_m[..., None]                 # (H, W, 3) LiDAR frame
        order = np.argwhere(valid.T)                         # column-major: firing order
        cols, lasers = order[:, 0], order[:, 1]
        out = np.zeros(len(order), dtype=VELODYNE_DTYPE)
        pts = xyz[lasers, cols]
        out["x"], out["y"], out["z"] = pts[:, 0], pts[:, 1], pts[:, 2]
        out["intensity"] = np.clip(np.round(refl[lasers, cols] * 100.0), 0, 255)
        out["ring"] = self.ring_of_laser[lasers]
        out["time"] = self.point_offsets_s[lasers, cols]
        return out
