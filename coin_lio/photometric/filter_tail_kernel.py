"""The end of the image filter chain in one compiled pass: the 3x3 (or 3x1) Gaussian, the clip to
[0, max_value], the gradients [-0.5, 0, 0.5] along u and v, and the crop of the wrap padding.

OpenCV ran these as five passes over the padded image plus three copies for the crop (~130 us on
64 x 1100 pixels, one thread); this pass reads the padded image once and writes the three cropped
(H, W) images (~33 us; 66 at 128 rows). The arithmetic is OpenCV's, in float32 and in its order: the separable
Gaussian [0.25, 0.5, 0.25] along the rows first, then down the columns (rows reflected at the
borders, reflect-101), and the gradient as -0.5 a + 0.5 b, so the outputs equal the OpenCV chain's
(test_photometric_filter.py).

Compiled on first use and cached beside this file (numba cache=True).
"""
from __future__ import annotations

import numpy as np
from coin_lio.kernel_cache import njit

_QUARTER, _HALF = np.float32(0.25), np.float32(0.5)


@njit(cache=True, nogil=True, inline="always")
def _row_smooth(img: np.ndarray, v: int, pad: int, w: int, smooth: bool, out: np.ndarray) -> None:
    """out (W + 2,) = the horizontal Gaussian of row v at columns pad - 1 .. pad + w (the loops
    index slices with the loop counter alone, so LLVM vectorises them: ~10x faster than indexing
    the row with u - 1 and u + 1)."""
    mid = img[v, pad - 1:pad + w + 1]
    if not smooth:
        out[:] = mid
        return
    left, right = img[v, pad - 2:pad + w], img[v, pad:pad + w + 2]
    for j in range(w + 2):
        out[j] = (left[j] + right[j]) * _QUARTER + mid[j] * _HALF


@njit(cache=True, nogil=True, inline="always")
def _reflect(v: int, h: int) -> int:
    """Row v of an image h rows high, reflected at the borders without repeating the edge."""
    if v < 0:
        return min(-v, h - 1)
    if v >= h:
        return max(2 * (h - 1) - v, 0)
    return v


@njit(cache=True, nogil=True, error_model="numpy")
def smooth_clip_gradients(img: np.ndarray, pad: int, smooth: bool, rows3: bool,
                          max_value: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """img (H, W + 2 pad) float32, padded by pad >= 2 wrapped columns each side -> (image, grad_u,
    grad_v), each (H, W) float32: with smooth, the Gaussian along the rows (and with rows3 down
    the columns too), clipped to [0, max_value]; grad_u = 0.5 (I[u + 1] - I[u - 1]) and grad_v the
    same down the columns (0 on the first and last row, as reflect-101 gives)."""
    h, wp = img.shape
    w = wp - 2 * pad
    mx = np.float32(max_value)
    zero = np.float32(0.0)
    smoothed = np.empty((h, w + 2), dtype=np.float32)    # columns pad - 1 .. pad + w, along the rows
    for v in range(h):
        _row_smooth(img, v, pad, w, smooth, smoothed[v])
    clipped = np.empty((h, w + 2), dtype=np.float32)     # ... down the columns too (rows3), clipped
    for v in range(h):
        out, mid = clipped[v], smoothed[v]
        if rows3 and smooth:
            up, down = smoothed[_reflect(v - 1, h)], smoothed[_reflect(v + 1, h)]
            for j in range(w + 2):
                out[j] = min(max((up[j] + down[j]) * _QUARTER + mid[j] * _HALF, zero), mx)
        else:
            for j in range(w + 2):
                out[j] = min(max(mid[j], zero), mx)
    image = np.empty((h, w), dtype=np.float32)
    grad_u = np.empty((h, w), dtype=np.float32)
    grad_v = np.empty((h, w), dtype=np.float32)
    for v in range(h):
        row = clipped[v]
        left, mid, right = row[0:w], row[1:w + 1], row[2:w + 2]
        above, below = clipped[_reflect(v - 1, h), 1:w + 1], clipped[_reflect(v + 1, h), 1:w + 1]
        img_v, gu_v, gv_v = image[v], grad_u[v], grad_v[v]
        for u in range(w):
            img_v[u] = mid[u]
            gu_v[u] = -_HALF * left[u] + _HALF * right[u]
            gv_v[u] = -_HALF * above[u] + _HALF * below[u]
    return image, grad_u, grad_v
