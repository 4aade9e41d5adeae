"""Compiled (numba) LiDAR motion within a scan: the transform LiDAR(t) -> LiDAR(scan end) at each
distinct point time (an Ouster scan has one per column, ~1024), from the IMU track. Deskewing
and the photometric image both need it each scan; the batched numpy form (searchsorted, a
batched Rodrigues, four batched matmuls) cost ~1 ms per call.

Compiled on first use and cached beside this file (numba cache=True).
"""
from __future__ import annotations

import numpy as np
from coin_lio.kernel_cache import njit


@njit(cache=True, nogil=True, error_model="numpy")
def rodrigues(x: float, y: float, z: float, out: np.ndarray) -> None:
    """exp of the rotation vector (x, y, z) rad into out (3, 3), as so3.exp."""
    th2 = x * x + y * y + z * z
    if th2 < 1e-16:
        a, b = 1.0 - th2 / 6.0, 0.5 - th2 / 24.0
    else:
        th = np.sqrt(th2)
        a, b = np.sin(th) / th, (1.0 - np.cos(th)) / th2
    c = 1.0 - b * th2
    out[0, 0], out[0, 1], out[0, 2] = c + b * x * x, -a * z + b * x * y, a * y + b * x * z
    out[1, 0], out[1, 1], out[1, 2] = a * z + b * x * y, c + b * y * y, -a * x + b * y * z
    out[2, 0], out[2, 1], out[2, 2] = -a * y + b * x * z, a * x + b * y * z, c + b * z * z


@njit(cache=True, nogil=True, error_model="numpy")
def interp_row(t: float, ts: np.ndarray, values: np.ndarray, out: np.ndarray) -> None:
    """out (C,) = values (K, C) at t, linear over ts (K,) ascending and held outside: np.interp
    per column, with its formula (slope x (t - ts[j]) + values[j]), so bit for bit."""
    n = ts.shape[0]
    if n == 1 or t <= ts[0]:
        out[:] = values[0]
        return
    if t >= ts[n - 1]:
        out[:] = values[n - 1]
        return
    j = np.searchsorted(ts, t, side="right") - 1
    for c in range(values.shape[1]):
        slope = (values[j + 1, c] - values[j, c]) / (ts[j + 1] - ts[j])
        out[c] = slope * (t - ts[j]) + values[j, c]


@njit(cache=True, nogil=True, error_model="numpy")
def interp_rows(t: np.ndarray, ts: np.ndarray, values: np.ndarray) -> np.ndarray:
    """(M, C): values (K, C) at each t (M,), as interp_row."""
    out = np.empty((t.shape[0], values.shape[1]))
    for i in range(t.shape[0]):
        interp_row(t[i], ts, values, out[i])
    return out


@njit(cache=True, nogil=True, error_model="numpy")
def lidar_motion_kernel(times: np.ndarray, seg_t: np.ndarray, seg_rot: np.ndarray, seg_pos: np.ndarray,
                        seg_vel: np.ndarray, seg_acc: np.ndarray, seg_omega: np.ndarray,
                        R_end: np.ndarray, p_end: np.ndarray, R_il: np.ndarray, t_il: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray]:
    """times (U,) s; the ImuTrack's segments (K,) (start time, R_WI, p, v, world acceleration,
    body rate); the scan-end IMU pose R_end (3, 3), p_end (3,) and the extrinsic R_il, t_il.
    Returns R (U, 3, 3), t (U, 3) with p_L(end) = R p_L(t) + t, i.e.
    T_IL^-1 T_WI(end)^-1 T_WI(t) T_IL, the IMU pose at t extrapolated from its segment."""
    n = times.shape[0]
    K = seg_t.shape[0]
    R_out = np.empty((n, 3, 3))
    t_out = np.empty((n, 3))
    E = np.empty((3, 3))
    Rw = np.empty((3, 3))
    A = np.empty((3, 3))            # R_WI(end)^T R_WI(t)
    d = np.empty(3)                 # p_WI(t) - p_WI(end)
    v = np.empty(3)
    for i in range(n):
        t = times[i]
        lo, hi = 0, K                                  # k = searchsorted(seg_t, t, 'right') - 1
        while lo < hi:
            mid = (lo + hi) // 2
            if seg_t[mid] <= t:
                lo = mid + 1
            else:
                hi = mid
        k = min(max(lo - 1, 0), K - 1)
        dt = t - seg_t[k]
        rodrigues(seg_omega[k, 0] * dt, seg_omega[k, 1] * dt, seg_omega[k, 2] * dt, E)
        for r in range(3):
            for s in range(3):
                Rw[r, s] = seg_rot[k, r, 0] * E[0, s] + seg_rot[k, r, 1] * E[1, s] + seg_rot[k, r, 2] * E[2, s]
        for r in range(3):
            d[r] = seg_pos[k, r] + seg_vel[k, r] * dt + 0.5 * seg_acc[k, r] * dt * dt - p_end[r]
        for r in range(3):
            for s in range(3):
                A[r, s] = R_end[0, r] * Rw[0, s] + R_end[1, r] * Rw[1, s] + R_end[2, r] * Rw[2, s]
        # R = R_il^T A R_il;  t = R_il^T (A t_il + R_end^T d - t_il)
        for r in range(3):
            v[r] = (A[r, 0] * t_il[0] + A[r, 1] * t_il[1] + A[r, 2] * t_il[2]
                    + R_end[0, r] * d[0] + R_end[1, r] * d[1] + R_end[2, r] * d[2] - t_il[r])
        for r in range(3):
            t_out[i, r] = R_il[0, r] * v[0] + R_il[1, r] * v[1] + R_il[2, r] * v[2]
            for s in range(3):
                acc = 0.0
                for p in range(3):
                    acc += R_il[p, r] * (A[p, 0] * R_il[0, s] + A[p, 1] * R_il[1, s] + A[p, 2] * R_il[2, s])
                R_out[i, r, s] = acc
    return R_out, t_out


