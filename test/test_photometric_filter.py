"""coin_lio.photometric.image_filter: COIN-LIO's filter chain (line removal, brightness
normalisation, smoothing, gradients) on synthetic images with known artifacts, the reference's
own coefficients, 360-degree wrapping, and the validity mask on several sensor sizes."""
from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from coin_lio.photometric.image_filter import (REFERENCE_DEAD_ZONES_1024x128, ImageFilterConfig,
                                               MaskConfig, dead_zone_mask, filter_image,
                                               fir_taps, validity_mask)

# The reference's config/line_removal.yaml (ethz-asl/COIN-LIO), as published.
REF_HIGHPASS = [-0.00122687, -0.00152587, 0.0009631, 0.00382838, 0.00071422, -0.00765637,
                -0.00681285, 0.01015542, 0.01944999, -0.00536835, -0.03792929, -0.01565801,
                0.05816374, 0.07138264, -0.07402277, -0.30572514, 0.5802669, -0.30572514,
                -0.07402277, 0.07138264, 0.05816374, -0.01565801, -0.03792929, -0.00536835,
                0.01944999, 0.01015542, -0.00681285, -0.00765637, 0.00071422, 0.00382838,
                0.0009631, -0.00152587, -0.00122687]
REF_LOWPASS = [-0.0013038, -0.00117813, -0.00102349, -0.00051396, 0.000759, 0.00322145,
               0.00724004, 0.01304552, 0.02066957, 0.02990645, 0.04030759, 0.0512121,
               0.06181081, 0.07123596, 0.07866427, 0.08341891, 0.08505541, 0.08341891,
               0.07866427, 0.07123596, 0.06181081, 0.0512121, 0.04030759, 0.02990645,
               0.02066957, 0.01304552, 0.00724004, 0.00322145, 0.000759, -0.00051396,
               -0.00102349, -0.00117813, -0.0013038]


