"""Compiled (numba) terms of one scan pair for the clock-offset estimate (core/time_offset.py):
the gyro's rotation over the pair, the regressor D and the instrument's start, in one pass over
the pair's ~10 readings (the numpy form -- np.interp per axis, a Python product of Rodrigues
rotations -- cost ~0.1 ms a scan).

Compiled on first use and cached beside this file (numba cache=True).
"""
from __future__ import annotations

import numpy as np
from coin_lio.kernel_cache import njit

from coin_lio.core.motion_kernel import interp_row, rodrigues


@njit(cache=True, nogil=True, error_model="numpy")
def smooth_rates(t: np.ndarray, w: np.ndarray, max_angular_acc: float) -> bool:
    """Readings t (K,) s strictly increasing and no rate change above max_angular_acc rad/s^2
    between neighbours (w (K, 3) rad/s): no knock and no clipped gyro inside."""
    for i in range(t.shape[0] - 1):
        dt = t[i + 1] - t[i]
        if not dt > 0:
            return False
        for c in range(3):
            if not abs(w[i + 1, c] - w[i, c]) / dt <= max_angular_acc:
                return False
    return True


@njit(cache=True, nogil=True, error_model="numpy")
def gyro_pair_terms(t_a: float, t_b: float, times: np.ndarray, gyro: np.ndarray, bg: np.ndarray,
                    w_before: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The gyro's side of one scan pair [t_a, t_b] (s): readings times (K,) s, gyro (K, 3) rad/s,
    bias bg (3,), w_before (3,) the reading before the pair (the instrument's start). Returns
    R_G (3, 3) = prod Exp(midpoint rate x dt) over the knots t_a, the readings inside, t_b (the
    rates interpolated there, as the propagation integrates), D (3,) = w(t_b) - R_G^T w(t_a)
    and z_a (3,) = R_G^T (w_before - bg), all rates bias-removed."""
    w = gyro - bg
    R = np.eye(3)
    E = np.empty((3, 3))
    w0, w1, w_a = np.empty(3), np.empty(3), np.empty(3)
    interp_row(t_a, times, w, w0)
    w_a[:] = w0
    t0 = t_a
    n = times.shape[0]
    for i in range(n + 1):
        if i < n:
            t1 = times[i]
            if not (t1 > t_a and t1 < t_b):
                continue
            w1[:] = w[i]
        else:
            t1 = t_b
            interp_row(t_b, times, w, w1)
        dt = t1 - t0
        rodrigues(0.5 * (w0[0] + w1[0]) * dt, 0.5 * (w0[1] + w1[1]) * dt, 0.5 * (w0[2] + w1[2]) * dt, E)
        R = R @ E
        w0[:] = w1
        t0 = t1
    D = w0 - R.T @ w_a
    z_a = R.T @ (w_before - bg)
    return R, D, z_a
