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
from coin_lio.kernel_cache import njit

from coin_lio.core.robust_kernel import median_bracket, median_inplace


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _wrap(u: int, w: int) -> int:
    """Column u of a panorama w wide (u within one turn of [0, w))."""
    if u < 0:
        return u + w
    if u >= w:
        return u - w
    return u


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def bounds_at(img: np.ndarray, b: int, c: int) -> tuple[float, float]:
    """The last scan's bounds at pixel (b, c): the nearest and farthest return of rows b - 1 .. b + 1
    (clamped at the borders, as BORDER_REPLICATE) in column c; (inf, 0) where none has one.
    Vertical only: the rows are what spans metres on ground seen at grazing incidence, and a
    walker crossing the view changes columns, which a horizontal tolerance would hide."""
    h = img.shape[0]
    lo, hi = np.inf, 0.0
    for a in (max(b - 1, 0), b, min(b + 1, h - 1)):
        r = img[a, c]
        if r > 0 and r < lo:
            lo = r
        if r > hi:
            hi = r
    return lo, hi


@njit(cache=True, nogil=True, error_model="numpy")
def window_change(range_now: np.ndarray, uv_now: np.ndarray, range_prev: np.ndarray,
                  uv_prev: np.ndarray, half_u: int, half_v: int, margin_m: float,
                  margin_rel: float) -> tuple[np.ndarray, np.ndarray]:
    """For each patch, (changed, compared): pixels of the (2 half_v + 1) x (2 half_u + 1) window
    around its centre uv_now (M, 2) in range_now (H, W) m and around uv_prev (M, 2) in range_prev,
    with a return in both; changed: those whose range, less the window's median difference (the
    sensor's own motion), lies outside [prev_lo, prev_hi] of the same pixel (the last scan's
    nearest and farthest return of it and its vertical neighbours: bounds_at) by more than
    max(margin_m, margin_rel x range). The window's pixels are matched to half a pixel, and on
    ground seen at grazing incidence one row is metres of range. u wraps (a panorama); rows outside
    either image and non-finite centres are skipped. Returns two (M,) int64 arrays."""
    h, w = range_now.shape
    m = uv_now.shape[0]
    changed = np.zeros(m, dtype=np.int64)
    compared = np.zeros(m, dtype=np.int64)
    n_win = (2 * half_u + 1) * (2 * half_v + 1)
    diff = np.empty(n_win)                           # r_now - r_prev, reordered by the median
    rng = np.empty(n_win)                            # r_now
    prev = np.empty(n_win)                           # r_prev
    row = np.empty(n_win, dtype=np.int64)            # the pixel of the last scan's image
    col = np.empty(n_win, dtype=np.int64)
    sample = np.empty(31)                            # median_bracket's scratch
    col_now = np.empty(2 * half_u + 1, dtype=np.int64)
    col_prev = np.empty(2 * half_u + 1, dtype=np.int64)
    for i in range(m):
        if not (np.isfinite(uv_now[i, 0]) and np.isfinite(uv_now[i, 1])
                and np.isfinite(uv_prev[i, 0]) and np.isfinite(uv_prev[i, 1])):
            continue
        un, vn = int(np.rint(uv_now[i, 0])) % w, int(np.rint(uv_now[i, 1]))
        up, vp = int(np.rint(uv_prev[i, 0])) % w, int(np.rint(uv_prev[i, 1]))
        for j in range(2 * half_u + 1):              # the window's columns, wrapped once
            col_now[j] = _wrap(un - half_u + j, w)
            col_prev[j] = _wrap(up - half_u + j, w)
        n = 0
        for dv in range(-half_v, half_v + 1):
            a, b = vn + dv, vp + dv
            if a < 0 or a >= h or b < 0 or b >= h:
                continue
            row_now, row_prev = range_now[a], range_prev[b]
            for j in range(2 * half_u + 1):
                r_now, r_prev = row_now[col_now[j]], row_prev[col_prev[j]]
                if r_now > 0 and r_prev > 0:         # r_prev's bounds then hold it: lo <= r_prev <= hi
                    diff[n] = r_now - r_prev
                    rng[n] = r_now
                    prev[n] = r_prev
                    row[n] = b
                    col[n] = col_prev[j]
                    n += 1
        compared[i] = n
        if n == 0:
            continue
        # The median (the sensor's own motion) only shifts each range: r_then = r_now - med falls as
        # med rises, so a pixel decided at both ends of a bracket around the median is decided
        # for the median itself; only when one is not does the median get selected.
        m_lo, m_hi, ok = median_bracket(diff, n, sample)
        c = _count_changed(rng, prev, row, col, n, range_prev, m_lo, m_hi, margin_m, margin_rel) if ok else -1
        if c < 0:
            med = median_inplace(diff, n)            # np.median(diff[:n]), diff reordered
            c = _count_changed(rng, prev, row, col, n, range_prev, med, med, margin_m, margin_rel)
        changed[i] = c
    return changed, compared


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _count_changed(rng, prev, row, col, n, range_prev, m_lo, m_hi, margin_m, margin_rel) -> int:
    """Pixels whose range less the median, for every median in [m_lo, m_hi], lies outside the last
    scan's bounds at the pixel by more than max(margin_m, margin_rel x range); -1 when the bracket
    leaves one undecided. A pixel within its own last range +- tol is within its bounds (they hold
    it), which spares the bounds' lookup for most pixels."""
    c = 0
    for j in range(n):
        tol = max(margin_m, margin_rel * rng[j])
        high, low = rng[j] - m_lo, rng[j] - m_hi    # r_then at the bracket's ends: low <= r_then <= high
        if low >= prev[j] - tol and high <= prev[j] + tol:
            continue
        lo, hi = bounds_at(range_prev, row[j], col[j])
        if high < lo - tol or low > hi + tol:
            c += 1                                   # outside for every median in the bracket
        elif not (low >= lo - tol and high <= hi + tol):
            return -1                                # inside for some, outside for others
    return c
