"""PhotometricTracker._gate (the patch gate while moving objects are seen): a patch whose residual
is far larger than its texture explains sits out; a common pose error, which moves every patch's
residual with its gradient, gates nothing. Hand-built residuals and gradients."""
import numpy as np

from coin_lio.config import PhotometricConfig
from coin_lio.core.photometric import PatchSet, PhotometricTracker

M, P = 20, 25


def _tracker(rng: np.random.Generator) -> PhotometricTracker:
    t = PhotometricTracker(PhotometricConfig())
    t.patches = PatchSet(np.zeros((M, P, 3)), rng.uniform(50, 200, (M, P)), np.zeros(M, np.int64), np.zeros((M, 2)))
    return t


def test_a_common_pose_error_gates_nothing_but_a_walker_is_gated():
    rng = np.random.default_rng(0)
    t = _tracker(rng)
    texture = rng.uniform(2, 40, (M, 1))                           # gradient scale per patch
    gu, gv = texture * rng.normal(0, 1, (M, P)), texture * rng.normal(0, 1, (M, P))
    shifted = t.patches.ref + 0.7 * gu                             # every patch off by 0.7 px in u
    sel = np.arange(M)
    assert t._gate(sel, shifted, gu, gv).all()
    t._gated = None
    walker = shifted.copy()
    walker[7] = rng.uniform(0, 255, P)                             # someone walks into patch 7
    keep = t._gate(sel, walker, gu, gv)
    assert not keep[7] and keep.sum() == M - 1
    # decided once per scan: the next iteration keeps the same set
    assert (t._gate(sel, shifted, gu, gv) == keep).all()
