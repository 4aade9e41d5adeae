"""Compiled (numba) patch-candidate detection: the gradient score and the allowed pixels in one
pass over the image (numpy spent ~0.6 ms a scan in (H, W) temporaries), and the greedy
non-maximum suppression (a Python loop over ~10k candidates: ~0.4 ms).
Compiled on first use and cached beside this file (numba cache=True)."""
from __future__ import annotations

import numpy as np
from coin_lio.kernel_cache import njit

from coin_lio.photometric.projection_kernel import jacobian_one


@njit(cache=True, nogil=True)
def greedy_nms_kernel(v: np.ndarray, u: np.ndarray, h: int, w: int, radius: int) -> np.ndarray:
    """Indices of the kept points, in order: visit (v, u) (K,) int64 in the given order, keep a
    point unless a kept one lies within radius (dv^2 + du^2 <= r^2, u not wrapped)."""
    r = radius
    pw = w + 2 * r
    raster = np.zeros((h + 2 * r) * pw, dtype=np.uint8)
    n_off = 0
    offsets = np.empty((2 * r + 1) ** 2, dtype=np.int64)
    for dv in range(-r, r + 1):
        for du in range(-r, r + 1):
            if dv * dv + du * du <= r * r:
                offsets[n_off] = dv * pw + du
                n_off += 1
    keep = np.empty(v.shape[0], dtype=np.int64)
    m = 0
    for i in range(v.shape[0]):
        f = (v[i] + r) * pw + u[i] + r
        if raster[f]:
            continue
        keep[m] = i
        m += 1
        for j in range(n_off):
            raster[f + offsets[j]] = 1
    return keep[:m].copy()


@njit(cache=True, nogil=True)
def nms_flat_kernel(flat: np.ndarray, score: np.ndarray, h: int, w: int,
                    radius: int) -> tuple[np.ndarray, np.ndarray]:
    """greedy_nms_kernel over flat pixel indices (K,) of an (H, W) image in visiting order:
    the kept ones as uv (M, 2) int64 (u, v) and their scores (M,) float32."""
    v = flat // w
    u = flat - v * w
    keep = greedy_nms_kernel(v, u, h, w, radius)
    uv = np.empty((keep.shape[0], 2), dtype=np.int64)
    s = np.empty(keep.shape[0], dtype=np.float32)
    for i in range(keep.shape[0]):
        uv[i, 0], uv[i, 1], s[i] = u[keep[i]], v[keep[i]], score[keep[i]]
    return uv, s


@njit(cache=True, nogil=True, error_model="numpy")
def candidate_pixels(grad_u: np.ndarray, grad_v: np.ndarray, mask: np.ndarray, margin: int,
                     existing: np.ndarray, radius: int, grad_min: float) -> tuple[np.ndarray, np.ndarray]:
    """Flat pixel indices (K,) and scores (K,) float32 of the pixels with 0.5 |Iu| + 0.5 |Iv| >
    grad_min, True in mask (H, W), at least margin px inside the image and farther than radius
    (dv^2 + du^2 > r^2, u wrapping) from every existing patch centre (E, 2) (u, v), in raster order."""
    h, w = mask.shape
    blocked = np.zeros((h, w), dtype=np.bool_)
    for e in range(existing.shape[0]):
        cu, cv = int(np.rint(existing[e, 0])), int(np.rint(existing[e, 1]))
        for dv in range(-radius, radius + 1):
            v = cv + dv
            if v < 0 or v >= h:
                continue
            rem = radius * radius - dv * dv          # the disk's row: |du| <= half, as one run
            half = 0
            while (half + 1) * (half + 1) <= rem:
                half += 1
            if 2 * half + 1 >= w:
                blocked[v, :] = True
                continue
            lo = (cu - half) % w
            hi = lo + 2 * half + 1
            if hi <= w:
                blocked[v, lo:hi] = True
            else:                                    # wraps past the last column
                blocked[v, lo:] = True
                blocked[v, :hi - w] = True
    n = 0
    flat = np.empty(h * w, dtype=np.int64)
    score = np.empty(h * w, dtype=np.float32)
    if h <= 2 * margin or w <= 2 * margin:
        return flat[:0].copy(), score[:0].copy()
    for v in range(margin, h - margin):
        for u in range(margin, w - margin):
            if not mask[v, u] or blocked[v, u]:
                continue
            s = np.float32(0.5) * abs(grad_u[v, u]) + np.float32(0.5) * abs(grad_v[v, u])
            if s > grad_min:
                flat[n] = v * w + u
                score[n] = s
                n += 1
    return flat[:n].copy(), score[:n].copy()


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _pixel(image: np.ndarray, row: int, col: int) -> float:
    """image at (row, col): rows reflected at the borders (reflect-101), columns wrapped."""
    h, w = image.shape
    row = abs(row)
    if row > h - 1:
        row = 2 * (h - 1) - row
    return image[row, col % w]


