"""SO(3) helpers, batched over leading dimensions. Rotation vectors in rad."""
from __future__ import annotations

import numpy as np

from coin_lio.core.motion_kernel import rodrigues
from coin_lio.core.state_kernel import log_rotation


def skew(v: np.ndarray) -> np.ndarray:
    """[v]x for v of shape (..., 3) -> (..., 3, 3)."""
    v = np.asarray(v, dtype=np.float64)
    out = np.zeros(v.shape[:-1] + (3, 3))
    out[..., 0, 1], out[..., 0, 2] = -v[..., 2], v[..., 1]
    out[..., 1, 0], out[..., 1, 2] = v[..., 2], -v[..., 0]
    out[..., 2, 0], out[..., 2, 1] = -v[..., 1], v[..., 0]
    return out


def exp(w: np.ndarray) -> np.ndarray:
    """Rodrigues: rotation vector(s) (..., 3) -> rotation matrices (..., 3, 3)."""
    w = np.asarray(w, dtype=np.float64)
    if w.shape == (3,):
        return _exp_one(float(w[0]), float(w[1]), float(w[2]))
    theta = np.linalg.norm(w, axis=-1)[..., None, None]
    K = skew(w)
    small = theta < 1e-8
    safe = np.where(small, 1.0, theta)
    a = np.where(small, 1.0 - theta**2 / 6.0, np.sin(safe) / safe)
    b = np.where(small, 0.5 - theta**2 / 24.0, (1.0 - np.cos(safe)) / safe**2)
    return np.eye(3) + a * K + b * (K @ K)


def _exp_one(x: float, y: float, z: float) -> np.ndarray:
    """exp of one rotation vector in closed form (the compiled Rodrigues of the motion kernels):
    the IMU and update code call it per sample / iteration, where the batched form costs ~25 us."""
    out = np.empty((3, 3))
    rodrigues(x, y, z, out)
    return out


def log(R: np.ndarray) -> np.ndarray:
    """Rotation matrix (3, 3) -> rotation vector (3,), robust near 0 and pi (Shepperd's quaternion,
    then 2 atan2(|v|, w) v / |v|: state_kernel.log_rotation). scipy's
    Rotation.from_matrix(R).as_rotvec() costs ~0.2 ms a call."""
    out = np.empty(3)
    log_rotation(np.ascontiguousarray(R, dtype=np.float64), out)
    return out


def orthonormalize(R: np.ndarray) -> np.ndarray:
    """Nearest rotation matrix (removes numerical drift after many products)."""
    u, _, vt = np.linalg.svd(R)
    out = u @ vt
    if np.linalg.det(out) < 0:
        u[:, -1] *= -1
        out = u @ vt
    return out
