"""Compiled (numba) robust weights: the photometric rows' Huber IRLS weights in one pass over the
residuals, with the median found by selection in place (numpy's median, abs, minimum and divide
over ~1500 rows spent ~0.1 ms a call in temporaries, twice or three times a scan).

Compiled on first use and cached beside this file (numba cache=True).
"""
from __future__ import annotations

import numpy as np
from coin_lio.kernel_cache import njit


@njit(cache=True, nogil=True, error_model="numpy")
def _select_inplace(a: np.ndarray, n: int, k: int) -> float:
    """The k-th smallest of a[:n] (0-based), a reordered in place (Hoare's selection, median-of-3
    pivots): a[:k] then holds values <= it."""
    lo, hi = 0, n - 1
    while hi > lo:
        mid = (lo + hi) // 2
        if a[mid] < a[lo]:
            a[mid], a[lo] = a[lo], a[mid]
        if a[hi] < a[lo]:
            a[hi], a[lo] = a[lo], a[hi]
        if a[hi] < a[mid]:
            a[hi], a[mid] = a[mid], a[hi]
        pivot = a[mid]
        i, j = lo, hi
        while i <= j:
            while a[i] < pivot:
                i += 1
            while a[j] > pivot:
                j -= 1
            if i <= j:
                a[i], a[j] = a[j], a[i]
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            return a[k]
    return a[k]


@njit(cache=True, nogil=True, error_model="numpy")
def median_inplace(a: np.ndarray, n: int) -> float:
    """np.median(a[:n]) (n >= 1, no NaN), a reordered in place."""
    k = n // 2
    upper = _select_inplace(a, n, k)
    if n % 2:
        return upper
    lower = a[0]
    for i in range(1, k):
        if a[i] > lower:
            lower = a[i]
    return (lower + upper) / 2


@njit(cache=True, nogil=True, error_model="numpy")
def huber_weights_kernel(r: np.ndarray, k: float, min_rows: int) -> np.ndarray:
    """(N,) Huber IRLS weights of residuals r (N,): 1 within k x the robust spread (1.4826 x
    median |r|), k x spread / |r| beyond; all 1 below min_rows rows or when the spread is 0."""
    n = r.shape[0]
    w = np.ones(n)
    if n < min_rows or n == 0:
        return w
    a = np.abs(r)
    spread = 1.4826 * median_inplace(a.copy(), n)
    if not spread > 0:
        return w
    for i in range(n):
        w[i] = min(1.0, k * spread / max(a[i], 1e-300))
    return w


@njit(cache=True, nogil=True, error_model="numpy")
def median_bracket(a: np.ndarray, n: int, sample: np.ndarray) -> tuple[float, float, bool]:
    """(lo, hi, ok): with ok, lo <= np.median(a[:n]) <= hi for certain (a is left as it is). The
    bracket is the 10th and 20th of 31 evenly spaced values, confirmed by one counting pass
    (the median's ranks are not beyond it); ok is False when the count refutes it or n < 62.
    sample: (31,) scratch. Costs about a quarter of a selection of the median: a caller that only
    asks on which side of a threshold values minus the median lie decides most of them for every
    median in [lo, hi] (change_kernel.window_change)."""
    m = sample.shape[0]
    if n < 2 * m:
        return 0.0, 0.0, False
    step = n // m
    for i in range(m):                           # insertion sort of the strided sample
        x = a[i * step]
        j = i
        while j > 0 and sample[j - 1] > x:
            sample[j] = sample[j - 1]
            j -= 1
        sample[j] = x
    lo, hi = sample[m // 3], sample[m - 1 - m // 3]
    below, above = 0, 0
    for i in range(n):
        below += a[i] < lo
        above += a[i] > hi
    k = n // 2                                   # the median's upper rank; lower rank k - 1 when n is even
    low_rank = k - 1 if n % 2 == 0 else k
    return lo, hi, below <= low_rank and above <= n - 1 - k
