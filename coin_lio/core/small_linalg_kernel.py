"""Compiled (numba) linear algebra for the filter's small matrices: the 24x24 covariance and
information inverses, the update's solve, and the rotation's re-orthonormalisation.

Why not LAPACK: numpy's inv / solve / svd on these sizes take 7-17 us when called in a loop, but
50-90 us a call inside a scan. Between two calls the scan's images, map and kernels push LAPACK's
code and data out of the caches. Measured on the 64x1024 field_dynamic sequence
(`python -m coin_lio.eval.kernel_profile`): 105 us a scan for the two inverses, 110 us for the
SVD and determinant; these loops, a few hundred bytes of code, 23 and 7 us. Their results equal
LAPACK's to rounding (within 6e-14 of each entry's scale over 200 covariances spanning eight
decades; tested to 1e-12), not bit for bit.

Compiled on first use and cached beside this file (numba cache=True).
"""
from __future__ import annotations

import numpy as np

from coin_lio.kernel_cache import njit


@njit(cache=True, nogil=True, error_model="numpy")
def _eliminate(A: np.ndarray, B: np.ndarray) -> bool:
    """Gauss-Jordan elimination with partial pivoting of A (n, n) applied to B (n, m), in place:
    B becomes A^-1 B. False when a pivot is zero or not finite (a singular matrix, or a column
    of NaN / inf); a NaN elsewhere gives True and a NaN result, as numpy's inv does."""
    n = A.shape[0]
    m = B.shape[1]
    for col in range(n):
        piv, best = col, abs(A[col, col])
        for r in range(col + 1, n):
            if abs(A[r, col]) > best:
                piv, best = r, abs(A[r, col])
        if not (best > 0.0 and best < np.inf):
            return False
        if piv != col:
            for c in range(n):
                A[col, c], A[piv, c] = A[piv, c], A[col, c]
            for c in range(m):
                B[col, c], B[piv, c] = B[piv, c], B[col, c]
        inv_p = 1.0 / A[col, col]
        for c in range(n):
            A[col, c] *= inv_p
        for c in range(m):
            B[col, c] *= inv_p
        for r in range(n):
            if r == col:
                continue
            f = A[r, col]
            if f == 0.0:
                continue
            for c in range(n):
                A[r, c] -= f * A[col, c]
            for c in range(m):
                B[r, c] -= f * B[col, c]
    return True


@njit(cache=True, nogil=True, error_model="numpy")
def inverse_kernel(A: np.ndarray) -> tuple[np.ndarray, bool]:
    """(A^-1 (n, n), ok) of A (n, n); ok False (and the result undefined) when a pivot is zero or
    not finite (_eliminate)."""
    n = A.shape[0]
    B = np.eye(n)
    ok = _eliminate(A.copy(), B)
    return B, ok


@njit(cache=True, nogil=True, error_model="numpy")
def solve_kernel(A: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, bool]:
    """(A^-1 b (n,), ok) of A (n, n) and b (n,); ok False as inverse_kernel's."""
    B = b.copy().reshape(-1, 1)
    ok = _eliminate(A.copy(), B)
    return B[:, 0].copy(), ok


@njit(cache=True, nogil=True, error_model="numpy")
def nearest_rotation_kernel(R: np.ndarray) -> tuple[np.ndarray, bool]:
    """(the rotation nearest R (3, 3), ok): the orthogonal polar factor by Newton's iteration
    X <- (X + X^-T) / 2, which converges quadratically from a near-rotation (after a scan's IMU
    products R is one to ~1e-15: one or two steps). ok False when R is far from a rotation
    (det <= 0, singular, or no convergence in 20 steps): the caller then takes the SVD."""
    X = R.copy()
    for _ in range(20):
        # cofactors: X^-T = cof(X) / det(X)
        c00 = X[1, 1] * X[2, 2] - X[1, 2] * X[2, 1]
        c01 = X[1, 2] * X[2, 0] - X[1, 0] * X[2, 2]
        c02 = X[1, 0] * X[2, 1] - X[1, 1] * X[2, 0]
        det = X[0, 0] * c00 + X[0, 1] * c01 + X[0, 2] * c02
        if not (det > 0.0 and det < np.inf):
            return X, False
        c10 = X[0, 2] * X[2, 1] - X[0, 1] * X[2, 2]
        c11 = X[0, 0] * X[2, 2] - X[0, 2] * X[2, 0]
        c12 = X[0, 1] * X[2, 0] - X[0, 0] * X[2, 1]
        c20 = X[0, 1] * X[1, 2] - X[0, 2] * X[1, 1]
        c21 = X[0, 2] * X[1, 0] - X[0, 0] * X[1, 2]
        c22 = X[0, 0] * X[1, 1] - X[0, 1] * X[1, 0]
        cof = np.array([[c00, c01, c02], [c10, c11, c12], [c20, c21, c22]])
        Y = 0.5 * (X + cof / det)
        change = np.abs(Y - X).max()
        X = Y
        if change <= 1e-15:
            return X, True
    return X, False
