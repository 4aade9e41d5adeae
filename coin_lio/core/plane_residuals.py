"""FAST-LIO2 point-to-plane correspondences: a plane through each point's k nearest map points,
kept only when the neighbours are close, planar, and the point fits it well enough."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from coin_lio.config import GeometryConfig
from coin_lio.core.local_map import LocalMap
from coin_lio.core.plane_kernel import fit_planes_kernel


@dataclass
class Planes:
    """Planes n . p + d = 0 (|n| = 1) matched to the scan points `point_index`."""

    point_index: np.ndarray   # (M,) into the scan's points
    normal: np.ndarray        # (M, 3) world frame
    d: np.ndarray             # (M,)

    def __len__(self) -> int:
        return len(self.point_index)


def fit_planes(points_w: np.ndarray, points_body: np.ndarray, local_map: LocalMap,
               cfg: GeometryConfig) -> Planes:
    """Match world points (N, 3) to map planes; points_body (N, 3) for the range-based score."""
    k = cfg.num_neighbors
    sq, idx = local_map.knn(points_w, k, max_dist=float(np.sqrt(cfg.max_neighbor_sq_dist)) + 1e-6)
    # Plane by principal components (FAST-LIO solves A x = -1, which breaks for planes through
    # the world origin): the normal is the direction of least spread of the neighbours.
    keep, n, d = fit_planes_kernel(local_map.points, idx, sq, points_w, points_body,
                                   float(cfg.max_neighbor_sq_dist), float(cfg.plane_threshold),
                                   float(cfg.min_score))
    return Planes(keep, n, d)
