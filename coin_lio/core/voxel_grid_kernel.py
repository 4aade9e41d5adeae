"""Compiled (numba) kernels of the map's voxel grid: cells of edge `cell` (m) in a hash table, each
holding the indices of the map points inside it, and an exact k-nearest-neighbour search over it.

The map keeps one point per voxel, so a cell of `ratio` voxels per edge holds at most ratio^3
points: a fixed-width row of `cell_pts`. The search takes the queries cell by cell (sorted by cell
key), gathers the points of the 3x3x3 cells around each query cell once for all the queries in it
(indices and coordinates side by side: each query's distance pass reads contiguous memory), and
keeps a query's k best only when they are provably the k nearest (the k-th is closer than the
block's boundary); otherwise it widens shell by shell, as far as `max_dist` asks.

Compiled on first use and cached beside this file (numba cache=True).
"""
from __future__ import annotations

import numpy as np
from coin_lio.kernel_cache import njit

from coin_lio.core.voxel_kernel import BITS, OFFSET

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
MAX_SHELL = 6                       # beyond this ring of cells a query scans every map point


@njit(cache=True, nogil=True, error_model="numpy")
def _key(cx: int, cy: int, cz: int) -> np.int64:
    return ((np.int64(cx + OFFSET) << np.int64(2 * BITS)) | (np.int64(cy + OFFSET) << np.int64(BITS))
            | np.int64(cz + OFFSET))


@njit(cache=True, nogil=True, error_model="numpy")
def _slot(key: np.int64, shift: np.uint64) -> int:
    """First slot of `key` (Fibonacci hashing of the whole key; hashing the (x, y) column plus z,
    to keep a column's cells side by side, clustered the probes and was slower)."""
    return np.int64((np.uint64(key) * _GOLDEN) >> shift)


@njit(cache=True, nogil=True, error_model="numpy")
def _lookup(table: np.ndarray, shift: np.uint64, key: np.int64) -> int:
    """Cell index of `key` in table (cap, 2) [key, cell], or -1 (shift: 64 - log2 cap)."""
    mask = table.shape[0] - 1
    h = _slot(key, shift)
    while True:
        k = table[h, 0]
        if k == key:
            return table[h, 1]
        if k == -1:
            return -1
        h = (h + 1) & mask


