"""PhotometricTracker._gate (the patch gate while moving objects are seen): a patch whose residual
is far larger than its texture explains sits out; a common pose error, which moves every patch's
residual with its gradient, gates nothing; a patch near which something moved since the last scan
(range change in its window) sits out, one dust return does not gate. Hand-built residuals,
gradients and range images."""
import numpy as np

from coin_lio.config import PhotometricConfig
from coin_lio.core.photometric import PatchSet, PhotometricTracker
from coin_lio.photometric.change_kernel import bounds_at, range_bounds, window_change

M, P = 20, 25


def _tracker(rng: np.random.Generator) -> PhotometricTracker:
    t = PhotometricTracker(PhotometricConfig())
    t.patches = PatchSet(np.zeros((M, P, 3)), rng.uniform(50, 200, (M, P)), np.zeros(M, np.int64), np.zeros((M, 2)))
    return t


def test_a_common_pose_error_gates_nothing_but_a_walker_is_gated():
    rng = np.random.default_rng(0)
    t = _tracker(rng)
    t.gate_active = True                                           # moving objects seen
    texture = rng.uniform(2, 40, (M, 1))                           # gradient scale per patch
    gu, gv = texture * rng.normal(0, 1, (M, P)), texture * rng.normal(0, 1, (M, P))
    shifted = t.patches.ref + 0.7 * gu                             # every patch off by 0.7 px in u
    sel = np.arange(M)
    assert t._gate(sel, shifted, gu, gv, t.patches.uv).all()
    t._gated = None
    walker = shifted.copy()
    walker[7] = rng.uniform(0, 255, P)                             # someone walks into patch 7
    keep = t._gate(sel, walker, gu, gv, t.patches.uv)
    assert not keep[7] and keep.sum() == M - 1
    t._gated, t.gate_active = None, False                          # no moving object seen: all in
    assert t._gate(sel, walker, gu, gv, t.patches.uv).all()
    t._gated, t.gate_active = None, True
    keep = t._gate(sel, walker, gu, gv, t.patches.uv)
    # decided once per scan: the next iteration keeps the same set
    assert (t._gate(sel, shifted, gu, gv, t.patches.uv) == keep).all()


def _ground(h: int = 64, w: int = 1024) -> np.ndarray:
    """(H, W) m range image of flat ground seen from 1 m up: range grows towards the horizon."""
    rows = np.linspace(3.0, 25.0, h)[::-1, None]
    return np.repeat(rows, w, axis=1).astype(np.float32)


def test_window_change_ignores_ego_motion_and_one_dust_return_but_sees_a_walker():
    prev = _ground()
    now = prev - 0.12                                # the robot came 0.12 m closer to everything
    now[:, :300] = _ground()[:, :300]                # (columns behind it: unchanged)
    uv_prev = np.array([[500.0, 30.0], [700.0, 40.0], [100.0, 20.0], [1022.0, 32.0]])
    uv_now = uv_prev + [2.0, 0.0]                    # the patches moved 2 px in the image
    now[38, 713] = 1.5                               # one dust return beside patch 1
    now[25:38, 490:496] = 4.0                        # a person beside patch 0 (6 x 13 px)
    now[28:36, 0:4] = 3.0                            # and one beside patch 3, across the seam
    changed, compared = window_change(now, uv_now, prev, uv_prev, 22, 5, 0.5, 0.1)
    assert (compared == 45 * 11).all()
    assert changed[0] >= 60 and changed[3] >= 24
    assert changed[1] == 1 and changed[2] == 0


def test_bounds_at_a_pixel_are_the_whole_image_bounds():
    """The kernel's per-pixel bounds equal range_bounds' (erode / dilate over 3 rows, replicated
    borders, no-return pixels left out) at every pixel, the first and last rows included."""
    rng = np.random.default_rng(4)
    img = (rng.uniform(1, 30, (16, 40)) * (rng.random((16, 40)) > 0.3)).astype(np.float32)
    img[:, 5] = 0.0                                  # a column with no return at all
    lo, hi = range_bounds(img)
    for b in range(16):
        for c in range(40):
            got = bounds_at(img, b, c)
            assert got[1] == hi[b, c] and (got[0] == lo[b, c] or (np.isinf(got[0]) and np.isinf(lo[b, c])))


def test_patches_near_a_mover_sit_out_only_when_the_last_scan_is_known():
    from coin_lio.core.photometric import PhotoFrame

    rng = np.random.default_rng(1)
    t = _tracker(rng)
    t.patches.uv = np.c_[np.linspace(50, 950, M), np.full(M, 32.0)]
    prev, now = _ground(), _ground()
    now[26:36, 440:446] = 3.0                        # a person near the patch at u ~ 450
    t.frame = PhotoFrame(*(np.zeros((64, 1024), np.float32),) * 3, np.ones((64, 1024), bool), now,
                         np.zeros((64, 1024), np.int64), np.zeros(1))
    sel = np.arange(M)
    flat = np.zeros((M, P))
    assert t._gate(sel, t.patches.ref, flat, flat, t.patches.uv).all()   # no last scan: nothing known
    t._gated, t._uv_range = None, prev
    keep = t._gate(sel, t.patches.ref, flat, flat, t.patches.uv)
    near = np.abs(t.patches.uv[:, 0] - 443) <= 22 + 3
    assert near.any() and (keep == ~near).all()
