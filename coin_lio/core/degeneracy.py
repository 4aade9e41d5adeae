"""How well a scan's geometry constrains the pose: eigen-analysis of the registration
information and COIN-LIO's weak-direction rule on the plane normals."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from coin_lio.config import DegeneracyConfig


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
    weak = np.zeros(6, dtype=bool)
    for i in range(6):
        t = vecs[3:, i]
        if np.linalg.norm(t) > 0.7 and len(weak_axes):
            weak[i] = np.max(np.abs(weak_axes @ (t / np.linalg.norm(t)))) > 0.9
        elif np.linalg.norm(t) <= 0.7:
            weak[i] = vals[i] < 1e-3 * max(vals[-1], 1e-12)
    return Degeneracy(vals, vecs, weak, weak_axes, strength, axes)
