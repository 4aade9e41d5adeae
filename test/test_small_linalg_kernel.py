"""The filter's compiled small-matrix algebra (core/small_linalg_kernel.py) against numpy's LAPACK."""
from __future__ import annotations

import numpy as np
import pytest

from coin_lio.core import so3
from coin_lio.core.iekf import _inverse
from coin_lio.core.small_linalg_kernel import inverse_kernel, nearest_rotation_kernel, solve_kernel


def _covariance(rng: np.random.Generator, n: int = 24) -> np.ndarray:
    """A filter-like covariance: correlated, variances over eight decades."""
    A = rng.normal(size=(n, n))
    s = 10 ** rng.uniform(-5, 3, n)
    return (A @ A.T + n * np.eye(n)) * np.sqrt(np.outer(s, s))


@pytest.mark.parametrize("seed", range(5))
def test_inverse_and_solve_match_lapack(seed: int) -> None:
    rng = np.random.default_rng(seed)
    P = _covariance(rng)
    inv, ok = inverse_kernel(P)
    assert ok
    ref = np.linalg.inv(P)
    # relative to each entry's scale (variances span eight decades)
    scale = np.sqrt(np.outer(np.diag(ref), np.diag(ref)))
    assert np.all(np.abs(inv - ref) <= 1e-12 * scale)              # 6e-14 at worst over 200 seeds
    b = rng.normal(size=24)
    x, ok = solve_kernel(P, b)
    assert ok and np.allclose(P @ x, b, rtol=1e-9, atol=1e-9 * np.abs(b).max())
    # a permutation-needing (non-symmetric) matrix: the pivoting
    M = rng.normal(size=(7, 7))
    M[0, 0] = 0.0
    inv, ok = inverse_kernel(M)
    assert ok and np.allclose(inv @ M, np.eye(7), atol=1e-10)


def test_singular_matrices_and_non_finite_pivots_are_reported() -> None:
    for A in (np.zeros((4, 4)), np.full((3, 3), np.nan), np.ones((5, 5)), np.diag([1.0, np.inf, 1.0])):
        assert not inverse_kernel(A)[1]
        assert not solve_kernel(A, np.ones(len(A)))[1]
    with pytest.raises(np.linalg.LinAlgError):
        _inverse(np.zeros((24, 24)))


def test_nearest_rotation_is_the_svd_polar_factor() -> None:
    rng = np.random.default_rng(3)
    for scale in (0.0, 1e-15, 1e-9, 1e-3, 0.2):
        for _ in range(20):
            R = so3.exp(rng.normal(size=3) * 2.0)
            noisy = R + scale * rng.normal(size=(3, 3))
            got, ok = nearest_rotation_kernel(noisy)
            assert ok
            np.testing.assert_allclose(got, so3.orthonormalize(noisy), atol=2e-15 + 1e-12 * scale)
            np.testing.assert_allclose(got @ got.T, np.eye(3), atol=1e-15)
            assert np.linalg.det(got) > 0
    # a reflection or a singular matrix: not a near-rotation, the caller takes the SVD
    assert not nearest_rotation_kernel(np.diag([1.0, 1.0, -1.0]))[1]
    assert not nearest_rotation_kernel(np.zeros((3, 3)))[1]
