"""Compiled (numba) bilinear sampling of the filtered image at patch pixels: the residuals sample
the image and both gradients at ~1500 points per iteration, tracking and selection once more.
The numpy versions (patches.sample_bilinear / sample_patches) spent ~0.2-0.4 ms a call in
temporaries. Compiled on first use and cached beside this file (numba cache=True).
"""
from __future__ import annotations

import numpy as np
from coin_lio.kernel_cache import njit

from coin_lio.photometric.projection_kernel import jacobian_one


@njit(cache=True, nogil=True, error_model="numpy")
def _cell(u: float, v: float, h: int, w: int, wrap_u: bool):
    """The bilinear cell of (u, v) in an (H, W) image: (inside, u0, u1, v0, v1, au, av); inside:
    finite, v in [0, H-1] and, unless u wraps around the panorama, u in [0, W-1]."""
    if not (np.isfinite(u) and np.isfinite(v) and v >= 0 and v <= h - 1) \
            or (not wrap_u and not (u >= 0 and u <= w - 1)):
        return False, 0, 0, 0, 0, 0.0, 0.0
    u0f, v0f = np.floor(u), np.floor(v)
    u0 = int(u0f)
    if wrap_u:
        u0 = u0 % w
        u1 = (u0 + 1) % w
    else:
        u1 = min(u0 + 1, w - 1)
    v0 = int(v0f)
    return True, u0, u1, v0, min(v0 + 1, h - 1), u - u0f, v - v0f


@njit(cache=True, nogil=True, error_model="numpy")
def _interp(image: np.ndarray, u0: int, u1: int, v0: int, v1: int, au: float, av: float) -> float:
    return ((1 - av) * ((1 - au) * image[v0, u0] + au * image[v0, u1])
            + av * ((1 - au) * image[v1, u0] + au * image[v1, u1]))


