"""FAST-LIO2 point-to-plane correspondences: a plane through each point's k nearest map points,
kept only when the neighbours are close, planar, and the point fits it well enough."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from coin_lio.config import GeometryConfig
from coin_lio.core.local_map import LocalMap


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
    ok = np.all(np.isfinite(sq), axis=1) & (sq[:, -1] <= cfg.max_neighbor_sq_dist)
    cand = np.flatnonzero(ok)
    if len(cand) == 0:
        return Planes(cand, np.zeros((0, 3)), np.zeros(0))
    nb = local_map.points[idx[cand]]                      # (M, k, 3)
    # Plane by principal components (FAST-LIO solves A x = -1, which breaks for planes through
    # the world origin): the normal is the direction of least spread of the neighbours.
    centroid = nb.mean(axis=1)
    n = smallest_eigenvector(_scatter(nb - centroid[:, None, :]))    # (M, 3), unit
    d = -np.einsum("mj,mj->m", n, centroid)
    planar = np.all(np.abs(np.einsum("mkj,mj->mk", nb, n) + d[:, None]) <= cfg.plane_threshold, axis=1)
    pd = np.einsum("mj,mj->m", points_w[cand], n) + d
    score = 1.0 - 0.9 * np.abs(pd) / np.sqrt(np.linalg.norm(points_body[cand], axis=1) + 1e-9)
    keep = planar & (score > cfg.min_score)
    return Planes(cand[keep], n[keep], d[keep])


def _scatter(diff: np.ndarray) -> np.ndarray:
    """(M, 3, 3) sum_k diff_k diff_k^T of diff (M, k, 3): six column products, half the time of
    the batched einsum (0.7 vs 1.5 ms for 4000 x 5 here)."""
    x, y, z = (np.ascontiguousarray(diff[..., j]) for j in range(3))     # (M, k) each
    C = np.empty((len(diff), 3, 3))
    C[:, 0, 0], C[:, 1, 1], C[:, 2, 2] = (x * x).sum(1), (y * y).sum(1), (z * z).sum(1)
    C[:, 0, 1] = C[:, 1, 0] = (x * y).sum(1)
    C[:, 0, 2] = C[:, 2, 0] = (x * z).sum(1)
    C[:, 1, 2] = C[:, 2, 1] = (y * z).sum(1)
    return C


def smallest_eigenvector(C: np.ndarray) -> np.ndarray:
    """Unit eigenvector of the smallest eigenvalue of symmetric PSD 3x3 matrices C (M, 3, 3).

    The adjugate adj(C) = sum_i (prod_{j != i} lambda_j) v_i v_i^T is dominated by the smallest
    eigenvalue's vector; two power steps on it refine the best column. ~10x faster than a
    batched eigh and exact enough for planar neighbourhoods (non-planar ones are rejected).
    """
    a, b, c = C[:, 0, 0], C[:, 1, 1], C[:, 2, 2]
    d, e, f = C[:, 0, 1], C[:, 0, 2], C[:, 1, 2]
    adj = np.empty_like(C)
    adj[:, 0, 0], adj[:, 1, 1], adj[:, 2, 2] = b * c - f * f, a * c - e * e, a * b - d * d
    adj[:, 0, 1] = adj[:, 1, 0] = e * f - d * c
    adj[:, 0, 2] = adj[:, 2, 0] = d * f - e * b
    adj[:, 1, 2] = adj[:, 2, 1] = d * e - a * f
    norms = np.einsum("mij,mij->mj", adj, adj)
    v = adj[np.arange(len(C)), :, np.argmax(norms, axis=1)]
    for _ in range(2):
        v = np.einsum("mij,mj->mi", adj, v)
        v /= np.linalg.norm(v, axis=1, keepdims=True) + 1e-300
    return v
