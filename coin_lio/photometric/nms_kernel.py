"""Compiled (numba) greedy non-maximum suppression of the patch candidates: the Python loop over
~10k candidates cost ~0.4 ms a scan. Compiled on first use and cached beside this file."""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def greedy_nms_kernel(v: np.ndarray, u: np.ndarray, h: int, w: int, radius: int) -> np.ndarray:
    """Indices of the kept points, in order: visit (v, u) (K,) int64 in the given order, keep a
    point unless a kept one lies within radius (dv^2 + du^2 <= r^2, u not wrapped)."""
    r = radius
    pw = w + 2 * r
    raster = np.zeros((h + 2 * r) * pw, dtype=np.uint8)
    n_off = 0
    offsets = np.empty((2 * r + 1) ** 2, dtype=np.int64)
    for dv in range(-r, r + 1):
        for du in range(-r, r + 1):
            if dv * dv + du * du <= r * r:
                offsets[n_off] = dv * pw + du
                n_off += 1
    keep = np.empty(v.shape[0], dtype=np.int64)
    m = 0
    for i in range(v.shape[0]):
        f = (v[i] + r) * pw + u[i] + r
        if raster[f]:
            continue
        keep[m] = i
        m += 1
        for j in range(n_off):
            raster[f + offsets[j]] = 1
    return keep[:m].copy()
