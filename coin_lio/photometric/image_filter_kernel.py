"""Compiled (numba) ends of the intensity image filter chain (image_filter.py): the wrapped
padding with the non-finite pixels zeroed and the intensity scale, and, after the line removal
and the brightness window's box blur (OpenCV), the rest in one pass: normalisation, the Gaussian
smoothing, the clip, both gradients, written straight into the unpadded image. The numpy / OpenCV
steps each went over the whole padded image (~0.3 ms in all at 64 x 1024).

float32 arithmetic as numpy and OpenCV do it; the smoothing is OpenCV's fixed 3-tap kernel
(0.25, 0.5, 0.25) for ksize 3, sigma 0. Compiled on first use and cached beside this file.
"""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, error_model="numpy")
def pad_wrap_clean(img: np.ndarray, pad: int, scale: float) -> np.ndarray:
    """img (H, W) -> (H, W + 2 pad) float32: columns wrapped around the panorama on both sides
    (pad <= W), non-finite pixels 0, every pixel x scale (in float32)."""
    h, w = img.shape
    out = np.empty((h, w + 2 * pad), dtype=np.float32)
    s = np.float32(scale)
    for r in range(h):
        for c in range(w + 2 * pad):
            x = np.float32(img[r, (c - pad) % w])
            out[r, c] = x * s if np.isfinite(x) else np.float32(0.0)
    return out


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _reflect(r: int, h: int) -> int:
    """Row r reflected into [0, h) as OpenCV's BORDER_REFLECT_101 (one row beyond at most)."""
    if r < 0:
        return -r
    if r >= h:
        return 2 * (h - 1) - r
    return r


@njit(cache=True, nogil=True, error_model="numpy")
def normalize_smooth_gradients(x: np.ndarray, blur: np.ndarray, brightness: bool, gain: float,
                               smooth_rows: int, max_value: float, pad: int, w: int):
    """x, blur (H, W + 2 pad) float32, padded by wrapped columns: the image after line removal and
    its box blur. Returns image, grad_u, grad_v (H, w) float32 for the columns [pad, pad + w):
    z = gain x / (blur + 1) (x itself without brightness), smoothed by (0.25, 0.5, 0.25) along
    the rows (and across them when smooth_rows is 3; 0: not smoothed; rows reflected), clipped to
    [0, max_value]; gradients [-0.5, 0, 0.5] along u (the padding's wrapped columns) and v (rows
    reflected: 0 on the first and last)."""
    h = x.shape[0]
    g = np.float32(gain)
    one = np.float32(1.0)
    q, half = np.float32(0.25), np.float32(0.5)
    top = np.float32(max_value)
    zero = np.float32(0.0)
    c0, c1 = pad - 2, pad + w + 2                 # z over two more columns each side
    z = np.empty((h, c1 - c0), dtype=np.float32)
    for r in range(h):
        for c in range(c0, c1):
            z[r, c - c0] = g * x[r, c] / (blur[r, c] + one) if brightness else x[r, c]
    s = np.empty((h, c1 - c0 - 2), dtype=np.float32)  # smoothed + clipped, columns c0 + 1 ..
    row = np.empty(c1 - c0, dtype=np.float32)
    for r in range(h):
        if smooth_rows == 3:                      # OpenCV: the row filter, then the column filter
            ra, rb = _reflect(r - 1, h), _reflect(r + 1, h)
        for j in range(1, c1 - c0 - 1):
            if smooth_rows == 0:
                v = z[r, j]
            elif smooth_rows == 1:
                v = q * z[r, j - 1] + half * z[r, j] + q * z[r, j + 1]
            else:
                a = q * z[ra, j - 1] + half * z[ra, j] + q * z[ra, j + 1]
                b = q * z[r, j - 1] + half * z[r, j] + q * z[r, j + 1]
                d = q * z[rb, j - 1] + half * z[rb, j] + q * z[rb, j + 1]
                v = q * a + half * b + q * d
            row[j] = v
        for j in range(1, c1 - c0 - 1):
            v = row[j]
            s[r, j - 1] = zero if v < zero else (top if v > top else v)
    image = np.empty((h, w), dtype=np.float32)
    gu = np.empty((h, w), dtype=np.float32)
    gv = np.empty((h, w), dtype=np.float32)
    m = np.float32(-0.5)
    for r in range(h):
        ra, rb = _reflect(r - 1, h), _reflect(r + 1, h)
        for c in range(w):
            j = c + 1                             # s's column of output column c
            image[r, c] = s[r, j]
            gu[r, c] = m * s[r, j - 1] + half * s[r, j + 1]
            gv[r, c] = m * s[ra, j] + half * s[rb, j]
    return image, gu, gv
