"""Compiled (numba) error-state arithmetic of the filter: x [+] dx, x [-] y and one step of the
iterated update in information form. The update spent ~0.3 ms an iteration in numpy dispatch of
3x3 and 24x24 arrays (boxminus, boxplus, the normal equations, the solve, the checks), 2-3
iterations a scan; here each is one call. Layout and conventions: coin_lio.core.state.

Compiled on first use and cached beside this file (numba cache=True).
"""
from __future__ import annotations

import numpy as np
from coin_lio.kernel_cache import njit

from coin_lio.core.motion_kernel import rodrigues
from coin_lio.core.small_linalg_kernel import solve_kernel

GRAVITY_NORM = 9.81


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _at_b(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """A^T B of two (3, 3)."""
    out = np.empty((3, 3))
    for i in range(3):
        for j in range(3):
            out[i, j] = A[0, i] * B[0, j] + A[1, i] * B[1, j] + A[2, i] * B[2, j]
    return out


@njit(cache=True, nogil=True, error_model="numpy")
def log_rotation(R: np.ndarray, out: np.ndarray) -> None:
    """Rotation vector of R (3, 3) into out (3,), robust near 0 and pi: the unit quaternion by
    Shepperd's method (largest of w, x, y, z first), then 2 atan2(|v|, w) v / |v| (a drifted R:
    the quaternion normalised)."""
    a, b, c = R[0, 0], R[0, 1], R[0, 2]
    d, e, f = R[1, 0], R[1, 1], R[1, 2]
    g, h, i = R[2, 0], R[2, 1], R[2, 2]
    tr = a + e + i
    if tr > a and tr > e and tr > i:
        s = 2.0 * np.sqrt(max(tr + 1.0, 0.0))
        w, x, y, z = 0.25 * s, (h - f) / s, (c - g) / s, (d - b) / s
    elif a > e and a > i:
        s = 2.0 * np.sqrt(max(1.0 + a - e - i, 0.0))
        w, x, y, z = (h - f) / s, 0.25 * s, (b + d) / s, (c + g) / s
    elif e > i:
        s = 2.0 * np.sqrt(max(1.0 + e - a - i, 0.0))
        w, x, y, z = (c - g) / s, (b + d) / s, 0.25 * s, (f + h) / s
    else:
        s = 2.0 * np.sqrt(max(1.0 + i - a - e, 0.0))
        w, x, y, z = (d - b) / s, (c + g) / s, (f + h) / s, 0.25 * s
    if w < 0:                                     # the angle in [0, pi]
        w, x, y, z = -w, -x, -y, -z
    n = np.sqrt(x * x + y * y + z * z)
    q = np.sqrt(w * w + n * n)
    w, n = w / q, n / q
    scale = (2.0 * np.arctan2(n, w) / n if n > 1e-9 else 2.0 / w) / q
    out[0], out[1], out[2] = x * scale, y * scale, z * scale


@njit(cache=True, nogil=True, error_model="numpy")
def boxminus_kernel(pos, rot, rot_il, pos_il, vel, bg, ba, grav,
                    o_pos, o_rot, o_rot_il, o_pos_il, o_vel, o_bg, o_ba, o_grav) -> np.ndarray:
    """x [-] o (24,) for two states given as their eight arrays each: o [+] dx = x."""
    dx = np.zeros(24)
    log_rotation(_at_b(o_rot, rot), dx[3:6])
    log_rotation(_at_b(o_rot_il, rot_il), dx[6:9])
    for k in range(3):
        dx[k] = pos[k] - o_pos[k]
        dx[9 + k] = pos_il[k] - o_pos_il[k]
        dx[12 + k] = vel[k] - o_vel[k]
        dx[15 + k] = bg[k] - o_bg[k]
        dx[18 + k] = ba[k] - o_ba[k]
        dx[21 + k] = grav[k] - o_grav[k]
    return dx


@njit(cache=True, nogil=True, error_model="numpy")
def _times_exp(R: np.ndarray, w: np.ndarray) -> np.ndarray:
    """R (3, 3) Exp(w): the right perturbation by the rotation vector w (3,)."""
    E = np.empty((3, 3))
    rodrigues(w[0], w[1], w[2], E)
    out = np.empty((3, 3))
    for i in range(3):
        for j in range(3):
            out[i, j] = R[i, 0] * E[0, j] + R[i, 1] * E[1, j] + R[i, 2] * E[2, j]
    return out


@njit(cache=True, nogil=True, error_model="numpy")
def boxplus_kernel(pos, rot, rot_il, pos_il, vel, bg, ba, grav, dx):
    """x [+] dx (24,): the eight arrays of the new state; gravity keeps its norm."""
    g = grav + dx[21:24]
    norm = np.sqrt(g[0] * g[0] + g[1] * g[1] + g[2] * g[2])
    return (pos + dx[0:3], _times_exp(rot, dx[3:6]), _times_exp(rot_il, dx[6:9]), pos_il + dx[9:12],
            vel + dx[12:15], bg + dx[15:18], ba + dx[18:21], g * (GRAVITY_NORM / max(norm, 1e-9)))


@njit(cache=True, nogil=True, error_model="numpy")
def information_step(P_inv: np.ndarray, H: np.ndarray, h: np.ndarray, var: np.ndarray,
                     dx_prior: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """One step of the iterated update: info = P_inv + H^T R^-1 H on the first c = H.shape[1]
    error states, rhs = P_inv dx_prior + H^T R^-1 h there, step = -info^-1 rhs. P_inv (D, D),
    H (M, c), h and var (M,), dx_prior (D,) = x [-] x_prior. Returns (step (D,), info (D, D),
    ok: False when info is singular). The solve is small_linalg_kernel's, not LAPACK's."""
    c = H.shape[1]
    w = 1.0 / var
    Hw = H * w.reshape(-1, 1)                 # R^-1 H (M, c)
    acc = H.T @ Hw                            # (c, c), BLAS as numpy's
    hr = H.T @ (h * w)                        # (c,)
    info = P_inv.copy()
    rhs = P_inv @ dx_prior
    for a in range(c):
        rhs[a] += hr[a]
        for b in range(c):
            info[a, b] += acc[a, b]
    step, ok = solve_kernel(info, rhs)
    return -step, info, ok
