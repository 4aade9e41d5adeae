"""Pure helpers for photometric patches: pixel grids, bilinear sampling with a 360-degree u,
NCC, and a patch's 3D points from the dense image's point index.

A patch is size x size pixels (5 x 5 = 25), stored row-major (v outer, u inner); the centre is
element P // 2. uv are (u, v) pixel coordinates in the destaggered image.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from coin_lio.photometric.patch_kernel import bilinear_kernel

_NO_MASK = np.ones((1, 1), dtype=bool)


@lru_cache(maxsize=8)
def patch_offsets(size: int = 5) -> np.ndarray:
    """(P, 2) int64 (du, dv) offsets, row-major, P = size^2, centre at P // 2. Read-only: one
    array per size, shared (built once, not at every patch look-up)."""
    if size < 1 or size % 2 == 0:
        raise ValueError(f"patch size must be a positive odd integer, got {size}")
    d = np.arange(size) - size // 2
    dv, du = np.meshgrid(d, d, indexing="ij")
    out = np.stack([du.reshape(-1), dv.reshape(-1)], axis=1).astype(np.int64)
    out.flags.writeable = False
    return out


def patch_pixels(centers_uv: np.ndarray, size: int = 5) -> np.ndarray:
    """centres (M, 2) (or (2,)) -> (M, P, 2) float64 pixel coords (u not wrapped)."""
    c = np.asarray(centers_uv, dtype=np.float64).reshape(-1, 2)
    return c[:, None, :] + patch_offsets(size)[None, :, :]


def sample_bilinear(image: np.ndarray, uv: np.ndarray, wrap_u: bool = True
                    ) -> tuple[np.ndarray, np.ndarray]:
    """image (H, W) at uv (..., 2) -> (values (...) float64, inside (...) bool). u wraps around
    the panorama (or must lie in [0, W - 1]); v must lie in [0, H - 1]. Outside -> 0."""
    uv = np.asarray(uv, dtype=np.float64)
    flat = np.ascontiguousarray(uv.reshape(-1, 2))
    values, inside, _ = bilinear_kernel(np.asarray(image), flat, bool(wrap_u), _NO_MASK, False)
    return values.reshape(uv.shape[:-1]), inside.reshape(uv.shape[:-1])


def sample_patches(image: np.ndarray, uv: np.ndarray, mask: np.ndarray | None = None,
                   wrap_u: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """uv (M, P, 2) -> (values (M, P) float64, valid (M,) bool: every pixel inside the image
    and, given a mask (H, W) bool, every bilinear neighbour inside the mask)."""
    uv = np.asarray(uv, dtype=np.float64)
    flat = np.ascontiguousarray(uv.reshape(-1, 2))
    m = _NO_MASK if mask is None else np.asarray(mask, dtype=bool)
    values, _, ok = bilinear_kernel(np.asarray(image), flat, bool(wrap_u), m, mask is not None)
    return values.reshape(uv.shape[:-1]), ok.reshape(uv.shape[:-1]).all(axis=-1)


def ncc(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Normalised cross-correlation of patches (..., P) and (..., P) -> (...) in [-1, 1]; 0 when
    either patch is flat (no texture: nothing to track)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    da = a - a.mean(axis=-1, keepdims=True)
    db = b - b.mean(axis=-1, keepdims=True)
    den = np.sqrt(np.sum(da * da, axis=-1) * np.sum(db * db, axis=-1))
    num = np.sum(da * db, axis=-1)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 1e-12)


def patch_indices(point_index: np.ndarray, centers_uv: np.ndarray, size: int = 5
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Integer centres (M, 2) -> (point indices (M, P) int64 (-1 where absent), valid (M,):
    every pixel inside the image rows and filled). u wraps."""
    h, w = point_index.shape
    pix = np.rint(patch_pixels(centers_uv, size)).astype(np.int64)      # (M, P, 2)
    u, v = np.mod(pix[..., 0], w), pix[..., 1]
    rows_ok = (v >= 0) & (v < h)
    idx = np.where(rows_ok, point_index[np.clip(v, 0, h - 1), u], -1)
    return idx, np.all(idx >= 0, axis=1)


def patch_points(xyz: np.ndarray, point_index: np.ndarray, centers_uv: np.ndarray,
                 size: int = 5, T_world_lidar: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """A patch's 3D points: xyz (N, 3) (the cloud the image was filled from, flat order),
    point_index (H, W), centres (M, 2) -> (points (M, P, 3) float64, valid (M,)); with a pose
    T_world_lidar (4, 4) the points are in the world frame. Absent points are NaN."""
    pts = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
    idx, valid = patch_indices(point_index, centers_uv, size)
    out = np.where((idx >= 0)[..., None], pts[np.clip(idx, 0, None)], np.nan)
    if T_world_lidar is not None:
        t = np.asarray(T_world_lidar, dtype=np.float64)
        out = out @ t[:3, :3].T + t[:3, 3]
    return out, valid


def patch_intensities(image: np.ndarray, centers_uv: np.ndarray, size: int = 5) -> np.ndarray:
    """Reference intensities at integer centres (M, 2) -> (M, P) float64 (u wraps, v clipped)."""
    h, w = image.shape
    pix = np.rint(patch_pixels(centers_uv, size)).astype(np.int64)
    return np.asarray(image)[np.clip(pix[..., 1], 0, h - 1), np.mod(pix[..., 0], w)].astype(np.float64)


def lookup_nearest(image: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """image at the pixel containing uv (..., 2) (floor, u wraps, v clipped), as the reference's
    range and mask look-ups during tracking."""
    h, w = image.shape
    uv = np.asarray(uv, dtype=np.float64)
    u = np.mod(np.floor(np.nan_to_num(uv[..., 0])).astype(np.int64), w)
    v = np.clip(np.floor(np.nan_to_num(uv[..., 1])).astype(np.int64), 0, h - 1)
    return np.asarray(image)[v, u]
