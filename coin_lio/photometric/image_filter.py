"""COIN-LIO's intensity image filter chain (step 4) and the validity mask.

Chain: intensity x 0.25 -> line removal (vertical 33-tap high-pass, then a horizontal 33-tap
low-pass of it, subtracted, clamped at 0) -> brightness normalisation (140 x img / (box blur
41 wide x 7 tall + 1)) -> Gaussian 3x3 -> clip to [0, 255] -> gradients [-0.5, 0, 0.5].
The image is a 360-degree panorama: every horizontal filter wraps around (wrap_horizontal);
vertically the borders reflect (OpenCV's default, as the reference).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import cv2
import numpy as np

from coin_lio.photometric.photometric_config import (  # noqa: F401  (re-exported)
    REFERENCE_DEAD_ZONES_1024x128, ImageFilterConfig, MaskConfig)

@lru_cache(maxsize=16)
def fir_taps(taps: int, cutoff: float, highpass: bool) -> np.ndarray:
    """scipy firwin(taps, cutoff, pass_zero=not highpass, fs=1): cutoff in cycles per pixel.
    These are the reference's config/line_removal.yaml coefficients (to 5e-9)."""
    from scipy.signal import firwin

    return firwin(taps, cutoff, pass_zero=not highpass, fs=1.0).astype(np.float32)


@dataclass
class FilteredImage:
    """The filtered image and its gradients, all float32 (H, W)."""

    image: np.ndarray       # (H, W) in [0, max_value]
    grad_u: np.ndarray      # (H, W) dI/du, 0.5 (I[u+1] - I[u-1])
    grad_v: np.ndarray      # (H, W) dI/dv

    def mono8(self) -> np.ndarray:
        """(H, W) uint8 for publishing (OpenCV convertTo: round half to even, saturate)."""
        return np.clip(np.rint(self.image), 0, 255).astype(np.uint8)


def _hfilter(img: np.ndarray, pad: int, wrap: bool, fn: Any) -> np.ndarray:
    """Apply fn to img padded horizontally by `pad` wrapped columns, then crop."""
    if not wrap or pad == 0:
        return fn(img)
    pad_w = min(pad, img.shape[1])
    big = cv2.copyMakeBorder(img, 0, 0, pad_w, pad_w, cv2.BORDER_WRAP)
    while pad_w < pad:                          # images narrower than the kernel
        big = np.concatenate([img[:, -1:], big, img[:, :1]], axis=1)
        pad_w += 1
    return np.ascontiguousarray(fn(big)[:, pad:pad + img.shape[1]])


def remove_lines(img: np.ndarray, cfg: ImageFilterConfig, wrap: bool | None = None) -> np.ndarray:
    """img - lowpass_h(highpass_v(img)), clamped at 0: removes per-row offsets (lines). wrap:
    cfg.wrap_horizontal unless given (False: img comes padded already)."""
    hp = fir_taps(cfg.highpass_taps, cfg.highpass_cutoff, True)
    lp = fir_taps(cfg.lowpass_taps, cfg.lowpass_cutoff, False)
    # the separable filter as two 1-D passes: OpenCV's sepFilter2D takes 0.72 ms here, these 0.45
    lines = _hfilter(img, cfg.lowpass_taps // 2, cfg.wrap_horizontal if wrap is None else wrap,
                     lambda a: cv2.filter2D(cv2.filter2D(a, cv2.CV_32F, lp.reshape(1, -1),
                                                         borderType=cv2.BORDER_REFLECT_101),
                                            cv2.CV_32F, hp.reshape(-1, 1), borderType=cv2.BORDER_REFLECT_101))
    np.subtract(img, lines, out=lines)
    return np.maximum(lines, 0.0, out=lines)


def normalize_brightness(img: np.ndarray, cfg: ImageFilterConfig, wrap: bool | None = None) -> np.ndarray:
    """gain x img / (box blur + 1): a local exposure normalisation (wrap: as remove_lines)."""
    w, h = cfg.brightness_window
    blur = _hfilter(img, w // 2, cfg.wrap_horizontal if wrap is None else wrap,
                    lambda a: cv2.blur(a, (w, h), borderType=cv2.BORDER_REFLECT_101))
    blur += np.float32(1.0)                     # float32 throughout, into blur: no temporaries
    return np.divide(np.float32(cfg.brightness_gain) * img, blur, out=blur)


_DIFF = np.array([[-0.5, 0.0, 0.5]], dtype=np.float32)