def textured(h: int = 128, w: int = 1024, seed: int = 0) -> np.ndarray:
    """A smooth random texture (20..170) with a sharp +60 vertical edge at column w // 3."""
    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), 6)
    base = 20 + 150 * (base - base.min()) / (base.max() - base.min())
    base[:, w // 3:] += 60.0
    return base.astype(np.float32)


def reference_chain(intensity: np.ndarray) -> np.ndarray:
    """ImageProcessor::createImages transcribed (OpenCV default borders everywhere)."""
    img = intensity * 0.25
    hp = cv2.filter2D(img, cv2.CV_32F, np.array(REF_HIGHPASS, np.float32).reshape(-1, 1))
    lp = cv2.filter2D(hp, cv2.CV_32F, np.array(REF_LOWPASS, np.float32).reshape(1, -1))
    img = img - lp
    img[img < 0] = 0
    brightness = cv2.blur(img, (41, 7)) + 1
    img = cv2.GaussianBlur(140.0 * img / brightness, (3, 3), 0)
    return np.minimum(img, 255.0)


def test_default_fir_taps_are_the_references_coefficients():
    np.testing.assert_allclose(fir_taps(33, 0.21, True), REF_HIGHPASS, atol=1e-7)
    np.testing.assert_allclose(fir_taps(33, 0.04, False), REF_LOWPASS, atol=1e-7)


def test_unwrapped_chain_equals_the_reference():
    img = textured() * 4
    out = filter_image(img, ImageFilterConfig(wrap_horizontal=False))
    np.testing.assert_allclose(out.image, reference_chain(img), atol=2e-3)
    kx = np.array([[-0.5, 0, 0.5]], np.float32)
    np.testing.assert_allclose(out.grad_u[:, 1:-1], cv2.filter2D(out.image, -1, kx)[:, 1:-1],
                               atol=1e-4)
    np.testing.assert_allclose(out.grad_v, cv2.filter2D(out.image, -1, kx.T), atol=1e-4)


def test_line_removal_removes_row_offsets_and_keeps_a_vertical_edge():
    clean = textured()
    rows = np.arange(clean.shape[0])
    offsets = np.array([12.0, -9.0, 4.0, -7.0])[rows % 4] + 3.0 * np.sin(rows * 2.3)
    lined = clean + offsets[:, None].astype(np.float32)
    cfg = ImageFilterConfig(brightness_filter=False, smoothing=False)

    def line_energy(img: np.ndarray) -> float:
        """Row-to-row variation of the row means of (img - the filtered clean image)."""
        ref = filter_image(clean, cfg, scale=False).image
        return float(np.std(np.diff((img - ref).mean(axis=1))))

    before = line_energy(lined)
    removed = filter_image(lined, cfg, scale=False).image
    assert before > 8.0 and line_energy(removed) < before / 10
    row_var = lambda img: float(np.std(np.diff(img.mean(axis=1))))    # noqa: E731
    assert row_var(removed) < row_var(lined) / 10                       # ~40x here
    # the off switch leaves the lines in place
    off = filter_image(lined, ImageFilterConfig(line_removal=False, brightness_filter=False,
                                                smoothing=False), scale=False)
    np.testing.assert_array_equal(off.image, lined)
    # the vertical edge survives: its horizontal gradient stays as strong as in the clean image
    out = filter_image(lined, cfg, scale=False)
    edge = clean.shape[1] // 3
    strength = np.abs(out.grad_u[20:-20, edge - 1:edge + 1]).max(axis=1)
    assert np.median(strength) > 25.0                # a 60-step edge -> 0.5 * 60 = 30


def test_brightness_normalisation_equalises_local_contrast():
    tex = textured(seed=1)
    img = tex.copy()
    img[:, 512:] *= 0.1                              # the same texture, 10x darker
    cfg = ImageFilterConfig(line_removal=False)
    left = img[:, 600:900].std() / img[:, 100:300].std()
    out = filter_image(img, cfg).image
    right = out[:, 600:900].std() / out[:, 100:300].std()
    assert left < 0.2 and 0.5 < right < 2.0
    off = filter_image(img, ImageFilterConfig(line_removal=False, brightness_filter=False)).image
    assert off[:, 600:900].std() / off[:, 100:300].std() < 0.2


def test_the_panorama_wraps_around():
    img = textured(seed=2) * 3
    cfg = ImageFilterConfig()
    a = filter_image(img, cfg)
    b = filter_image(np.roll(img, 300, axis=1), cfg)
    for x, y in ((a.image, b.image), (a.grad_u, b.grad_u), (a.grad_v, b.grad_v)):
        np.testing.assert_allclose(np.roll(x, 300, axis=1), y, atol=1e-3)
    # no artificial edge at the seam of a seamless texture
    seamless = np.tile(img[:, :256], (1, 4))
    out = filter_image(seamless, cfg)
    np.testing.assert_allclose(out.grad_u[:, :8], out.grad_u[:, 256:264], atol=1e-3)


def test_output_is_bounded_and_mono8_rounds():
    img = textured() * 40                            # saturates after normalisation
    out = filter_image(img)
    assert out.image.dtype == np.float32 and out.image.min() >= 0 and out.image.max() <= 255
    m8 = out.mono8()
    assert m8.dtype == np.uint8 and np.abs(m8 - out.image).max() <= 0.5 + 1e-6
    bad = img.copy()
    bad[5, 5], bad[6, 9], bad[7, 2] = np.nan, np.inf, -np.inf
    given = bad.copy()
    zeroed = np.nan_to_num(bad, nan=0.0, posinf=0.0, neginf=0.0)
    for wrap in (True, False):                       # non-finite pixels count as 0, the input stays
        cfg = ImageFilterConfig(wrap_horizontal=wrap)
        got, want = filter_image(bad, cfg), filter_image(zeroed, cfg)
        for a, b in zip((got.image, got.grad_u, got.grad_v), (want.image, want.grad_u, want.grad_v)):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(bad, given)


@pytest.mark.parametrize("rows,smoothing", [(128, True), (64, True), (64, False), (16, True), (3, True)])
def test_compiled_chain_end_is_the_opencv_chain_bit_for_bit(rows, smoothing):
    """The Gaussian, clip, gradients and crop in one compiled pass (filter_tail_kernel) give
    OpenCV's float32 results exactly: 3x3 at 128 rows, 3x1 below (for_rows), off, tiny images;
    saturated and zero pixels included."""
    from dataclasses import replace

    from coin_lio.photometric.filter_tail_kernel import smooth_clip_gradients
    from coin_lio.photometric.image_filter import gradients

    rng = np.random.default_rng(rows)
    img = (rng.gamma(2.0, 120.0, (rows, 1100)) * (rng.random((rows, 1100)) > 0.1)).astype(np.float32)
    img[:, 500:520] = 400.0                                   # beyond max_value
    cfg = replace(ImageFilterConfig(smoothing=smoothing).for_rows(rows), wrap_horizontal=False)
    pad = 38
    got = smooth_clip_gradients(img, pad, cfg.smoothing, cfg.smoothing_height == 3, cfg.max_value)
    ref = img.copy()
    if smoothing:
        ref = cv2.GaussianBlur(ref, (3, cfg.smoothing_height), 0, borderType=cv2.BORDER_REFLECT_101)
    ref = np.clip(ref, 0.0, cfg.max_value)
    want = (ref, *gradients(ref, False))
    for g, w in zip(got, want):
        assert g.shape == (rows, 1100 - 2 * pad) and g.dtype == np.float32
        np.testing.assert_array_equal(g, w[:, pad:-pad])
    # through filter_image too: the first row has no vertical gradient (reflect-101)
    a = filter_image(img[:, :1024] * 4)
    assert np.array_equal(a.grad_v[0], np.zeros(1024, np.float32))


@pytest.mark.quiet_cpu
@pytest.mark.parametrize("shape", [(128, 1024), (64, 2048)])
def test_filter_chain_timing(shape):
    img = textured(*shape) * 4
    filter_image(img)
    best = np.inf
    for _ in range(5):
        t0 = time.perf_counter()
        filter_image(img)
        best = min(best, time.perf_counter() - t0)
    print(f"filter chain {shape[0]}x{shape[1]}: {best * 1e3:.2f} ms")
    assert best < 0.05                               # ~2-7 ms here; 50 ms = a broken build


@pytest.mark.parametrize("shape", [(16, 512), (32, 1024), (64, 1024), (128, 1024), (128, 2048)])
def test_mask_range_gate_dead_zones_and_erosion_on_any_size(shape):
    h, w = shape
    rng = np.full(shape, 5.0, np.float32)
    rng[h // 2, w // 4] = 0.5                        # too close
    rng[h // 2, w // 2] = 45.0                       # too far
    rng[h // 4, 3 * w // 4] = np.nan
    cfg = MaskConfig(dead_zones_px=[(w - 10, 0, 20, 4)],          # crosses the seam
                     dead_zones_frac=[(0.5, 0.5, 0.1, 0.25)], erosion=7)   # the reference's 7
    mask = validity_mask(rng, cfg)
    assert mask.shape == shape and mask.dtype == bool
    dead = dead_zone_mask(shape, cfg)
    assert dead[0, w - 10:].all() and dead[0, :10].all() and not dead[0, 10:w - 10].any()
    assert dead[h // 2, w // 2] and dead[h // 2 + h // 4 - 1, w // 2 + w // 10 - 1]
    # eroded by 7x7: 3 px around every invalid pixel, nothing beyond
    bad = dead | ~((rng >= 0.7) & (rng <= 30.0))
    wrap = cv2.dilate(cv2.copyMakeBorder(bad.astype(np.uint8), 0, 0, 3, 3, cv2.BORDER_WRAP),
                      np.ones((7, 7), np.uint8))[:, 3:-3] > 0
    np.testing.assert_array_equal(mask, ~wrap)
    # the reference's 1024x128 rectangles clip on smaller images instead of crashing
    ref = validity_mask(rng, MaskConfig(dead_zones_px=REFERENCE_DEAD_ZONES_1024x128))
    assert ref.shape == shape and ref.any()


def test_mask_config_formats_and_validation():
    flat = MaskConfig(dead_zones_px=[0, 84, 70, 44, 953, 84, 70, 44], erosion=7)   # reference's
    assert flat.dead_zones_px == REFERENCE_DEAD_ZONES_1024x128
    m = validity_mask(np.full((128, 1024), 5.0), flat)
    assert not m[84:128, :73].any() and not m[84:128, 950:1023].any()
    assert m[:81].all()
    no_erosion = validity_mask(np.full((128, 1024), 5.0), MaskConfig(erosion=1))
    assert no_erosion.all()
    with pytest.raises(ValueError, match="multiple of 4"):
        MaskConfig(dead_zones_px=[1, 2, 3])
    with pytest.raises(ValueError, match="min_range"):
        MaskConfig(min_range=40.0)
    with pytest.raises(ValueError, match="\\[0, 1\\]"):
        MaskConfig(dead_zones_frac=[(0.5, 0.5, 2.0, 0.1)])
    with pytest.raises(ValueError, match="odd"):
        MaskConfig(erosion=6)
    with pytest.raises(ValueError, match="odd"):
        ImageFilterConfig(highpass_taps=32)
    with pytest.raises(ValueError, match="cycles"):
        ImageFilterConfig(lowpass_cutoff=0.7)
    with pytest.raises(ValueError, match="odd"):
        ImageFilterConfig(brightness_window=(40, 7))


def test_vertical_extents_scale_with_the_image_rows():
    """The reference's filter is for 128 rows: at 64 the line removal's high-pass keeps the same
    angular frequencies (cutoff x2, half the taps) and the smoothing stays within a row; at 32 the
    cutoff would pass Nyquist, so no line removal; 128 rows and reference_rows 0 keep it as given."""
    from dataclasses import replace

    from coin_lio.photometric.image_filter import ImageFilterConfig, filter_image

    cfg = ImageFilterConfig()
    assert cfg.for_rows(128) is cfg and replace(cfg, reference_rows=0).for_rows(64).highpass_taps == 33
    c64 = cfg.for_rows(64)
    assert (c64.highpass_cutoff, c64.highpass_taps, c64.smoothing_height, c64.line_removal) == (0.42, 17, 1, True)
    c32 = cfg.for_rows(32)
    assert not c32.line_removal and c32.smoothing_height == 1
    img = np.random.default_rng(3).uniform(0, 400, (64, 256)).astype(np.float32)
    got = filter_image(img, cfg)
    np.testing.assert_array_equal(got.image, filter_image(img, replace(c64, reference_rows=0)).image)
    assert not np.allclose(got.image, filter_image(img, replace(cfg, reference_rows=0)).image)
