"""Motion compensation: every point moved to the LiDAR frame at scan end using the IMU track.

Points are grouped by distinct time (an Ouster scan has one per column), so the transforms are
computed once per time, not once per point. The per-time transforms are kept so points of the
deskewed cloud can be mapped back into the raw (distorted) scan, as COIN-LIO's photometric
residuals need.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from coin_lio.core.imu_propagation import ImuTrack
from coin_lio.core.motion_kernel import lidar_motion_kernel, time_positions, transform_indexed
from coin_lio.core.state import NavState


@dataclass
class DeskewResult:
    points: np.ndarray       # (N, 3) LiDAR frame at scan end
    times: np.ndarray        # (U,) distinct point times, s
    index: np.ndarray        # (N,) which distinct time each point has
    R_end_t: np.ndarray      # (U, 3, 3) rotation LiDAR(t) -> LiDAR(end)
    t_end_t: np.ndarray      # (U, 3) translation of the same transform

    def redistort(self, points_end: np.ndarray, time_index: np.ndarray) -> np.ndarray:
        """Map scan-end-frame points back into the LiDAR frame at their own time."""
        R = self.R_end_t[time_index]
        return np.einsum("nji,nj->ni", R, points_end - self.t_end_t[time_index])


def lidar_motion(times: np.ndarray, track: ImuTrack, end: NavState) -> tuple[np.ndarray, np.ndarray]:
    """Transforms LiDAR(t) -> LiDAR(scan end) for times (U,): R (U, 3, 3), t (U, 3)."""
    tr = track
    return lidar_motion_kernel(np.ascontiguousarray(times, dtype=np.float64).reshape(-1), tr.times, tr.rot,
                               tr.pos, tr.vel, tr.acc_w, tr.omega, end.rot, end.pos, end.rot_il, end.pos_il)


def deskew(points: np.ndarray, point_times: np.ndarray, track: ImuTrack, end: NavState,
           motion: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> DeskewResult:
    """points (N, 3) LiDAR frame at their times point_times (N,) s -> scan-end LiDAR frame.
    motion: (times (U,) increasing, R, t) = (times, *lidar_motion(times, track, end)) already
    made for this scan (the photometric image's, one per column), used when it holds every
    point time (else the transforms are made here)."""
    if motion is not None and len(motion[0]) and len(point_times):
        times, R, t = motion
        index, equal, _ = time_positions(np.ascontiguousarray(times, np.float64),
                                         np.ascontiguousarray(point_times, np.float64).reshape(-1))
        if equal:
            return DeskewResult(transform_indexed(R, t, index, _points(points)), times, index, R, t)
    times, index = np.unique(point_times, return_inverse=True)
    R, t = lidar_motion(times, track, end)
    return DeskewResult(transform_indexed(R, t, index, _points(points)), times, index, R, t)


def _points(points: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(points, dtype=np.float64).reshape(-1, 3)
