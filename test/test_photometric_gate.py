"""PhotometricTracker._gate (the patch gate while moving objects are seen): a patch whose residual
is far larger than its texture explains sits out; a common pose error, which moves every patch's
residual with its gradient, gates nothing; a patch near which something moved since the last scan
(range change in its window) sits out, one dust return does not gate. Hand-built residuals,
gradients and range images."""
import numpy as np

from coin_lio.config import PhotometricConfig
from coin_lio.core.photometric import PatchSet, PhotometricTracker
from coin_lio.photometric.change_kernel import bounds_at, window_change

M, P = 20, 25


def _tracker(rng: np.random.Generator) -> PhotometricTracker:
    t = PhotometricTracker(PhotometricConfig())
    t.patches = PatchSet(np.zeros((M, P, 3)), rng.uniform(50, 200, (M, P)), np.zeros(M, np.int64), np.zeros((M, 2)),
                         np.zeros((M, 3)))
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


def range_bounds(range_img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The bounds of bounds_at over the whole image with OpenCV: (nearest, farthest) return (H, W)
    of each pixel and the pixels above and below it (no-return pixels left out)."""
    import cv2

    img = np.ascontiguousarray(range_img, dtype=np.float32)
    kernel = np.ones((3, 1), np.uint8)
    lo = cv2.erode(np.where(img > 0, img, np.float32(np.inf)), kernel, borderType=cv2.BORDER_REPLICATE)
    hi = cv2.dilate(img, kernel, borderType=cv2.BORDER_REPLICATE)
    return lo, hi


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
                         np.zeros((64, 1024), np.int64), np.zeros(1), now)
    sel = np.arange(M)
    flat = np.zeros((M, P))
    assert t._gate(sel, t.patches.ref, flat, flat, t.patches.uv).all()   # no last scan: nothing known
    t._gated, t._uv_range = None, prev
    keep = t._gate(sel, t.patches.ref, flat, flat, t.patches.uv)
    near = np.abs(t.patches.uv[:, 0] - 443) <= 22 + 3
    assert near.any() and (keep == ~near).all()


def _window_change_reference(now, uv_now, prev, uv_prev, half_u, half_v, margin_m, margin_rel):
    """window_change written plainly with numpy (whole-image bounds, np.median per window)."""
    lo, hi = range_bounds(prev)
    h, w = now.shape
    changed, compared = [], []
    for (a_u, a_v), (b_u, b_v) in zip(np.rint(uv_now).astype(int), np.rint(uv_prev).astype(int)):
        d, r, low, high = [], [], [], []
        for dv in range(-half_v, half_v + 1):
            if not (0 <= a_v + dv < h and 0 <= b_v + dv < h):
                continue
            for du in range(-half_u, half_u + 1):
                rn, c = now[a_v + dv, (a_u + du) % w], (b_u + du) % w
                if rn > 0 and prev[b_v + dv, c] > 0:
                    d.append(rn - prev[b_v + dv, c])
                    r.append(rn)
                    low.append(lo[b_v + dv, c])
                    high.append(hi[b_v + dv, c])
        compared.append(len(d))
        if not d:
            changed.append(0)
            continue
        r, low, high = np.array(r, float), np.array(low, float), np.array(high, float)
        tol = np.maximum(margin_m, margin_rel * r)
        then = r - np.median(np.array(d, float))
        changed.append(int(np.sum((then < low - tol) | (then > high + tol))))
    return np.array(changed), np.array(compared)


def test_window_change_equals_a_plain_reference_on_rough_images():
    """The compiled window test counts what the plain numpy version counts, pixel for pixel, on
    rough images with missing returns, windows across the seam and off the top and bottom rows."""
    rng = np.random.default_rng(9)
    prev = rng.uniform(3, 25, (40, 300)).astype(np.float32)
    prev[rng.random(prev.shape) < 0.1] = 0.0
    now = (prev + rng.normal(0, 0.3, prev.shape)).astype(np.float32)
    now[rng.random(now.shape) < 0.1] = 0.0
    uv_prev = np.c_[rng.uniform(0, 300, 50), rng.uniform(-2, 42, 50)]
    uv_prev[:3] = [[1.0, 20.0], [299.0, 1.0], [150.0, 38.0]]
    uv_now = uv_prev + rng.integers(-2, 3, (50, 2))
    got = window_change(now, uv_now, prev, uv_prev, 12, 3, 0.5, 0.05)
    want = _window_change_reference(now, uv_now, prev, uv_prev, 12, 3, 0.5, 0.05)
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_array_equal(got[0], want[0])
    assert want[0].sum() > 0