@njit(cache=True, nogil=True, error_model="numpy")
def column_time_layout(times: np.ndarray) -> int:
    """times (H, W) s of an organised scan: 2 when every row holds row 0's times and those
    strictly increase (an Ouster scan: one time per column, in column order), 1 when the rows
    are equal only, 0 otherwise (NaN counts as different). Stops at the first difference (numpy's
    array_equal against the broadcast row and unique took ~0.15 ms a scan)."""
    h, w = times.shape
    first = times[0]
    for r in range(1, h):
        row = times[r]
        differs = False
        for c in range(w):                 # no exit inside: the loop vectorises (~4x faster)
            differs |= row[c] != first[c]
        if differs:
            return 0
    for c in range(1, w):
        if not times[0, c] > times[0, c - 1]:
            return 1
    return 2


@njit(cache=True, nogil=True, error_model="numpy")
def time_positions(times: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, bool, bool]:
    """For strictly increasing times (U,) and queries (N,): (index (N,) = min(np.searchsorted(times,
    queries), U - 1), every times[index] == its query, every query finite). Each search starts
    where the times' span puts the query (a scan's column times are near uniform) and walks to the
    leftmost time >= it: the same index as numpy's bisection (~57 ns a query inside a scan), in a
    few steps; after 32 steps (times far from even: one outlier among them) it bisects.
    Non-finite queries: their indices are not numpy's (the third value says so) and they count
    as unequal."""
    u = times.shape[0]
    n = queries.shape[0]
    index = np.empty(n, dtype=np.int64)
    equal = True
    finite = True
    t0, t1 = times[0], times[u - 1]
    scale = (u - 1) / (t1 - t0) if t1 > t0 else 0.0
    for i in range(n):
        q = queries[i]
        if not np.isfinite(q):             # never equal to a time (array_equal: NaN != NaN)
            finite = equal = False
            index[i] = u - 1
            continue
        g = (q - t0) * scale
        k = 0 if not g > 0.0 else (u - 1 if not g < u - 1 else int(g))
        steps = 0
        while k > 0 and times[k - 1] >= q and steps < 16:
            k -= 1
            steps += 1
        while k < u and times[k] < q and steps < 32:
            k += 1
            steps += 1
        if not ((k == 0 or times[k - 1] < q) and (k == u or times[k] >= q)):
            lo, hi = 0, u                  # far from the guess (uneven times): bisection
            while lo < hi:
                mid = (lo + hi) // 2
                if times[mid] < q:
                    lo = mid + 1
                else:
                    hi = mid
            k = lo
        k = min(k, u - 1)
        index[i] = k
        equal &= times[k] == q
    return index, equal, finite


@njit(cache=True, nogil=True, error_model="numpy")
def transform_indexed(R: np.ndarray, t: np.ndarray, index: np.ndarray, points: np.ndarray) -> np.ndarray:
    """points (N, 3) -> R[index[n]] points[n] + t[index[n]] (N, 3): each point by its time's
    transform (R (U, 3, 3), t (U, 3)); numpy's einsum over the gathered (N, 3, 3) took ~60 us a
    64-row scan. Sums in the order numpy's einsum takes (x + z, then y), bit for bit."""
    n = points.shape[0]
    out = np.empty((n, 3))
    for i in range(n):
        k = index[i]
        x, y, z = points[i, 0], points[i, 1], points[i, 2]
        for r in range(3):
            out[i, r] = (R[k, r, 0] * x + R[k, r, 2] * z) + R[k, r, 1] * y + t[k, r]
    return out