def gradients(img: np.ndarray, wrap: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(dI/du, dI/dv) with [-0.5, 0, 0.5] (correlation, as cv::filter2D); u wraps (or reflects,
    the reference), v reflects: 0 on rows 0 and H - 1."""
    img = np.ascontiguousarray(img, dtype=np.float32)
    gu = _hfilter(img, 1, wrap, lambda a: cv2.filter2D(a, cv2.CV_32F, _DIFF,
                                                       borderType=cv2.BORDER_REFLECT_101))
    gv = cv2.filter2D(img, cv2.CV_32F, _DIFF.T, borderType=cv2.BORDER_REFLECT_101)
    return gu, gv


def filter_image(intensity: np.ndarray, cfg: ImageFilterConfig | None = None,
                 scale: bool = True) -> FilteredImage:
    """intensity (H, W) -> FilteredImage. scale=False skips intensity_scale (the reference does
    so for reflectivity images). Wrapping pads the image once by the chain's total reach."""
    cfg = cfg or ImageFilterConfig()
    img = np.asarray(intensity, dtype=np.float32)
    if img.ndim != 2:
        raise ValueError(f"intensity must be (H, W), got {img.shape}")
    cfg = cfg.for_rows(img.shape[0])
    w = img.shape[1]
    pad = ((cfg.lowpass_taps // 2 if cfg.line_removal else 0)
           + (cfg.brightness_window[0] // 2 if cfg.brightness_filter else 0)
           + 2)                            # the smoothing and the gradient: 1 each
    wrap = cfg.wrap_horizontal and pad <= w
    # the chain's input, a new array: padded once by the chain's reach when wrapping, non-finite
    # pixels 0 (one test pass when all are finite, as a driver's image is), scaled
    img = cv2.copyMakeBorder(img, 0, 0, pad, pad, cv2.BORDER_WRAP) if wrap else img.copy()
    finite = np.isfinite(img)
    if not finite.all():
        img[~finite] = 0.0
    if scale:
        img *= np.float32(cfg.intensity_scale)
    return _chain(img, cfg, pad if wrap else 0)


def _chain(img: np.ndarray, cfg: ImageFilterConfig, pad: int = 0) -> FilteredImage:
    """The chain on img (H, W) float32, which it may overwrite; pad >= 2: img is padded by pad
    wrapped columns each side (the filters then do not wrap), the result is cropped (the end of
    the chain in one compiled pass: filter_tail_kernel.py)."""
    wrap = cfg.wrap_horizontal and not pad
    if cfg.line_removal:
        img = remove_lines(img, cfg, wrap)
    if cfg.brightness_filter:
        img = normalize_brightness(img, cfg, wrap)
    if pad:
        from coin_lio.photometric.filter_tail_kernel import smooth_clip_gradients

        return FilteredImage(*smooth_clip_gradients(img, pad, cfg.smoothing, cfg.smoothing_height == 3,
                                                    float(cfg.max_value)))
    if cfg.smoothing:
        img = _hfilter(img, 1, cfg.wrap_horizontal,
                       lambda a: cv2.GaussianBlur(a, (3, cfg.smoothing_height), 0,
                                                  borderType=cv2.BORDER_REFLECT_101))
    img = np.clip(img, 0.0, cfg.max_value, out=img)
    gu, gv = gradients(img, cfg.wrap_horizontal)
    return FilteredImage(img, gu, gv)


def dead_zone_mask(shape: tuple[int, int], cfg: MaskConfig) -> np.ndarray:
    """(H, W) bool, True inside a dead zone; rectangles wrap in u and are clipped in v."""
    h, w = shape
    dead = np.zeros((h, w), dtype=bool)
    rects = list(cfg.dead_zones_px) + [
        (int(round(fu * w)), int(round(fv * h)), int(round(fw * w)), int(round(fh * h)))
        for fu, fv, fw, fh in cfg.dead_zones_frac]
    for u0, v0, rw, rh in rects:
        rows = slice(max(v0, 0), min(v0 + rh, h))
        if cfg.wrap_horizontal:
            cols = np.mod(np.arange(u0, u0 + min(rw, w)), w)
        else:
            cols = np.arange(max(u0, 0), min(u0 + rw, w))
        dead[rows, cols] = True
    return dead


def validity_mask(range_img: np.ndarray, cfg: MaskConfig | None = None) -> np.ndarray:
    """range_img (H, W) m -> (H, W) bool: range inside [min, max], outside dead zones, eroded."""
    cfg = cfg or MaskConfig()
    rng = np.asarray(range_img, dtype=np.float32)
    with np.errstate(invalid="ignore"):
        ok = (rng >= cfg.min_range) & (rng <= cfg.max_range)
    if cfg.dead_zones_px or cfg.dead_zones_frac:
        ok &= ~dead_zone_mask(rng.shape, cfg)
    if cfg.erosion > 1:
        kernel = np.ones((cfg.erosion, cfg.erosion), np.uint8)
        ok = _hfilter(ok.astype(np.uint8), cfg.erosion // 2, cfg.wrap_horizontal,
                      lambda a: cv2.erode(a, kernel)) > 0
    return ok
