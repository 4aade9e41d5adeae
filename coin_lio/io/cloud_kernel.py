"""One compiled (numba) pass over a driver's structured cloud: the odometry's point selection
and/or the Ouster image fill. It reads x, y, z straight from the strided fields of the published
(H, W) array (48-byte points), so the cloud is read from memory once even when both are wanted;
the numpy versions built several (H*W,) temporaries each (~1 ms and ~2 ms per 128x1024 scan).

Compiled on first use and cached beside this file (numba cache=True).
"""
from __future__ import annotations

import numpy as np
from coin_lio.kernel_cache import njit

_NO_TIMES = np.zeros(0)
_NO_VALID = np.zeros(0, dtype=bool)
_NO_PIXELS = np.zeros(0, dtype=np.int64)


@njit(cache=True, nogil=True, error_model="numpy")
def cloud_pass(x: np.ndarray, y: np.ndarray, z: np.ndarray, value: np.ndarray, times: np.ndarray,
               valid: np.ndarray, min_r2: float, max_r2: float, stride: int, select: bool,
               pixel_of: np.ndarray, h: int, w: int, min_range: float, fill: bool):
    """In cloud order over x, y, z (N,) float fields (any stride):
    - select: flat indices (M,) of every stride-th point of those with min_r2 < x^2 + y^2 + z^2 <
      max_r2 (m^2, float32 arithmetic), a finite time (times (N,) s) and valid (N,) set;
    - fill: the image of value (N,) float32 (H, W) (0 where absent), the point index int64 (H, W)
      (-1 where absent) and the range float32 (H, W) m (0 where absent); point i fills the flat
      pixel pixel_of[i]; it is absent when its range is not finite, 0 or below min_range.
    Returns (indices, image, index, range); the parts not asked for are empty."""
    n = x.shape[0]
    out = np.empty(n // stride + 1 if select else 0, dtype=np.int64)
    size = h * w if fill else 0
    image = np.zeros(size, dtype=np.float32)
    index = np.full(size, -1, dtype=np.int64)
    rng = np.zeros(size, dtype=np.float32)
    seen = 0
    m = 0
    for i in range(n):
        px, py, pz = np.float32(x[i]), np.float32(y[i]), np.float32(z[i])
        r2 = px * px + py * py + pz * pz
        if fill:
            r = np.sqrt(r2)
            if np.isfinite(r) and r > 0 and r >= min_range:
                j = pixel_of[i]
                image[j] = np.float32(value[i])
                index[j] = i
                rng[j] = r
        if select and valid[i] and r2 > min_r2 and r2 < max_r2 and np.isfinite(times[i]):  # NaN: False
            if seen % stride == 0:
                out[m] = i
                m += 1
            seen += 1
    shape = (h, w) if fill else (0, 0)
    return out[:m].copy(), image.reshape(shape), index.reshape(shape), rng.reshape(shape)


def select_points(x: np.ndarray, y: np.ndarray, z: np.ndarray, times: np.ndarray, valid: np.ndarray,
                  min_r2: float, max_r2: float, stride: int) -> np.ndarray:
    """cloud_pass's selection alone: flat indices (M,)."""
    return cloud_pass(x, y, z, x, times, valid, min_r2, max_r2, stride, True, _NO_PIXELS, 0, 0, 0.0, False)[0]


def fill_image(x: np.ndarray, y: np.ndarray, z: np.ndarray, value: np.ndarray, pixel_of: np.ndarray,
               h: int, w: int, min_range: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """cloud_pass's image fill alone: image, point index, range (H, W)."""
    return cloud_pass(x, y, z, value, _NO_TIMES, _NO_VALID, 0.0, 0.0, 1, False, pixel_of, h, w, min_range,
                      True)[1:]


def select_and_fill(x: np.ndarray, y: np.ndarray, z: np.ndarray, value: np.ndarray, times: np.ndarray,
                    valid: np.ndarray, min_r2: float, max_r2: float, stride: int, pixel_of: np.ndarray,
                    h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Both in one pass (min_range 0): indices, image, point index, range."""
    return cloud_pass(x, y, z, value, times, valid, min_r2, max_r2, stride, True, pixel_of, h, w, 0.0, True)


@njit(cache=True, nogil=True, error_model="numpy")
def gather_points(x: np.ndarray, y: np.ndarray, z: np.ndarray, times: np.ndarray,
                  idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The selected points: xyz (M, 3) float64 and times (M,) at indices idx (M,) of the float
    fields x, y, z (N,) (any stride) and times (N,) (numpy's three gathers, stack and cast: ~0.1 ms
    a 64x1024 scan)."""
    m = idx.shape[0]
    pts = np.empty((m, 3))
    t = np.empty(m)
    for j in range(m):
        i = idx[j]
        pts[j, 0], pts[j, 1], pts[j, 2] = x[i], y[i], z[i]
        t[j] = times[i]
    return pts, t
