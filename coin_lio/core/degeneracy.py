"""How well a scan's geometry constrains the pose: eigen-analysis of the registration
information and COIN-LIO's weak-direction rule on the plane normals."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from coin_lio.config import DegeneracyConfig
from coin_lio.core.state import BA, BG, DIM, NavState


@dataclass
class Degeneracy:
    eigenvalues: np.ndarray        # (6,) ascending, information of [rot, pos]
    eigenvectors: np.ndarray       # (6, 6) columns
    weak: np.ndarray               # (6,) bool per eigen-direction
    weak_translation: np.ndarray   # (K, 3) unit, world frame (COIN-LIO rule)
    normal_strength: np.ndarray    # (3,) sum of |n . v| per translational eigen-direction
    translation_axes: np.ndarray   # (3, 3) columns: the eigen-directions of N^T N


def analyse(info6: np.ndarray, normals: np.ndarray, cfg: DegeneracyConfig) -> Degeneracy:
    """info6 (6, 6) in [rot, pos] order; normals (M, 3) of the geometric residuals (world)."""
    vals, vecs = np.linalg.eigh(0.5 * (info6 + info6.T))
    if len(normals):
        _, axes = np.linalg.eigh(normals.T @ normals)
        proj = np.abs(normals @ axes)                      # (M, 3)
        strength = np.where(proj > cfg.min_component, proj, 0.0).sum(axis=0)
    else:
        axes, strength = np.eye(3), np.zeros(3)
    weak_axes = axes[:, strength < cfg.weak_threshold].T
    # An eigen-direction of the 6x6 is weak when its translational part lies along a weak
    # axis, or when it is mostly rotational and carries little information.
    t_norm = np.sqrt((vecs[3:] ** 2).sum(axis=0))            # (6,) translational part's length
    translational = t_norm > 0.7
    weak = ~translational & (vals < 1e-3 * max(vals[-1], 1e-12))
    if len(weak_axes):
        along = np.abs(weak_axes @ (vecs[3:] / np.where(translational, t_norm, 1.0))).max(axis=0)   # (6,)
        weak |= translational & (along > 0.9)
    return Degeneracy(vals, vecs, weak, weak_axes, strength, axes)


def weak_bias_subspace(degen: Degeneracy, R_wi: np.ndarray) -> np.ndarray:
    """(DIM, DIM) orthogonal projector onto the IMU-bias error states the scan's geometry leaves
    weak: the accelerometer bias along each weak translation (world d, IMU frame R^T d) and the gyro
    bias along each weak, mostly rotational eigen-direction (IMU frame, as the filter's rotation
    error). There only a weak signal (ground texture, which people crossing it corrupt) reaches the
    biases, and a bias walked off along the travel direction drives the velocity away: the field
    with movers and knocks diverged (1.25 m over 9 m) with ba 8 sigma off its prior. The pipeline
    holds them while moving objects are seen (update.hold_weak_biases)."""
    hold = np.zeros((DIM, DIM))
    rot = [degen.eigenvectors[:3, i] for i in np.flatnonzero(degen.weak)
           if np.linalg.norm(degen.eigenvectors[:3, i]) > 0.7]
    for block, dirs in ((BA, [R_wi.T @ d for d in degen.weak_translation]), (BG, rot)):
        if len(dirs):
            u, s, _ = np.linalg.svd(np.array(dirs).T, full_matrices=False)    # orthonormal basis
            u = u[:, s > 1e-6 * s[0]]
            hold[block, block] = u @ u.T
    return hold


def hold_biases(x: NavState, x_prior: NavState, hold: np.ndarray) -> None:
    """Undo an update's bias change inside the subspace `hold` projects onto (x in place)."""
    x.bg = x.bg - hold[BG, BG] @ (x.bg - x_prior.bg)
    x.ba = x.ba - hold[BA, BA] @ (x.ba - x_prior.ba)
