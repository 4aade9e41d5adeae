"""Compiled (numba) range-change test around tracked patches: did something move near a patch
between the last scan and this one?

A patch is anchored to the world, so the window of pixels around it in this scan's range image
and the same window around where it was in the last scan's show the same static surfaces: their
range differences are all about one value (the sensor's own motion along the line of sight). A
person or a car walking into or out of the window changes a block of pixels by metres; a dust
return changes one. The photometric residual of a patch depends on the whole window (the
brightness normalisation averages 41 x 7 pixels around it), so a moving object anywhere in it
biases the patch.

Compiled on first use and cached beside this file (numba cache=True).
"""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, error_model="numpy")
def window_change(range_now: np.ndarray, uv_now: np.ndarray, range_prev: np.ndarray, uv_prev: np.ndarray,
                  half_u: int, half_v: int, margin_m: float, margin_rel: float) -> tuple[np.ndarray, np.ndarray]:
    """For each patch, (changed, compared): pixels of the (2 half_v + 1) x (2 half_u + 1) window
    around its centre uv_now (M, 2) in range_now (H, W) m and around uv_prev (M, 2) in range_prev,
    with a return in both; changed: those whose range difference departs from the window's median
    difference by more than max(margin_m, margin_rel x range). u wraps (a panorama); rows outside
    either image and non-finite centres are skipped. Returns two (M,) int64 arrays."""
    h, w = range_now.shape
    m = uv_now.shape[0]
    changed = np.zeros(m, dtype=np.int64)
    compared = np.zeros(m, dtype=np.int64)
    n_win = (2 * half_u + 1) * (2 * half_v + 1)
    diff = np.empty(n_win)
    rng = np.empty(n_win)
    for i in range(m):
        if not (np.isfinite(uv_now[i, 0]) and np.isfinite(uv_now[i, 1])
                and np.isfinite(uv_prev[i, 0]) and np.isfinite(uv_prev[i, 1])):
            continue
        un, vn = int(np.rint(uv_now[i, 0])) % w, int(np.rint(uv_now[i, 1]))
        up, vp = int(np.rint(uv_prev[i, 0])) % w, int(np.rint(uv_prev[i, 1]))
        n = 0
        for dv in range(-half_v, half_v + 1):
            a, b = vn + dv, vp + dv
            if a < 0 or a >= h or b < 0 or b >= h:
                continue
            for du in range(-half_u, half_u + 1):
                cn, cp = un + du, up + du                    # columns, wrapped (half_u < w)
                if cn < 0:
                    cn += w
                elif cn >= w:
                    cn -= w
                if cp < 0:
                    cp += w
                elif cp >= w:
                    cp -= w
                r_now = range_now[a, cn]
                r_prev = range_prev[b, cp]
                if r_now > 0 and r_prev > 0:
                    diff[n] = r_now - r_prev
                    rng[n] = min(r_now, r_prev)
                    n += 1
        compared[i] = n
        if n == 0:
            continue
        med = np.median(diff[:n])
        c = 0
        for j in range(n):
            if abs(diff[j] - med) > max(margin_m, margin_rel * rng[j]):
                c += 1
        changed[i] = c
    return changed, compared