@njit(cache=True, nogil=True, error_model="numpy")
def structure_directions_kernel(image: np.ndarray, u: np.ndarray, v: np.ndarray, block: int) -> np.ndarray:
    """The larger eigenvalue's unit eigenvector (e_u, e_v) of the structure tensor at pixels
    (v, u) (K,) of image (H, W): as cv2.cornerEigenValsAndVecs(block, Sobel 3) at the centre of
    the candidate's window (scale 1 / (4 block), the box sum anchored as OpenCV's, its eigenvector
    formula and fallbacks), rows reflected and columns wrapped as dominant_directions' windows.
    Returns (K, 2) float64, zero where the tensor has no direction."""
    k = u.shape[0]
    out = np.zeros((k, 2))
    scale = 1.0 / (4.0 * block)
    lo_b, hi_b = -(block // 2), block - block // 2
    for i in range(k):
        a = 0.0
        b = 0.0
        c = 0.0
        for dr in range(lo_b, hi_b):
            r = v[i] + dr
            for dc in range(lo_b, hi_b):
                q = u[i] + dc
                dx = ((_pixel(image, r - 1, q + 1) + 2.0 * _pixel(image, r, q + 1) + _pixel(image, r + 1, q + 1))
                      - (_pixel(image, r - 1, q - 1) + 2.0 * _pixel(image, r, q - 1) + _pixel(image, r + 1, q - 1)))
                dy = ((_pixel(image, r + 1, q - 1) + 2.0 * _pixel(image, r + 1, q) + _pixel(image, r + 1, q + 1))
                      - (_pixel(image, r - 1, q - 1) + 2.0 * _pixel(image, r - 1, q) + _pixel(image, r - 1, q + 1)))
                dx *= scale
                dy *= scale
                a += dx * dx
                b += dx * dy
                c += dy * dy
        l1 = 0.5 * (a + c) + np.sqrt(0.25 * (a - c) * (a - c) + b * b)
        x, y = b, l1 - a                     # OpenCV's calcEigenValsVecs, first eigenvector
        e = abs(x)
        if e + abs(y) < 1e-4:
            y, x = b, l1 - c
            e = abs(x)
            if e + abs(y) < 1e-4:
                e = 1.0 / (e + abs(y) + 1.1920929e-07)
                x *= e
                y *= e
        d = np.sqrt(x * x + y * y)
        if d > 0:
            out[i, 0], out[i, 1] = x / d, y / d
    return out


@njit(cache=True, nogil=True)
def round_robin_kernel(orders: np.ndarray, n_max: int) -> np.ndarray:
    """orders (W, U) int64: each weak direction's candidates, best first. Direction 0 takes its
    best candidate not yet taken, then 1, ..., in turn until min(n_max, U) are taken; returns the
    taken candidates (M,) in pick order (a Python loop: ~0.07 ms a scan)."""
    n_dirs, n = orders.shape
    want = min(n_max, n)
    taken = np.zeros(n, dtype=np.bool_)
    ptr = np.zeros(n_dirs, dtype=np.int64)
    picks = np.empty(want, dtype=np.int64)
    m = 0
    while m < want:
        for w in range(n_dirs):
            while ptr[w] < n and taken[orders[w, ptr[w]]]:
                ptr[w] += 1
            if ptr[w] == n:
                continue
            i = orders[w, ptr[w]]
            taken[i] = True
            picks[m] = i
            m += 1
            if m == want:
                break
    return picks


@njit(cache=True, nogil=True, error_model="numpy")
def degeneracy_pick_kernel(directions: np.ndarray, points: np.ndarray, valid: np.ndarray, weak: np.ndarray,
                           fx: float, fy: float, alt: np.ndarray, origin_z: float, beam_offset: float,
                           local_fy: bool, n_max: int) -> np.ndarray:
    """COIN-LIO's degeneracy-aware pick in one pass: candidates k (K,) with a finite, non-zero
    point (K, 3) and valid (K,) score |e_k . normalize(J_pi(p_k) v_w)| for each unit weak
    direction v_w (W, 3) (directions e (K, 2); J_pi: jacobian_one with the ImageModel's
    jacobian_args; 0 where the motion vanishes); the directions then take turns picking their
    best remaining candidate (ties: the earlier candidate). Returns the picks (M,) int64, indices
    into K, M = min(n_max, usable)."""
    k_n, w_n = points.shape[0], weak.shape[0]
    usable = np.empty(k_n, dtype=np.int64)
    n = 0
    for k in range(k_n):
        x, y, z = points[k, 0], points[k, 1], points[k, 2]
        if valid[k] and np.isfinite(x) and np.isfinite(y) and np.isfinite(z) and x * x + y * y + z * z > 0:
            usable[n] = k
            n += 1
    scores = np.empty((w_n, n))
    for j in range(n):
        k = usable[j]
        a, b, c, d, e = jacobian_one(points[k, 0], points[k, 1], points[k, 2], fx, fy, alt, origin_z,
                                     beam_offset, local_fy)
        for w in range(w_n):
            mu = a * weak[w, 0] + b * weak[w, 1] + 0.0 * weak[w, 2]
            mv = c * weak[w, 0] + d * weak[w, 1] + e * weak[w, 2]
            norm = np.sqrt(mu * mu + mv * mv)
            if norm > 1e-12:
                mu, mv = mu / norm, mv / norm
            else:
                mu, mv = 0.0, 0.0
            scores[w, j] = abs(mu * directions[k, 0] + mv * directions[k, 1])
    orders = np.empty((w_n, n), dtype=np.int64)
    for w in range(w_n):
        orders[w] = np.argsort(-scores[w], kind="mergesort")
    return usable[round_robin_kernel(orders, n_max)]