@njit(cache=True, nogil=True, error_model="numpy")
def bilinear_kernel(image: np.ndarray, uv: np.ndarray, wrap_u: bool, mask: np.ndarray,
                    use_mask: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """image (H, W) at uv (N, 2) -> values (N,) float64 (0 outside), inside (N,) (finite, v in
    [0, H-1], and u in [0, W-1] unless wrap_u), masked (N,) (inside and, with use_mask, all four
    bilinear neighbours True in mask (H, W)). u wraps around the panorama when wrap_u."""
    h, w = image.shape
    n = uv.shape[0]
    values = np.zeros(n)
    inside = np.zeros(n, dtype=np.bool_)
    masked = np.zeros(n, dtype=np.bool_)
    for i in range(n):
        ins, u0, u1, v0, v1, au, av = _cell(uv[i, 0], uv[i, 1], h, w, wrap_u)
        if not ins:
            continue
        values[i] = _interp(image, u0, u1, v0, v1, au, av)
        inside[i] = True
        masked[i] = (not use_mask) or (mask[v0, u0] and mask[v0, u1] and mask[v1, u0] and mask[v1, u1])
    return values, inside, masked


@njit(cache=True, nogil=True, error_model="numpy")
def patch_rows_kernel(uv: np.ndarray, ok: np.ndarray, image: np.ndarray, grad_u: np.ndarray,
                      grad_v: np.ndarray, mask: np.ndarray, p_t: np.ndarray, jac_args: tuple,
                      R_t: np.ndarray, k: np.ndarray, q: np.ndarray, ref: np.ndarray, R_il: np.ndarray,
                      R_wi: np.ndarray):
    """The photometric rows of every fully visible patch, in one pass. Per patch m and pixel p:
    uv (M, P, 2) where the patch point projects, ok (M, P) both projections valid, p_t (M*P, 3)
    the point in its pixel time's LiDAR frame, whose d(u, v)/dp_t (jacobian_one with jac_args:
    ImageModel.jacobian_args()) is taken for valid patches only,
    R_t[k] (U, 3, 3) indexed by k (M*P,) the pixel time's LiDAR(t) -> LiDAR(end)
    rotation, q (M, P, 3) the point in the IMU frame, ref (M, P) reference intensities; R_il,
    R_wi (3, 3). A patch is valid when every pixel is inside the image, its four bilinear
    neighbours in the mask and ok. Returns valid (M,), intensity, grad_u, grad_v (M, P) and
    the residual I - ref (M, P) and its row [d/dpos, d/drot] (M, P, 6), filled for valid patches:
    with g_q = R_il R_t (grad J) the gradient in the IMU frame, d/dpos = -R_wi g_q and
    d/drot = g_q x q (PhotometricTracker.measure)."""
    m_n, p_n = ok.shape
    h, w = image.shape
    fx, fy, alt, origin_z, beam_offset, local_fy = jac_args
    valid = np.zeros(m_n, dtype=np.bool_)
    inten = np.zeros((m_n, p_n))
    gu = np.zeros((m_n, p_n))
    gv = np.zeros((m_n, p_n))
    res = np.zeros((m_n, p_n))
    H = np.zeros((m_n, p_n, 6))
    for m in range(m_n):
        good = True
        for p in range(p_n):
            ins, u0, u1, v0, v1, au, av = _cell(uv[m, p, 0], uv[m, p, 1], h, w, True)
            if not (ok[m, p] and ins and mask[v0, u0] and mask[v0, u1] and mask[v1, u0] and mask[v1, u1]):
                good = False
                break
            inten[m, p] = _interp(image, u0, u1, v0, v1, au, av)
            gu[m, p] = _interp(grad_u, u0, u1, v0, v1, au, av)
            gv[m, p] = _interp(grad_v, u0, u1, v0, v1, au, av)
        if not good:
            continue
        valid[m] = True
        for p in range(p_n):
            i = m * p_n + p
            ju_x, ju_y, jv_x, jv_y, jv_z = jacobian_one(p_t[i, 0], p_t[i, 1], p_t[i, 2], fx, fy, alt,
                                                        origin_z, beam_offset, local_fy)
            g0 = gu[m, p] * ju_x + gv[m, p] * jv_x                     # d I / d p_t
            g1 = gu[m, p] * ju_y + gv[m, p] * jv_y
            g2 = gv[m, p] * jv_z                                       # du/dz = 0
            kk = k[i]
            e0 = R_t[kk, 0, 0] * g0 + R_t[kk, 0, 1] * g1 + R_t[kk, 0, 2] * g2    # through R_t
            e1 = R_t[kk, 1, 0] * g0 + R_t[kk, 1, 1] * g1 + R_t[kk, 1, 2] * g2
            e2 = R_t[kk, 2, 0] * g0 + R_t[kk, 2, 1] * g1 + R_t[kk, 2, 2] * g2
            q0 = R_il[0, 0] * e0 + R_il[0, 1] * e1 + R_il[0, 2] * e2           # d/dq = R_il e
            q1 = R_il[1, 0] * e0 + R_il[1, 1] * e1 + R_il[1, 2] * e2
            q2 = R_il[2, 0] * e0 + R_il[2, 1] * e1 + R_il[2, 2] * e2
            for r in range(3):                        # d q / d pos = -R_wi^T: row -R_wi d/dq
                H[m, p, r] = -(R_wi[r, 0] * q0 + R_wi[r, 1] * q1 + R_wi[r, 2] * q2)
            qx, qy, qz = q[m, p, 0], q[m, p, 1], q[m, p, 2]
            H[m, p, 3] = q1 * qz - q2 * qy            # d/dq x q
            H[m, p, 4] = q2 * qx - q0 * qz
            H[m, p, 5] = q0 * qy - q1 * qx
            res[m, p] = inten[m, p] - ref[m, p]
    return valid, inten, gu, gv, res, H


@njit(cache=True, nogil=True, error_model="numpy")
def candidate_patch_kernel(point_index: np.ndarray, mask: np.ndarray, centres: np.ndarray,
                           size: int) -> tuple[np.ndarray, np.ndarray]:
    """Patches of size x size pixels around integer centres (K, 2) (u, v): their point indices
    (K, P) int64 into the organised cloud (point_index (H, W), -1 where absent or off the rows; u
    wraps) and full (K,) bool: every pixel on the rows, filled, and with all four bilinear
    neighbours in mask (H, W), as tracking demands. One pass for patches.patch_indices and
    patches.sample_patches' validity at the same pixels."""
    h, w = point_index.shape
    k = centres.shape[0]
    half = size // 2
    idx = np.full((k, size * size), -1, dtype=np.int64)
    full = np.ones(k, dtype=np.bool_)
    for i in range(k):
        j = 0
        for dv in range(-half, half + 1):
            v = centres[i, 1] + dv
            for du in range(-half, half + 1):
                u = (centres[i, 0] + du) % w
                if v < 0 or v >= h:
                    full[i] = False
                else:
                    idx[i, j] = point_index[v, u]
                    u1, v1 = (u + 1) % w, min(v + 1, h - 1)
                    if idx[i, j] < 0 or not (mask[v, u] and mask[v, u1] and mask[v1, u] and mask[v1, u1]):
                        full[i] = False
                j += 1
    return idx, full


@njit(cache=True, nogil=True, error_model="numpy")
def track_kernel(image: np.ndarray, mask: np.ndarray, range_img: np.ndarray, uv: np.ndarray,
                 ok: np.ndarray, p_t: np.ndarray, ref: np.ndarray, margin: int,
                 occlusion_m: float, occlusion_rel: float):
    """Tracking's tests of every patch in one pass (PhotometricTracker.track_and_select): uv (M, P, 2)
    where its points project now, ok (M, P) both projections valid, p_t (M, P, 3) the points in
    their pixel time's LiDAR frame, ref (M, P) reference intensities. Returns
    - inside (M,): every pixel's four bilinear neighbours in the image (u wraps) and in mask
      (H, W), ok everywhere, the centre row at least margin from the top and bottom;
    - visible (M,): the centre's predicted range |p_t| exceeds the range image's return at the
      centre's pixel (floor; NaN -> pixel 0) by at most max(occlusion_m, occlusion_rel x range);
    - score (M,): the NCC of the sampled intensities (0 outside the image) and ref, 0 for a flat
      patch (patches.ncc).
    The numpy versions (sample_patches, lookup_nearest, norm, ncc) cost ~0.25 ms a scan."""
    m_n, p_n = ok.shape
    h, w = image.shape
    c = p_n // 2
    inside = np.zeros(m_n, dtype=np.bool_)
    visible = np.zeros(m_n, dtype=np.bool_)
    score = np.zeros(m_n)
    vals = np.empty(p_n)
    for m in range(m_n):
        good = True
        for p in range(p_n):
            ins, u0, u1, v0, v1, au, av = _cell(uv[m, p, 0], uv[m, p, 1], h, w, True)
            if ins:
                vals[p] = _interp(image, u0, u1, v0, v1, au, av)
                good = good and ok[m, p] and mask[v0, u0] and mask[v0, u1] and mask[v1, u0] and mask[v1, u1]
            else:
                vals[p] = 0.0
                good = False
        cu, cv = uv[m, c, 0], uv[m, c, 1]
        inside[m] = good and cv >= margin and cv <= h - 1 - margin
        ui = int(np.floor(cu)) % w if np.isfinite(cu) else 0
        vi = min(max(int(np.floor(cv)), 0), h - 1) if np.isfinite(cv) else 0
        x, y, z = p_t[m, c, 0], p_t[m, c, 1], p_t[m, c, 2]
        predicted = np.sqrt(x * x + y * y + z * z)
        visible[m] = predicted - range_img[vi, ui] <= max(occlusion_m, occlusion_rel * predicted)
        sa, sb = 0.0, 0.0
        for p in range(p_n):
            sa += vals[p]
            sb += ref[m, p]
        ma, mb = sa / p_n, sb / p_n
        saa, sbb, sab = 0.0, 0.0, 0.0
        for p in range(p_n):
            da, db = vals[p] - ma, ref[m, p] - mb
            saa += da * da
            sbb += db * db
            sab += da * db
        den = np.sqrt(saa * sbb)
        score[m] = sab / den if den > 1e-12 else 0.0
    return inside, visible, score
