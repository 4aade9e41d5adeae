"""Short gaps along the rows of the range image, filled where the surface runs on.

Dark ground seen at grazing incidence returns too little light for some of its pixels: a real
sensor (and the simulator's signal floor) leaves them without a return, scattered singly or in
pairs along the rows. The validity mask then erodes a 3x3 block around each of them, and a patch
on such ground dies within a few scans (on the simulated field a patch lived ~3 scans on
average, so the heading rested on patches picked again and again, each from a slightly wrong
pose). Within one row the neighbours of such a pixel share its elevation angle, so on a
continuous surface their ranges agree; a gap of at most `max_gap` pixels between two returns
whose ranges agree within `rel` is filled by linear interpolation of the range. The intensity
stays as the sensor gave it: no return is no light, 0, and the light such a pixel sent back was
below the detection floor, so dark is about right (interpolating the neighbours' intensity as
well was tried: no better over 18 seeds of the field, worse on the four 20 s sequences of the
tunnel and the field). Depth edges (the ends disagree), lost packets and a column window (runs of
16 columns and more) are left alone. New patches still need a real point under every pixel
(their world points come from the cloud); the filled pixels only let tracked patches, the change
gate and the occlusion test read on across a missing return.

Compiled on first use and cached beside this file (numba cache=True).
"""
from __future__ import annotations

import numpy as np
from coin_lio.kernel_cache import njit


@njit(cache=True, nogil=True, inline="always")
def _fill(out, v, a_u, b_u, gap, w, rel) -> int:
    """Fill the gap pixels between returns at columns a_u and a_u + gap + 1 = b_u (mod w) when
    their ranges agree; the number filled."""
    a, b = out[v, a_u], out[v, b_u]
    if abs(a - b) > rel * max(a, b):
        return 0
    for k in range(1, gap + 1):
        u = a_u + k
        if u >= w:
            u -= w
        out[v, u] = a + k / (gap + 1) * (b - a)
    return gap


@njit(cache=True, nogil=True)
def fill_row_gaps(rng: np.ndarray, max_gap: int, rel: float, wrap: bool) -> tuple[np.ndarray, int]:
    """rng (H, W) m (0 or NaN: no return) -> a filled copy and the number of pixels filled. A run
    of 1..max_gap pixels without a return between returns a and b with |r_a - r_b| <= rel *
    max(r_a, r_b) takes ranges linearly between a's and b's; with wrap the row is a panorama
    (column W-1 borders column 0)."""
    h, w = rng.shape
    out = rng.copy()
    filled = 0
    for v in range(h):
        first, last = -1, -1
        row = rng[v]
        for u in range(w):
            if row[u] > 0.0:
                if last < 0:
                    first = u
                elif 1 < u - last <= max_gap + 1:
                    filled += _fill(out, v, last, u, u - last - 1, w, rel)
                last = u
        gap = w - 1 - last + first                    # across the panorama's seam
        if wrap and first >= 0 and 1 <= gap <= max_gap:
            filled += _fill(out, v, last, first, gap, w, rel)
    return out, filled
