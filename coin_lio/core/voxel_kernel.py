"""Compiled (numba) voxel downsampling: one point per voxel, the one nearest the voxel centre,
found with a hash table in one pass instead of sorting every point's key (the sort of ~20k keys
was most of the ~1 ms the scan and the map insert each spent here).

Compiled on first use and cached beside this file (numba cache=True).
"""
from __future__ import annotations

import numpy as np
from coin_lio.kernel_cache import njit

BITS = 21                        # per axis: +-1M voxels (voxel_keys packs the same way)
OFFSET = 1 << (BITS - 1)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def pack_keys(idx: np.ndarray) -> np.ndarray:
    """int64 keys (N,) of integer cell coordinates (N, 3) already offset by OFFSET (BITS per axis;
    the caller checks the range, or accepts that a coordinate outside it aliases)."""
    return (idx[:, 0] << (2 * BITS)) | (idx[:, 1] << BITS) | idx[:, 2]


@njit(cache=True, nogil=True, error_model="numpy")
def voxel_downsample_kernel(points: np.ndarray, size: float) -> tuple[np.ndarray, np.ndarray]:
    """(indices (M,) into points (N, 3), voxel keys (M,)): one point per voxel of edge size (m),
    the one nearest its voxel's centre (the first on a tie), in no particular order (numpy's
    argsort of the keys is 5x faster than numba's). Raises ValueError for a point outside the
    representable voxel range (or not finite)."""
    n = points.shape[0]
    cap = 16
    while cap < 2 * n:
        cap *= 2
    shift = np.uint64(64 - int(np.log2(cap)))
    slot_key = np.full(cap, -1, dtype=np.int64)
    slot_pt = np.empty(cap, dtype=np.int64)
    slot_d = np.empty(cap)
    limit = float(1 << BITS)
    for i in range(n):
        key = np.int64(0)
        d = 0.0
        for a in range(3):
            f = np.floor(points[i, a] / size)
            g = f + OFFSET
            if not (g >= 0.0 and g < limit):
                raise ValueError("point outside the representable voxel range")
            key = (key << np.int64(BITS)) | np.int64(g)
            c = (f + 0.5) * size
            d += (points[i, a] - c) * (points[i, a] - c)
        h = np.int64((np.uint64(key) * _GOLDEN) >> shift)
        while True:
            k = slot_key[h]
            if k == -1:
                slot_key[h] = key
                slot_pt[h] = i
                slot_d[h] = d
                break
            if k == key:
                if d < slot_d[h]:
                    slot_pt[h] = i
                    slot_d[h] = d
                break
            h = (h + 1) & (cap - 1)
    m = 0
    for h in range(cap):
        if slot_key[h] != -1:
            m += 1
    keys = np.empty(m, dtype=np.int64)
    pts = np.empty(m, dtype=np.int64)
    m = 0
    for h in range(cap):
        if slot_key[h] != -1:
            keys[m] = slot_key[h]
            pts[m] = slot_pt[h]
            m += 1
    return pts, keys
