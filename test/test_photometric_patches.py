"""coin_lio.photometric.patches: patch grids, bilinear sampling around the 360-degree seam,
NCC, and a patch's 3D points -- which re-project onto their own intensities at the true pose."""
from __future__ import annotations

import numpy as np
import pytest

from coin_lio.photometric.patches import (lookup_nearest, ncc, patch_indices, patch_intensities,
                                          patch_offsets, patch_pixels, patch_points,
                                          sample_bilinear, sample_patches)
from coin_lio.photometric.projection import ImageModel
from coin_lio.sim import (LidarNoiseConfig, LidarSimulator, LinearTrajectory, OusterConfig,
                          coin_lio_u_shift)
from coin_lio.sim.primitives import Cylinder, Plane
from coin_lio.sim.scene import Scene
from coin_lio.sim.textures import Noise


def test_patch_offsets_are_row_major_around_the_centre():
    off = patch_offsets(5)
    assert off.shape == (25, 2) and off[12].tolist() == [0, 0]
    assert off[0].tolist() == [-2, -2] and off[1].tolist() == [-1, -2]
    assert off[5].tolist() == [-2, -1]
    px = patch_pixels(np.array([[10, 20], [30, 40]]), 3)
    assert px.shape == (2, 9, 2) and px[1, 4].tolist() == [30, 40]
    with pytest.raises(ValueError, match="odd"):
        patch_offsets(4)


def test_bilinear_sampling_is_exact_on_planes_and_wraps_in_u():
    h, w = 16, 64
    vv, uu = np.mgrid[:h, :w].astype(np.float64)
    plane = 3.0 * uu + 7.0 * vv + 1.0
    uv = np.array([[3.25, 4.5], [10.0, 0.0], [62.9, 15.0]])
    val, inside = sample_bilinear(plane, uv, wrap_u=False)
    np.testing.assert_allclose(val, 3 * uv[:, 0] + 7 * uv[:, 1] + 1)
    assert inside.all()
    # across the seam: u = W - 0.5 mixes the last and the first column; u = -0.5 the same
    ring = np.tile(np.arange(w, dtype=np.float64), (h, 1))
    val, inside = sample_bilinear(ring, np.array([[w - 0.5, 3.0], [-0.5, 3.0], [w + 2.0, 1.0]]))
    np.testing.assert_allclose(val, [(w - 1) / 2, (w - 1) / 2, 2.0])
    assert inside.all()
    # rows outside the image are invalid
    val, inside = sample_bilinear(ring, np.array([[5.0, -0.1], [5.0, h - 0.9], [5.0, h - 1.0]]))
    assert inside.tolist() == [False, False, True] and val[0] == 0
    _, inside = sample_bilinear(ring, np.array([[w - 0.5, 3.0]]), wrap_u=False)
    assert not inside[0]


def test_patch_validity_needs_every_neighbour_in_the_mask():
    img = np.random.default_rng(0).random((32, 128))
    mask = np.ones((32, 128), dtype=bool)
    mask[10, 50] = False
    centres = np.array([[40.0, 10.0], [52.0, 12.0], [54.2, 12.0], [126.5, 20.0], [60.0, 30.5]])
    vals, valid = sample_patches(img, patch_pixels(centres), mask)
    assert vals.shape == (5, 25)
    # 0: far; 1: touches (50, 10); 2: its bilinear neighbours stop at u = 52..57;
    # 3: wraps around the seam; 4: leaves the bottom row
    assert valid.tolist() == [True, False, True, True, False]
    np.testing.assert_allclose(vals[0], patch_intensities(img, centres[:1])[0])


def test_ncc():
    rng = np.random.default_rng(1)
    a = rng.random((4, 25))
    np.testing.assert_allclose(ncc(a, 2 * a + 5), 1.0)
    np.testing.assert_allclose(ncc(a, -a), -1.0)
    assert ncc(np.ones(25), a[0]) == 0.0                      # a flat patch matches nothing
    b = a + 0.3 * rng.random((4, 25))
    assert np.all((ncc(a, b) > 0.5) & (ncc(a, b) < 1.0))
    assert ncc(a[None], b[None]).shape == (1, 4)


