"""FAST-LIO2's point-to-plane measurements for the iterated update: the scan's points (scan-end
LiDAR frame) against planes of the local map, neighbours re-searched only when the pose moved."""
from __future__ import annotations

import time

import numpy as np

from coin_lio.config import LioConfig
from coin_lio.core.iekf import Measurements
from coin_lio.core.local_map import LocalMap
from coin_lio.core.plane_kernel import plane_rows_kernel
from coin_lio.core.plane_residuals import Planes, fit_planes
from coin_lio.core.state import NavState


class GeometricResiduals:
    """Point-to-plane measurements, re-searching neighbours only when the pose moved."""

    def __init__(self, body: np.ndarray, local_map: LocalMap, cfg: LioConfig) -> None:
        self.body, self.map, self.cfg = body, local_map, cfg
        self.planes = Planes(np.zeros(0, int), np.zeros((0, 3)), np.zeros(0))
        self.search_pose: np.ndarray | None = None
        self.search_ms = 0.0
        self.last_normals = np.zeros((0, 3))
        self.last: Measurements | None = None

    def __call__(self, x: NavState, iteration: int) -> Measurements:
        T = x.lidar_pose()
        if self.search_pose is None or _moved(self.search_pose, T) > self.cfg.update.research_distance:
            t0 = time.perf_counter()
            world = self.body @ T[:3, :3].T + T[:3, 3]
            self.planes = fit_planes(world, self.body, self.map, self.cfg.geometry)
            self.search_pose = T
            self.search_ms += _ms(t0)
        pl = self.planes
        n = pl.normal
        h, H = plane_rows_kernel(self.body, pl.point_index, n, pl.d, T[:3, :3], T[:3, 3],
                                 x.rot_il, x.pos_il, x.rot)
        if self.cfg.update.estimate_extrinsic:             # the extrinsic's columns too
            p_l = self.body[pl.point_index]
            Rt_n = n @ x.rot                               # R^T n, (M, 3)
            H = np.hstack([H, np.zeros((len(h), 6))])
            _cross_into(H[:, 6:9], p_l, Rt_n @ x.rot_il)
            H[:, 9:12] = Rt_n
        self.last_normals = n
        self.last = Measurements(h, H, np.full(len(h), self.cfg.update.lidar_noise))
        return self.last


def _cross_into(out: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    """out (M, 3) = a x b row by row, as np.cross computes it (bit for bit), without its
    temporaries and dispatch (the extrinsic's columns; the pose's come from plane_rows_kernel)."""
    a0, a1, a2 = a[:, 0], a[:, 1], a[:, 2]
    b0, b1, b2 = b[:, 0], b[:, 1], b[:, 2]
    np.subtract(a1 * b2, a2 * b1, out=out[:, 0])
    np.subtract(a2 * b0, a0 * b2, out=out[:, 1])
    np.subtract(a0 * b1, a1 * b0, out=out[:, 2])


def _moved(T_a: np.ndarray, T_b: np.ndarray) -> float:
    """Translation change plus rotation change (rad x 5 m lever) between two poses."""
    dR = T_a[:3, :3].T @ T_b[:3, :3]
    c = (dR[0, 0] + dR[1, 1] + dR[2, 2] - 1) / 2                # np.trace's order
    angle = np.arccos(min(max(c, -1.0), 1.0))                  # np.clip's result, NaN kept
    d = T_a[:3, 3] - T_b[:3, 3]
    return float(np.sqrt(d.dot(d)) + 5.0 * angle)             # np.linalg.norm's sum, without its dispatch


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1e3
