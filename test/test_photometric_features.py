"""coin_lio.photometric.features: candidate detection (threshold, border, greedy NMS, distance to
existing patches), structure-tensor directions, and the degeneracy-aware round-robin selection."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from coin_lio.photometric.features import (FeatureConfig, degeneracy_scores, detect_candidates,
                                           dominant_directions, greedy_nms, random_candidates,
                                           select_patches)
from coin_lio.photometric.image_filter import gradients
from coin_lio.photometric.projection import ImageModel


def noise_gradients(h: int = 64, w: int = 512, seed: int = 0):
    """Gradients of a smooth random texture (a few thousand pixels above the threshold)."""
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur((rng.random((h, w)) * 255).astype(np.float32), (0, 0), 1.5)
    gu, gv = gradients(img / img.std() * 40)
    return gu, gv


def naive_greedy(v, u, radius):
    keep = []
    for i in range(len(v)):
        if all((v[i] - v[j]) ** 2 + (u[i] - u[j]) ** 2 > radius ** 2 for j in keep):
            keep.append(i)
    return keep


def test_greedy_nms_equals_the_naive_definition():
    rng = np.random.default_rng(1)
    v, u = rng.integers(0, 40, 400), rng.integers(0, 90, 400)
    keep = greedy_nms(v, u, (40, 90), 6)
    assert keep.tolist() == naive_greedy(v.tolist(), u.tolist(), 6)


@pytest.mark.parametrize("shape", [(32, 512), (64, 1024), (128, 1024)])
def test_candidates_respect_threshold_border_spacing_and_existing_patches(shape):
    gu, gv = noise_gradients(*shape)
    cfg = FeatureConfig()
    mask = np.ones(shape, dtype=bool)
    mask[:, 200:260] = False
    existing = np.array([[100.0, 16.0], [300.4, 20.6]])
    uv, score = detect_candidates(gu, gv, mask, existing, cfg)
    h, w = shape
    assert len(uv) > 20 and uv.dtype == np.int64
    assert np.all(np.diff(score) <= 0) and np.all(score > cfg.grad_min)
    expect = 0.5 * np.abs(gu) + 0.5 * np.abs(gv)
    np.testing.assert_allclose(score, expect[uv[:, 1], uv[:, 0]], rtol=1e-6)
    assert np.all((uv[:, 0] >= 10) & (uv[:, 0] < w - 10) & (uv[:, 1] >= 10) & (uv[:, 1] < h - 10))
    assert mask[uv[:, 1], uv[:, 0]].all()
    d2 = ((uv[:, None, :] - uv[None, :, :]) ** 2).sum(-1) + np.eye(len(uv), dtype=int) * 10 ** 6
    assert d2.min() > cfg.suppression_radius ** 2
    de = ((uv[:, None, :] - np.rint(existing)[None]) ** 2).sum(-1)
    assert de.min() > cfg.suppression_radius ** 2
    # greedy: the strongest allowed pixel is always the first candidate
    allowed = mask.copy()
    allowed[:10] = allowed[-10:] = False
    allowed[:, :10] = allowed[:, -10:] = False
    for c in np.rint(existing).astype(int):
        yy, xx = np.ogrid[:h, :w]
        allowed &= (yy - c[1]) ** 2 + (xx - c[0]) ** 2 > 100
    assert score[0] == pytest.approx(expect[allowed].max())


def test_existing_patches_block_a_wrapped_disk():
    """candidate_pixels leaves out every pixel within the suppression radius of an existing centre
    (dv^2 + du^2 <= r^2, u around the panorama), and only those: against the definition, on
    images narrower than the disk, centres off the image and radii 0-34."""
    from coin_lio.photometric.candidate_kernel import candidate_pixels

    rng = np.random.default_rng(4)
    for _ in range(150):
        h, w, r = int(rng.integers(3, 30)), int(rng.integers(3, 50)), int(rng.integers(0, 35))
        existing = np.stack([rng.uniform(-5, w + 5, 4), rng.uniform(-5, h + 5, 4)], axis=1)
        strong = np.full((h, w), 100.0, np.float32)
        flat, _ = candidate_pixels(strong, strong, np.ones((h, w), bool), 0, existing, r, 1.0)
        blocked = np.zeros((h, w), bool)
        for cu, cv in np.rint(existing).astype(int):
            for dv in range(-r, r + 1):
                for du in range(-r, r + 1):
                    if dv * dv + du * du <= r * r and 0 <= cv + dv < h:
                        blocked[cv + dv, (cu + du) % w] = True
        np.testing.assert_array_equal(flat, np.flatnonzero(~blocked))


def test_random_candidates_are_spaced_and_allowed():
    mask = np.ones((64, 512), dtype=bool)
    mask[30:, :] = False
    uv = random_candidates(mask, np.array([[256, 15]]), FeatureConfig(), rng=4)
    assert len(uv) > 10 and mask[uv[:, 1], uv[:, 0]].all()
    d2 = ((uv[:, None, :] - uv[None, :, :]) ** 2).sum(-1) + np.eye(len(uv), dtype=int) * 10 ** 6
    assert d2.min() > 100
    np.testing.assert_array_equal(uv, random_candidates(mask, np.array([[256, 15]]),
                                                        FeatureConfig(), rng=4))


@pytest.mark.parametrize("angle_deg", [0.0, 30.0, 75.0, 90.0, 135.0])
def test_structure_tensor_direction_is_perpendicular_to_an_edge(angle_deg):
    """An edge along direction t: the dominant eigenvector is its normal n (up to sign)."""
    h, w = 64, 256
    a = np.radians(angle_deg)
    t, n = np.array([np.cos(a), np.sin(a)]), np.array([-np.sin(a), np.cos(a)])
    vv, uu = np.mgrid[:h, :w].astype(np.float64)
    centre = np.array([128.0, 32.0])
    side = (uu - centre[0]) * n[0] + (vv - centre[1]) * n[1]
    img = (60 + 120 / (1 + np.exp(-side / 0.7))).astype(np.float32)   # a sharp step along t
    pts = np.rint(centre + np.outer([-6, 0, 5], t)).astype(np.int64)
    e = dominant_directions(img, pts)
    assert np.allclose(np.linalg.norm(e, axis=1), 1.0)
    assert np.all(np.abs(e @ n) > 0.98) and np.all(np.abs(e @ t) < 0.2)
    # the same numbers as cv2.cornerEigenValsAndVecs(5, 3) on the whole image
    full = cv2.cornerEigenValsAndVecs(img, 5, 3)[pts[:, 1], pts[:, 0]]
    vec = np.where((full[:, 0] >= full[:, 1])[:, None], full[:, 2:4], full[:, 4:6])
    np.testing.assert_allclose(np.abs(np.sum(vec * e, axis=1)), 1.0, atol=1e-5)


def ring_of_candidates(model: ImageModel, n: int, radius: float = 6.0, seed: int = 0):
    """n candidate points on a cylinder around the sensor and their pixels."""
    rng = np.random.default_rng(seed)
    az = rng.uniform(-np.pi, np.pi, n)
    pts = np.stack([radius * np.cos(az), radius * np.sin(az), rng.uniform(-1.5, 1.5, n)], 1)
    uv, valid = model.project(pts)
    assert valid.all()
    return pts, np.rint(uv).astype(np.int64)


def image_motion(model: ImageModel, pts: np.ndarray, v: np.ndarray) -> np.ndarray:
    m = model.project_jacobian(pts) @ v
    return m / np.linalg.norm(m, axis=1, keepdims=True)


def test_round_robin_picks_candidates_that_see_each_weak_direction():
    model = ImageModel(altitudes_deg=np.linspace(22.5, -22.5, 128), cols=1024)
    pts, uv = ring_of_candidates(model, 90)
    weak = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    rng = np.random.default_rng(5)
    dirs = rng.normal(size=(90, 2))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    # candidates 0..9 have gradients along the image motion of weak dir 0, 10..19 of weak dir 1
    dirs[:10] = image_motion(model, pts[:10], weak[0])
    dirs[10:20] = image_motion(model, pts[10:20], weak[1])
    perp = image_motion(model, pts[20:30], weak[0])
    dirs[20:30] = np.stack([-perp[:, 1], perp[:, 0]], 1)        # blind to weak dir 0
    scores = degeneracy_scores(dirs, pts, weak, model)
    assert np.allclose(scores[0, :10], 1.0) and np.allclose(scores[1, 10:20], 1.0)
    assert np.allclose(scores[0, 20:30], 0.0, atol=1e-9)
    picks = select_patches(uv, dirs, weak, pts, model, n_max=16)
    assert len(picks) == 16 and len(set(picks.tolist())) == 16
    assert set(picks[0::2].tolist()) <= set(range(10))          # weak dir 0's turns
    assert set(picks[1::2].tolist()) <= set(range(10, 20))      # weak dir 1's turns
    # gradient mode: the first n_max (candidates come strongest first); random: uniform
    np.testing.assert_array_equal(select_patches(uv, dirs, weak, pts, model, 7, "gradient"),
                                  np.arange(7))
    r1 = select_patches(uv, dirs, weak, pts, model, 12, "random", rng=3)
    assert len(set(r1.tolist())) == 12
    np.testing.assert_array_equal(r1, select_patches(uv, dirs, weak, pts, model, 12, "random",
                                                     rng=3))


def test_without_weak_directions_the_axes_take_turns_and_bad_points_are_skipped():
    model = ImageModel(altitudes_deg=np.linspace(22.5, -22.5, 64), cols=1024)
    pts, uv = ring_of_candidates(model, 60, seed=2)
    axes = np.eye(3)
    dirs = np.zeros((60, 2))
    for k in range(3):                                         # 0..4 x, 5..9 y, 10..14 z
        dirs[5 * k:5 * k + 5] = image_motion(model, pts[5 * k:5 * k + 5], axes[k])
    dirs[15:] = np.array([1.0, 0.0])
    pts[0] = np.nan                                            # no point behind this pixel
    valid = np.ones(60, dtype=bool)
    valid[5] = False
    for weak in (None, np.zeros((0, 3))):
        picks = select_patches(uv, dirs, weak, pts, model, n_max=12, valid=valid)
        assert 0 not in picks and 5 not in picks
        best = degeneracy_scores(dirs, pts, axes, model)
        for k in range(3):
            turn = picks[k::3][:4]
            assert np.allclose(best[k, turn], 1.0), (k, turn)
    assert select_patches(uv, dirs, None, pts, model, n_max=0).size == 0
    with pytest.raises(ValueError, match="mode"):
        select_patches(uv, dirs, None, pts, model, mode="strongest")
    with pytest.raises(ValueError, match="same length"):
        select_patches(uv, dirs[:5], None, pts, model)


def test_feature_config_validation():
    with pytest.raises(ValueError, match="selection_mode"):
        FeatureConfig(selection_mode="comp")
    with pytest.raises(ValueError, match="grad_min"):
        FeatureConfig(grad_min=-1)


@pytest.mark.parametrize("block", [3, 4, 5])
def test_compiled_structure_directions_equal_opencvs(block):
    """The compiled structure tensor (Sobel 3, the default) gives OpenCV's eigenvector, sign
    included, at candidates anywhere: on the top and bottom rows (reflected) and across the
    panorama's seam (wrapped), on a smooth image and on flat / one-directional regions."""
    from coin_lio.photometric.features import directions_opencv

    rng = np.random.default_rng(block)
    img = cv2.GaussianBlur(rng.uniform(0, 255, (32, 128)).astype(np.float32), (5, 5), 1.5)
    img[:, 40:60] = 7.0                                           # flat: no direction
    img[:, 60:80] = np.arange(20, dtype=np.float32) * 3.0         # a ramp along u only
    uv = np.c_[rng.integers(0, 128, 400), rng.integers(0, 32, 400)]
    uv[:6] = [[0, 0], [127, 31], [1, 1], [126, 30], [50, 16], [70, 10]]
    got = dominant_directions(img, uv, block, 3)
    want = directions_opencv(img, uv, block, 3)
    np.testing.assert_allclose(got, want, atol=2e-5)
    assert np.abs(got[5]) @ [1, 0] > 0.999                        # the ramp: across it, along u