def test_patch_points_from_the_dense_image_reproject_onto_their_intensities():
    scene = Scene("room", [Cylinder(point=(0, 0, 0), axis=(0, 0, 1), radius=6.0,
                                    texture=Noise(seed=2)),
                           Plane(point=(0, 0, -3.0), normal=(0, 0, 1), texture=Noise(seed=3))])
    cfg = OusterConfig(rows=64, cols=1024, quantize_azimuths=True)
    sim = LidarSimulator(cfg, LidarNoiseConfig.noiseless())
    cloud = sim.scan(scene, LinearTrajectory(p0=(0.5, 0.2, 0.0)), 0.0, rng=0)
    model = ImageModel.from_metadata(sim.meta, u_shift=coin_lio_u_shift(sim.meta, "os_lidar"))
    image, index, rng = model.image_from_cloud(cloud)
    xyz = np.stack([cloud[c].reshape(-1) for c in "xyz"], 1).astype(np.float64)
    centres = np.array([[100, 20], [500, 40], [1022, 30], [700, 12]])
    pts, valid = patch_points(xyz, index, centres)
    assert pts.shape == (4, 25, 3) and valid.all()
    idx, _ = patch_indices(index, centres)
    np.testing.assert_array_equal(pts, xyz[idx])
    ref = patch_intensities(image, centres)
    # at the true pose the 25 points project back onto the pixels they came from
    uv, ok = model.project(pts.reshape(-1, 3))
    vals, inside = sample_bilinear(image, uv)
    assert ok.all() and inside.all()
    pix = patch_pixels(centres).reshape(-1, 2)
    du = (uv[:, 0] - pix[:, 0] + 512) % 1024 - 512
    # (COIN-LIO's model ignores the beam-origin parallax of the OS-0's +-8 degree azimuths:
    # a tenth of a column at 6 m)
    assert np.abs(du).max() < 0.2 and np.abs(uv[:, 1] - pix[:, 1]).max() < 0.05
    assert np.abs(vals.reshape(4, 25) - ref).max() < 0.1 * np.ptp(ref)
    assert np.all(ncc(vals.reshape(4, 25), ref) > 0.99)
    # a world pose moves the points rigidly; undo it and they match again
    yaw = np.radians(10.0)
    T = np.eye(4)
    T[:3, :3] = [[np.cos(yaw), -np.sin(yaw), 0], [np.sin(yaw), np.cos(yaw), 0], [0, 0, 1]]
    T[:3, 3] = [1.0, -2.0, 0.5]
    world, _ = patch_points(xyz, index, centres, T_world_lidar=T)
    np.testing.assert_allclose((world - T[:3, 3]) @ T[:3, :3], pts, atol=1e-9)
    # a hole in the patch invalidates it (its point is NaN)
    index2 = index.copy()
    index2[21, 101] = -1
    pts2, valid2 = patch_points(xyz, index2, centres)
    assert valid2.tolist() == [False, True, True, True] and np.isnan(pts2[0, 18]).all()
    # range look-up as the reference's occlusion test (floor of uv)
    np.testing.assert_allclose(lookup_nearest(rng, np.array([[100.7, 20.2]])), rng[20, 100])


def test_candidate_patches_in_one_pass_equal_indices_and_mask_validity():
    """The selection's one-pass kernel gives patch_indices' point indices and, as validity, filled
    pixels whose bilinear neighbours all lie in the mask (sample_patches at the same pixels), for
    patches across the seam, off the top and bottom rows, over holes and mask gaps."""
    from coin_lio.photometric.patch_kernel import candidate_patch_kernel
    from coin_lio.photometric.patches import patch_indices, patch_pixels, sample_patches

    rng = np.random.default_rng(3)
    h, w = 24, 80
    point_index = np.arange(h * w).reshape(h, w)
    point_index[rng.random((h, w)) < 0.03] = -1
    mask = rng.random((h, w)) > 0.02
    cand = np.c_[rng.integers(0, w, 300), rng.integers(-2, h + 2, 300)]
    cand[:4] = [[0, 5], [w - 1, 10], [40, 0], [40, h - 1]]
    idx, full = candidate_patch_kernel(point_index, mask, cand, 5)
    want_idx, want_full = patch_indices(point_index, cand, 5)
    want_full &= sample_patches(np.zeros((h, w)), patch_pixels(cand, 5), mask)[1]
    np.testing.assert_array_equal(idx, want_idx)
    np.testing.assert_array_equal(full, want_full)
    assert full.any() and not full.all()


def test_tracking_tests_in_one_pass_equal_the_numpy_helpers():
    """track_kernel gives what tracking computed with sample_patches, lookup_nearest, the norm and
    ncc: inside (image, mask, ok, margin rows), visible (occlusion test) and the NCC, on patches
    across the seam, off the rows, with NaN pixels, invalid projections, flat and textured."""
    from coin_lio.photometric.patch_kernel import track_kernel

    rng = np.random.default_rng(14)
    h, w, m, p = 32, 200, 80, 25
    image = rng.uniform(0, 255, (h, w)).astype(np.float32)
    mask = rng.uniform(size=(h, w)) > 0.05
    rimg = rng.uniform(1, 30, (h, w)).astype(np.float32)
    centres = np.c_[rng.uniform(-3, w + 3, m), rng.uniform(-4, h + 3, m)]
    uv = patch_pixels(centres) + rng.normal(0, 0.3, (m, p, 2))
    uv[3, 12] = np.nan
    ok = rng.uniform(size=(m, p)) > 0.01
    p_t = rng.normal(0, 1, (m, p, 3)) * 10
    ref = rng.uniform(0, 255, (m, p))
    ref[5] = 7.0                                                          # flat reference
    inside, visible, score = track_kernel(image, mask, rimg, uv, ok, p_t, ref, 3, 0.2, 0.05)
    inten, valid = sample_patches(image, uv, mask)
    c = uv[:, p // 2]
    want_inside = ok.all(axis=1) & valid & (c[:, 1] >= 3) & (c[:, 1] <= h - 4)
    predicted = np.linalg.norm(p_t[:, p // 2], axis=1)
    want_visible = predicted - lookup_nearest(rimg, c) <= np.maximum(0.2, 0.05 * predicted)
    np.testing.assert_array_equal(inside, want_inside)
    np.testing.assert_array_equal(visible, want_visible)
    np.testing.assert_allclose(score, ncc(inten, ref), rtol=0, atol=1e-12)
    assert 0 < want_inside.sum() < m and 0 < want_visible.sum() < m and score[5] == 0.0
