"""Compiled (numba) neighbourhood reach of the free-space check (free_space.py): the nearest
return around each queried pixel of an earlier range image, evaluated at the pixels the points
land on only, instead of eroding and dilating the whole image every scan (~0.4 ms at 64 x 1024).

Compiled on first use and cached beside this file (numba cache=True).
"""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, error_model="numpy")
def neighbourhood_reach(img: np.ndarray, u: np.ndarray, v: np.ndarray, radius: int,
                        max_spread: float) -> np.ndarray:
    """img (H, W) float32 range m (0: no return); u, v (N,) int64 pixels inside it. Returns (N,)
    float32: the smallest range of the (2 radius + 1)^2 neighbourhood (rows and columns clamped at
    the borders: OpenCV's BORDER_REPLICATE), 0 where it holds a pixel without return or where its
    ranges spread more than max_spread x that smallest (grazing surfaces, depth edges: not judged).
    Equals cv2.erode / cv2.dilate with a square kernel and the spread test, read at (v, u)."""
    h, w = img.shape
    spread = np.float32(max_spread)
    out = np.empty(u.shape[0], dtype=np.float32)
    for i in range(u.shape[0]):
        near = np.float32(np.inf)
        far = np.float32(-np.inf)
        for a in range(v[i] - radius, v[i] + radius + 1):
            row = min(max(a, 0), h - 1)
            for b in range(u[i] - radius, u[i] + radius + 1):
                r = img[row, min(max(b, 0), w - 1)]
                if r < near:
                    near = r
                if r > far:
                    far = r
        out[i] = np.float32(0.0) if far - near > spread * near else near
    return out