def _turns(scores: np.ndarray, n_max: int) -> np.ndarray:
    """The directions' turns over scores (W, U), as the compiled pick takes them: each direction's
    candidates best first (stable), then candidate_kernel.round_robin_kernel."""
    from coin_lio.photometric.candidate_kernel import round_robin_kernel

    return round_robin_kernel(np.argsort(-scores, axis=1, kind="stable").astype(np.int64), int(n_max))


def test_compiled_round_robin_equals_the_plain_turns():
    """The directions' turns (candidate_kernel.round_robin_kernel) pick what the plain loop picks,
    ties included, for 1-3 directions and n_max below, at and above the candidates."""
    def plain(scores, n_max):
        orders = np.argsort(-scores, axis=1, kind="stable")
        taken, ptr, picks = set(), [0] * len(scores), []
        while len(picks) < min(n_max, scores.shape[1]):
            for w in range(len(scores)):
                while ptr[w] < scores.shape[1] and orders[w, ptr[w]] in taken:
                    ptr[w] += 1
                if ptr[w] == scores.shape[1]:
                    continue
                taken.add(int(orders[w, ptr[w]]))
                picks.append(int(orders[w, ptr[w]]))
                if len(picks) == min(n_max, scores.shape[1]):
                    break
        return picks

    rng = np.random.default_rng(12)
    for trial in range(60):
        w, u = int(rng.integers(1, 4)), int(rng.integers(1, 40))
        scores = np.round(rng.uniform(size=(w, u)), 1)                 # ties
        for n_max in (1, u // 2 + 1, u, u + 5):
            assert _turns(scores, n_max).tolist() == plain(scores, n_max)


@pytest.mark.parametrize("local_fy", [False, True])
def test_compiled_pick_equals_scores_and_turns(local_fy):
    """select_patches' one-pass degeneracy pick (candidate_kernel.degeneracy_pick_kernel) picks
    what degeneracy_scores and the directions' turns pick over the usable candidates, with
    non-finite, zero and invalid points left out, for 1-3 weak directions and any n_max."""
    model = ImageModel(altitudes_deg=np.linspace(16.6, -16.6, 64), cols=1024,
                       jacobian_fy="local" if local_fy else "nominal")
    rng = np.random.default_rng(21)
    for trial in range(20):
        k = int(rng.integers(1, 300))
        pts = rng.normal(size=(k, 3)) * [10.0, 10.0, 2.0]
        pts[rng.random(k) < 0.05] = np.nan
        pts[rng.random(k) < 0.05] = 0.0
        valid = rng.random(k) > 0.1
        dirs = rng.normal(size=(k, 2))
        dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
        weak = rng.normal(size=(int(rng.integers(1, 4)), 3))
        weak /= np.linalg.norm(weak, axis=1, keepdims=True)
        usable = np.flatnonzero(valid & np.isfinite(pts).all(axis=1) & (np.linalg.norm(pts, axis=1) > 0))
        uv = rng.integers(0, 64, (k, 2))
        for n_max in (0, 1, 17, 60, k + 3):
            want = (usable[_turns(degeneracy_scores(dirs[usable], pts[usable], weak, model), n_max)]
                    if usable.size else np.zeros(0, np.int64))
            got = select_patches(uv, dirs, weak, pts, model, n_max, valid=valid)
            assert got.tolist() == want.tolist()
    with pytest.raises(ValueError, match="one flag per candidate"):
        select_patches(uv, dirs, weak, pts, model, 5, valid=valid[:-1])
