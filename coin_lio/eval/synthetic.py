"""A tiny ray-cast LiDAR + IMU sequence (a box room with pillars) for tests and smoke runs of the
bench runner. Not the simulator (coin_lio.sim): no intensity model, no noise model, few beams.

Ground truth is the IMU body pose; the LiDAR sits at T_imu_lidar (with the Ouster 180-degree yaw by
default), so runs on it exercise extrinsic and frame handling. Points are measured column by column
while the rig moves (skewed scans); per-point time t = ns since scan start, header stamp = scan start.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

GRAVITY = 9.81
ROOM = (np.array([-14.0, -7.0, -1.5]), np.array([16.0, 9.0, 4.5]))
PILLARS = [((2.0, 3.0, -1.5), (3.0, 4.0, 4.5)), ((6.0, -4.0, -1.5), (7.5, -3.0, 2.0)),
           ((-4.0, 2.5, -1.5), (-3.0, 5.0, 1.0)), ((9.0, 2.0, -1.5), (9.5, 6.0, 3.0)),
           ((-6.0, -5.0, 0.5), (-2.0, -4.0, 1.5)), ((12.0, -5.0, -1.5), (13.0, 0.0, 0.5)),
           ((0.5, -3.0, -1.5), (1.0, -2.0, 4.5)), ((4.0, 1.5, -1.5), (4.6, 2.1, 4.5)),
           ((-1.5, 1.8, -1.5), (-1.0, 2.4, 4.5)), ((5.5, -2.2, -1.5), (6.0, -1.6, 4.5)),
           ((-8.0, 0.5, -1.5), (-7.0, 1.5, 4.5)), ((14.0, 3.0, -1.5), (15.0, 4.0, 4.5))]


def _default_T_imu_lidar() -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = Rotation.from_euler("z", 180.0, degrees=True).as_matrix()
    T[:3, 3] = [0.006, -0.012, 0.044]
    return T


@dataclass
class SyntheticRig:
    rows: int = 16
    cols: int = 256
    lidar_hz: float = 10.0
    imu_hz: float = 100.0
    fov_deg: float = 45.0
    max_range: float = 40.0
    speed: float = 1.0               # forward m/s (world x)
    yaw_amp: float = 0.3             # rad
    t0: float = 1_700_000_000.0      # s
    dropout: float = 0.02            # fraction of invalid (0, 0, 0) points
    # Per-scan random offset of each beam's elevation (deg). Perfectly planar walls seen by few,
    # fixed beams give every scan the same ring pattern, and point-to-point ICP (KISS-ICP, rko_lio)
    # then sticks to zero motion (~30 % short here); the jitter breaks it as rough surfaces do.
    beam_jitter_deg: float = 1.0
    seed: int = 0
    T_imu_lidar: np.ndarray = field(default_factory=_default_T_imu_lidar)

    # ---- motion of the IMU body (analytic, so the IMU is exact) ----
    # Static for `static_s`, then a smooth-step ramp over `ramp_s` into the motion along the phase u.
    static_s: float = 0.5
    ramp_s: float = 1.0

    def _phase(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(u, du/dt, d2u/dt2) of the motion phase at absolute times t."""
        s = np.asarray(t, float) - self.t0 - self.static_s
        x = np.clip(s / self.ramp_s, 0.0, 1.0)
        u = np.where(s < self.ramp_s, self.ramp_s * (x ** 3 - x ** 4 / 2), s - self.ramp_s / 2)
        du = 3 * x ** 2 - 2 * x ** 3
        ddu = np.where(s < self.ramp_s, (6 * x - 6 * x ** 2) / self.ramp_s, 0.0)
        return u, du, ddu

    def imu_pose(self, t: np.ndarray) -> np.ndarray:
        """(N, 4, 4) T_world_imu at absolute times t."""
        u = self._phase(np.atleast_1d(np.asarray(t, float)))[0]
        T = np.tile(np.eye(4), (u.size, 1, 1))
        T[:, :3, :3] = Rotation.from_euler("z", self.yaw_amp * np.sin(u)[:, None]).as_matrix()
        T[:, :3, 3] = np.stack([self.speed * u, 0.3 * np.sin(u), 0.05 * np.sin(2 * u)], axis=1)
        return T

    def imu_sample(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """(gyro rad/s, specific force m/s^2) in the IMU frame at absolute time t."""
        u, du, ddu = (float(v) for v in self._phase(np.asarray(t)))
        dp = np.array([self.speed, 0.3 * np.cos(u), 0.1 * np.cos(2 * u)])
        d2p = np.array([0.0, -0.3 * np.sin(u), -0.2 * np.sin(2 * u)])
        acc_world = d2p * du ** 2 + dp * ddu + np.array([0.0, 0.0, GRAVITY])
        R = Rotation.from_euler("z", self.yaw_amp * np.sin(u)).as_matrix()
        return np.array([0.0, 0.0, self.yaw_amp * np.cos(u) * du]), R.T @ acc_world

    def lidar_pose(self, t: np.ndarray) -> np.ndarray:
        return self.imu_pose(t) @ self.T_imu_lidar

    # ---- LiDAR ----
    def beam_dirs(self, jitter_deg: np.ndarray | float = 0.0) -> np.ndarray:
        """(rows, cols, 3) unit directions in the LiDAR frame (top row first, azimuth decreasing)."""
        elev = np.linspace(self.fov_deg / 2, -self.fov_deg / 2, self.rows) + jitter_deg
        elev = np.deg2rad(elev)[:, None]
        azim = (np.pi - 2 * np.pi * np.arange(self.cols) / self.cols)[None, :]
        return np.stack(np.broadcast_arrays(np.cos(elev) * np.cos(azim), np.cos(elev) * np.sin(azim),
                                            np.sin(elev)), axis=-1)

    def scan(self, t_start: float, rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(xyz (rows, cols, 3) float32 in the LiDAR frame, zeros where invalid; t_rel_ns (cols,))."""
        t_rel_ns = (np.arange(self.cols) * (1e9 / self.lidar_hz / self.cols)).astype(np.int64)
        poses = self.lidar_pose(t_start + t_rel_ns * 1e-9)            # (cols, 4, 4)
        jitter = rng.uniform(-1.0, 1.0, self.rows) * self.beam_jitter_deg if rng is not None else 0.0
        dirs = self.beam_dirs(jitter)
        d_world = np.einsum("cij,rcj->rci", poses[:, :3, :3], dirs)   # (rows, cols, 3)
        origin = np.broadcast_to(poses[None, :, :3, 3], d_world.shape)
        ranges = _ray_cast(origin.reshape(-1, 3), d_world.reshape(-1, 3)).reshape(self.rows, self.cols)
        xyz = (dirs * ranges[..., None]).astype(np.float32)
        bad = ranges > self.max_range
        if rng is not None and self.dropout > 0:
            bad |= rng.random(bad.shape) < self.dropout
        xyz[bad] = 0.0
        return xyz, t_rel_ns


def _ray_cast(o: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Distance along unit rays d from o to the room walls (from inside) or the nearest pillar."""
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / np.where(np.abs(d) < 1e-12, 1e-12, d)
        lo, hi = ROOM
        best = np.min(np.maximum((lo - o) * inv, (hi - o) * inv), axis=1)
        for plo, phi in PILLARS:
            t1, t2 = (np.asarray(plo) - o) * inv, (np.asarray(phi) - o) * inv
            tmin, tmax = np.max(np.minimum(t1, t2), axis=1), np.min(np.maximum(t1, t2), axis=1)
            hit = (tmax >= tmin) & (tmin > 0.0)
            best = np.where(hit & (tmin < best), tmin, best)
    return best


def write_sequence(out_dir: str | Path, seconds: float = 3.0, rig: SyntheticRig | None = None) -> Path:
    """Write SEQ/bag (MCAP: /ouster/points, /ouster/imu), ground_truth.tum (IMU body),
    metadata.json and sequence.json, as the simulator lays a sequence out. Returns SEQ."""
    from coin_lio.eval.trajectory import Trajectory, write_tum
    from suite_tools.pointcloud2 import OUSTER_ORIGINAL_DTYPE
    from suite_tools.bag_io import BagWriter, make_imu, make_pointcloud2

    rig = rig or SyntheticRig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(rig.seed)
    t0_ns = int(round(rig.t0 * 1e9))
    n_scans, n_imu = int(seconds * rig.lidar_hz), int(seconds * rig.imu_hz) + 1
    period_ns = int(round(1e9 / rig.lidar_hz))
    events = [(t0_ns + k * int(round(1e9 / rig.imu_hz)), 0, k) for k in range(n_imu)]
    events += [(t0_ns + (k + 1) * period_ns, 1, k) for k in range(n_scans)]  # published at scan end
    cloud = np.zeros((rig.rows, rig.cols), OUSTER_ORIGINAL_DTYPE)
    cloud["ring"] = np.arange(rig.rows, dtype=np.uint16)[:, None]
    with BagWriter(out / "bag") as w:
        for t_bag, kind, k in sorted(events):
            if kind == 0:
                gyro, acc = rig.imu_sample(t_bag * 1e-9)
                w.write("/ouster/imu", t_bag, make_imu(t_bag, "os_imu", gyro, acc))
                continue
            stamp_ns = t0_ns + k * period_ns
            xyz, t_rel = rig.scan(stamp_ns * 1e-9, rng)
            cloud["x"], cloud["y"], cloud["z"] = xyz[..., 0], xyz[..., 1], xyz[..., 2]
            rng_mm = np.linalg.norm(xyz, axis=-1) * 1000.0
            cloud["range"], cloud["t"] = rng_mm.astype(np.uint32), t_rel[None, :].astype(np.uint32)
            cloud["intensity"] = 100.0
            w.write("/ouster/points", t_bag, make_pointcloud2(cloud, stamp_ns, "os_lidar", is_dense=False))
    t_gt = t0_ns * 1e-9 + np.arange(int(seconds * 100) + 1) / 100.0
    write_tum(out / "ground_truth.tum", Trajectory.from_poses(t_gt, rig.imu_pose(t_gt)),
              header="T_world_imu of the synthetic rig")
    elev = np.linspace(rig.fov_deg / 2, -rig.fov_deg / 2, rig.rows)
    (out / "metadata.json").write_text(json.dumps({
        "beam_altitude_angles": elev.tolist(), "beam_azimuth_angles": [0.0] * rig.rows,
        "lidar_origin_to_beam_origin_mm": 0.0, "lidar_mode": f"{rig.cols}x{int(rig.lidar_hz)}",
        "data_format": {"pixels_per_column": rig.rows, "columns_per_frame": rig.cols,
                        "pixel_shift_by_row": [0] * rig.rows, "column_window": [0, rig.cols - 1]}}))
    (out / "sequence.json").write_text(json.dumps({
        "name": out.name, "generator": "coin_lio.eval.synthetic",
        "topics": {"points": "/ouster/points", "imu": "/ouster/imu"},
        "frames": {"lidar": "os_lidar", "imu": "os_imu", "ground_truth": "imu"},
        "extrinsics": {"T_lidar_imu": np.linalg.inv(rig.T_imu_lidar).tolist()}}, indent=1))
    return out