@njit(cache=True, nogil=True, error_model="numpy")
def grid_insert(table: np.ndarray, cell_pts: np.ndarray, cell_n: np.ndarray,
                n_cells: int, points: np.ndarray, start: int, voxel: float, ratio: int) -> int:
    """Add points[start:] (N, 3) to their cells (`ratio` voxels of edge `voxel` m per cell edge,
    found from the voxel index as the map's voxel keys are, so a cell never holds more than its
    ratio^3 voxels); returns the new number of cells, or -1 when a cell is full (the caller broke
    the one-point-per-voxel rule). The caller sizes the table (load <= 0.5) and the cell arrays."""
    mask = table.shape[0] - 1
    shift = np.uint64(64 - int(np.log2(table.shape[0])))
    width = cell_pts.shape[1]
    for i in range(start, points.shape[0]):
        key = _key(int(np.floor(points[i, 0] / voxel)) // ratio, int(np.floor(points[i, 1] / voxel)) // ratio,
                   int(np.floor(points[i, 2] / voxel)) // ratio)
        h = _slot(key, shift)
        while True:
            k = table[h, 0]
            if k == key:
                c = table[h, 1]
                break
            if k == -1:
                c = n_cells
                table[h, 0] = key
                table[h, 1] = c
                cell_n[c] = 0
                n_cells += 1
                break
            h = (h + 1) & mask
        if cell_n[c] >= width:
            return -1
        cell_pts[c, cell_n[c]] = i
        cell_n[c] += 1
    return n_cells


@njit(cache=True, nogil=True, error_model="numpy")
def _push(best_d: np.ndarray, best_i: np.ndarray, found: int, k: int, d: float, i: int) -> int:
    """Insert (d, i) into the ascending k-best lists holding `found` entries; returns the count."""
    if found == k and d >= best_d[k - 1]:
        return found
    j = found if found < k else k - 1
    while j > 0 and best_d[j - 1] > d:
        best_d[j] = best_d[j - 1]
        best_i[j] = best_i[j - 1]
        j -= 1
    best_d[j] = d
    best_i[j] = i
    return found + 1 if found < k else k


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _offer(points: np.ndarray, p: int, qx: float, qy: float, qz: float, max_sq: float,
           best_d: np.ndarray, best_i: np.ndarray, found: int, k: int) -> int:
    """Map point p as a candidate neighbour of (qx, qy, qz): pushed when closer than max_sq."""
    ex, ey, ez = points[p, 0] - qx, points[p, 1] - qy, points[p, 2] - qz
    d = ex * ex + ey * ey + ez * ez
    if d < max_sq:
        return _push(best_d, best_i, found, k, d, p)
    return found


@njit(cache=True, nogil=True, error_model="numpy")
def grid_knn(points: np.ndarray, table: np.ndarray, cell_pts: np.ndarray,
             cell_n: np.ndarray, cell: float, queries: np.ndarray, order: np.ndarray, k: int,
             max_dist: float) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest map points (N, 3) of each query (Q, 3) closer than max_dist (m), visited in
    `order` (queries sorted by cell). Returns ascending squared distances (Q, k) and indices (Q, k);
    inf and N where fewer than k lie within max_dist."""
    n = points.shape[0]
    Q = queries.shape[0]
    width = cell_pts.shape[1]
    shift = np.uint64(64 - int(np.log2(table.shape[0])))
    out_d = np.full((Q, k), np.inf)
    out_i = np.full((Q, k), n, dtype=np.int64)
    max_sq = max_dist * max_dist
    # the block's points: indices and coordinates side by side (one gather per query cell; the
    # queries' distance loop then reads contiguous memory and vectorises)
    buf = np.empty(27 * width, dtype=np.int64)
    bx, by, bz, dd = np.empty(27 * width), np.empty(27 * width), np.empty(27 * width), np.empty(27 * width)
    n_buf = 0
    best_d = np.empty(k)
    best_i = np.empty(k, dtype=np.int64)
    prev = np.int64(-1)
    for oi in range(Q):
        q = order[oi]
        qx, qy, qz = queries[q, 0], queries[q, 1], queries[q, 2]
        cx, cy, cz = int(np.floor(qx / cell)), int(np.floor(qy / cell)), int(np.floor(qz / cell))
        key = _key(cx, cy, cz)
        if key != prev:               # a new query cell: gather its 3x3x3 block once
            prev = key
            n_buf = 0
            for dx in range(-1, 2):
                for dy in range(-1, 2):
                    for dz in range(-1, 2):
                        c = _lookup(table, shift, _key(cx + dx, cy + dy, cz + dz))
                        if c >= 0:
                            for j in range(cell_n[c]):
                                p = cell_pts[c, j]
                                buf[n_buf] = p
                                bx[n_buf], by[n_buf], bz[n_buf] = points[p, 0], points[p, 1], points[p, 2]
                                n_buf += 1
        for j in range(n_buf):
            ex, ey, ez = bx[j] - qx, by[j] - qy, bz[j] - qz
            dd[j] = ex * ex + ey * ey + ez * ez
        found = 0
        limit = max_sq                # the k-th best so far, once there are k: most points fail it
        for j in range(n_buf):
            if dd[j] < limit:
                found = _push(best_d, best_i, found, k, dd[j], buf[j])
                if found == k:
                    limit = min(best_d[k - 1], max_sq)
        # distance from the query to the block's boundary: nothing outside is closer
        bound = min(qx - (cx - 1) * cell, (cx + 2) * cell - qx, qy - (cy - 1) * cell,
                    (cy + 2) * cell - qy, qz - (cz - 1) * cell, (cz + 2) * cell - qz)
        r = 1
        while not ((found == k and best_d[k - 1] <= bound * bound) or bound >= max_dist):
            r += 1
            if r > MAX_SHELL:         # far from the map: every point
                found = 0
                for p in range(n):
                    found = _offer(points, p, qx, qy, qz, max_sq, best_d, best_i, found, k)
                break
            for dx in range(-r, r + 1):
                for dy in range(-r, r + 1):
                    for dz in range(-r, r + 1):
                        if max(abs(dx), abs(dy), abs(dz)) != r:
                            continue
                        c = _lookup(table, shift, _key(cx + dx, cy + dy, cz + dz))
                        if c >= 0:
                            for j in range(cell_n[c]):
                                found = _offer(points, cell_pts[c, j], qx, qy, qz, max_sq, best_d, best_i,
                                               found, k)
            bound += cell
        for j in range(found):
            out_d[q, j] = best_d[j]
            out_i[q, j] = best_i[j]
    return out_d, out_i
