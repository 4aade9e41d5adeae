"""Local map for point-to-plane registration: at most one point per voxel, bounded to a box
around the sensor, with exact k-nearest-neighbour queries.

The search structure is a hash grid of 2x2x2-voxel cells (voxel_grid.py), grown in place as
points arrive (FAST-LIO2's ikd-tree is incremental too; scipy's k-d trees are not). Memory stays
flat: points leaving the box are dropped and the grid is rebuilt over the rest.
"""
from __future__ import annotations

import numpy as np

from coin_lio.config import MapConfig
from coin_lio.core.static_confirmation import StaticConfirmation
from coin_lio.core.voxel_grid import VoxelGrid
from coin_lio.core.voxel_kernel import BITS as _BITS
from coin_lio.core.voxel_kernel import OFFSET as _OFFSET
from coin_lio.core.voxel_kernel import pack_keys, voxel_downsample_kernel

CELL_VOXELS = 2      # search cells of 2x2x2 map voxels: fewest cells x points visited per query


def voxel_index(points: np.ndarray, size: float) -> np.ndarray:
    """(N, 3) int64 voxel coordinates of points (N, 3), offset into the range pack_keys packs
    (21 bits per axis, +-1M voxels; checked)."""
    idx = np.floor(points / size).astype(np.int64) + _OFFSET
    if idx.size and (idx.min() < 0 or idx.max() >= (1 << _BITS)):
        raise ValueError("point outside the representable voxel range")
    return idx


def voxel_keys(points: np.ndarray, size: float) -> np.ndarray:
    """int64 key of the voxel of each point (N, 3)."""
    return pack_keys(voxel_index(points, size))


def voxel_downsample(points: np.ndarray, size: float) -> np.ndarray:
    """Indices of one point per voxel: the one nearest the voxel centre (sorted by voxel)."""
    return _downsample_with_keys(points, size)[0]


def _downsample_with_keys(points: np.ndarray, size: float) -> tuple[np.ndarray, np.ndarray]:
    """voxel_downsample's indices (M,) and their voxel keys (M,) (= voxel_keys of those points)."""
    if len(points) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    idx, keys = voxel_downsample_kernel(np.ascontiguousarray(points, dtype=np.float64), float(size))
    order = np.argsort(keys, kind="stable")    # keys are unique: any sort gives this order; the
    return idx[order], keys[order]             # stable one is ~2x faster here (radix on int64)


class LocalMap:
    def __init__(self, cfg: MapConfig) -> None:
        self.cfg = cfg
        self.points = np.zeros((0, 3))
        self.keys = np.zeros(0, dtype=np.int64)       # sorted; keys[i] is not aligned with points
        self._grid = VoxelGrid(cfg.voxel_size, CELL_VOXELS)
        self._trim_centre: np.ndarray | None = None
        self.pending = StaticConfirmation(cfg.confirm_s) if cfg.confirm_s > 0 else None

    def __len__(self) -> int:
        return len(self.points)

    def insert(self, points_w: np.ndarray, t: float | None = None) -> int:
        """Add world points whose voxel is still empty; returns how many were added. With
        cfg.confirm_s and the scan time t (s), a new voxel waits until seen again (StaticConfirmation);
        t None adds at once (the first scan)."""
        if len(points_w) == 0:
            return 0
        sel, keys = _downsample_with_keys(points_w, self.cfg.voxel_size)
        pts = points_w[sel]
        if len(self.keys):
            pos = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
            fresh = self.keys[pos] != keys
            pts, keys = pts[fresh], keys[fresh]
        if self.pending is not None and t is not None:
            ok = self.pending.confirm(keys, t)
            pts, keys = pts[ok], keys[ok]
        if len(pts) == 0:
            return 0
        self.points = np.vstack([self.points, pts])
        self.keys = np.insert(self.keys, np.searchsorted(self.keys, keys), keys)
        self._grid.add(self.points)
        return len(pts)

    def trim(self, centre: np.ndarray) -> int:
        """Drop points outside the box around `centre` once the sensor moved trim_distance."""
        if self._trim_centre is not None:
            d = centre - self._trim_centre
            if np.sqrt(d.dot(d)) < self.cfg.trim_distance:       # np.linalg.norm's sum, without its dispatch
                return 0
        self._trim_centre = np.array(centre, dtype=float)
        keep = np.all(np.abs(self.points - centre) <= self.cfg.half_extent, axis=1)
        dropped = int((~keep).sum())
        if dropped:
            self.points = self.points[keep]
            self.keys = np.sort(voxel_keys(self.points, self.cfg.voxel_size))
            self._grid.rebuild(self.points)
        return dropped

    def has_point_near(self, queries: np.ndarray) -> np.ndarray:
        """(Q,) bool: a map point within one voxel size of each query (Q, 3)."""
        sq, _ = self.knn(queries, 1, max_dist=self.cfg.voxel_size)
        return np.isfinite(sq[:, 0])

    def knn(self, queries: np.ndarray, k: int, max_dist: float = np.inf) -> tuple[np.ndarray, np.ndarray]:
        """(squared distances (Q, k), indices (Q, k) into self.points); inf/len when missing.

        max_dist bounds the search (m): neighbours farther are reported missing, which keeps the
        search to the cells around each query.
        """
        return self._grid.knn(self.points, queries, k, max_dist)
