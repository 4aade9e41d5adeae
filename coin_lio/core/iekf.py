"""Iterated error-state Kalman update (FAST-LIO2), in information form.

At each iteration j the measurements are linearised at x_j and the step solves
    (P^-1 + H^T R^-1 H) d = -(P^-1 (x_j [-] x_prop) + H^T R^-1 h)
then x_{j+1} = x_j [+] d. Measurements touch only the first `H.shape[1]` error-state columns
(position, rotation and, when estimated, the extrinsic), which keeps H small.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from coin_lio.config import UpdateConfig
from coin_lio.core.state import DIM, NavState
from coin_lio.core.small_linalg_kernel import inverse_kernel
from coin_lio.core.state_kernel import information_step


@dataclass
class Measurements:
    h: np.ndarray          # (m,) residuals at the linearisation point
    H: np.ndarray          # (m, c) Jacobian w.r.t. the first c error-state columns
    var: np.ndarray        # (m,) measurement variances


@dataclass
class UpdateResult:
    state: NavState
    P: np.ndarray
    iterations: int
    converged: bool
    meas: Measurements     # the measurements of the last iteration


def iterated_update(x_prop: NavState, P_prop: np.ndarray,
                    measure: Callable[[NavState, int], Measurements], cfg: UpdateConfig) -> UpdateResult:
    """Run the iterated update; `measure(x, iteration)` linearises all residuals at x."""
    P_inv = _inverse(P_prop)
    x = x_prop
    converged = False
    meas = None
    info = P_inv
    for it in range(cfg.max_iterations):
        meas = measure(x, it)
        # compiled (state_kernel): the normal equations on the measured columns and the solve
        step, info, ok = information_step(P_inv, np.ascontiguousarray(meas.H, dtype=np.float64),
                                          np.ascontiguousarray(meas.h, dtype=np.float64),
                                          np.ascontiguousarray(meas.var, dtype=np.float64), x.boxminus(x_prop))
        if not ok:
            raise np.linalg.LinAlgError("singular information matrix")
        largest = float(np.abs(step).max())
        if not np.isfinite(largest):
            raise FloatingPointError("update step is not finite")
        x = x.boxplus(step)
        if largest < cfg.convergence_eps:
            converged = True
            break
    P = _inverse(info)
    return UpdateResult(x, 0.5 * (P + P.T), it + 1, converged, meas)


def _inverse(A: np.ndarray) -> np.ndarray:
    """A^-1 of a (D, D) covariance or information matrix (compiled: small_linalg_kernel);
    LinAlgError when a pivot is zero or not finite (numpy's inv raises for the first only; the
    update's callers catch both kinds of failure)."""
    out, ok = inverse_kernel(np.ascontiguousarray(A, dtype=np.float64))
    if not ok:
        raise np.linalg.LinAlgError("singular matrix")
    return out


def consider_covariance(P_prior: np.ndarray, P_post: np.ndarray, meas: Measurements,
                        hold: np.ndarray) -> np.ndarray:
    """(DIM, DIM) covariance of an update whose step was kept out of the error-state subspace
    `hold` (an orthogonal projector) -- Schmidt's consider update, Joseph form: with the gain
    K = P_post H^T R^-1 of the full update and K' = (I - hold) K,
        P = (I - K'H) P_prior (I - K'H)^T + K' R K'^T,
    so the held states keep their prior variance and their correlations are carried, instead of
    shrinking as if the measurement had informed them. hold = 0 gives P_post."""
    c = meas.H.shape[1]
    keep = np.eye(DIM) - hold
    G = keep @ (P_post[:, :c] @ (meas.H.T @ (meas.H / meas.var[:, None])))   # (DIM, c): K'H's columns
    A = np.eye(DIM)
    A[:, :c] -= G
    P = A @ P_prior @ A.T + G @ P_post[:c, :] @ keep.T
    return 0.5 * (P + P.T)


def information_6(H: np.ndarray, var: np.ndarray) -> np.ndarray:
    """6x6 information of the pose block [rot, pos] (the DegeneracyReport order) from H whose
    first six columns are [pos, rot]."""
    J = np.hstack([H[:, 3:6], H[:, 0:3]])
    return J.T @ (J / var[:, None])


def empty_measurements(cols: int = 6) -> Measurements:
    return Measurements(np.zeros(0), np.zeros((0, cols)), np.ones(0))


assert DIM >= 12
