"""Configuration of the photometric part (image filter, mask, features): plain validated
dataclasses with no OpenCV, so that loading coin_lio's configuration stays light. The filter and
feature code that uses them lives in image_filter.py and features.py."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

# The reference's config/params.yaml image/masks for 1024x128 (Ouster connector), (u, v, w, h):
# one 140-column rectangle across the image seam, given as two.
REFERENCE_DEAD_ZONES_1024x128 = ((0, 84, 70, 44), (953, 84, 70, 44))


def _odd_positive(name: str, value: int) -> None:
    if int(value) < 1 or int(value) % 2 == 0:
        raise ValueError(f"{name} must be a positive odd integer, got {value}")


@dataclass
class ImageFilterConfig:
    """COIN-LIO image/ parameters of the filter chain (defaults = the reference's)."""

    intensity_scale: float = 0.25       # x the raw intensity (reference: unless reflectivity)
    line_removal: bool = True           # ablation switch
    highpass_taps: int = 33             # vertical high-pass FIR
    highpass_cutoff: float = 0.21       # cycles per pixel (firwin fs=1)
    lowpass_taps: int = 33              # horizontal low-pass FIR of the high-passed image
    lowpass_cutoff: float = 0.04        # cycles per pixel
    brightness_filter: bool = True      # ablation switch
    brightness_window: tuple[int, int] = (41, 7)    # box blur (width, height)
    brightness_gain: float = 140.0
    smoothing: bool = True              # Gaussian 3x3 (the reference blurs inside brightness)
    smoothing_height: int = 3           # its rows: 3, or 1 (along the rows only)
    max_value: float = 255.0
    wrap_horizontal: bool = True        # False: reflect at the left/right border (reference)
    # the image rows the vertical extents above are given for (the reference's 128-row sensor);
    # other row counts scale them (for_rows); 0 = use them as given
    reference_rows: int = 128

    def __post_init__(self) -> None:
        if not np.isfinite(self.intensity_scale) or self.intensity_scale <= 0:
            raise ValueError(f"intensity_scale must be > 0, got {self.intensity_scale}")
        _odd_positive("highpass_taps", self.highpass_taps)
        _odd_positive("lowpass_taps", self.lowpass_taps)
        for name in ("highpass_cutoff", "lowpass_cutoff"):
            if not 0.0 < getattr(self, name) < 0.5:
                raise ValueError(f"{name} must be in (0, 0.5) cycles/pixel, "
                                 f"got {getattr(self, name)}")
        self.brightness_window = tuple(int(x) for x in self.brightness_window)
        if len(self.brightness_window) != 2:
            raise ValueError(f"brightness_window must be (width, height), "
                             f"got {self.brightness_window}")
        for n in self.brightness_window:
            _odd_positive("brightness_window entries", n)
        if self.brightness_gain <= 0 or self.max_value <= 0:
            raise ValueError("brightness_gain and max_value must be > 0")
        if self.reference_rows < 0 or self.smoothing_height not in (1, 3):
            raise ValueError(f"reference_rows must be >= 0 and smoothing_height 1 or 3, got "
                             f"{self.reference_rows}, {self.smoothing_height}")

    def for_rows(self, rows: int) -> "ImageFilterConfig":
        """The chain for an image of `rows` rows: the line removal's vertical high-pass keeps the
        same angular frequencies (cutoff x reference_rows / rows, taps x rows / reference_rows; off
        when the cutoff reaches the Nyquist limit), and with fewer rows the 3x3 smoothing blurs
        along the rows only (a row then spans 2x the angle or more). The same as given at
        reference_rows. Measured on simulated 64x1024 tunnel / field sequences (docs/coin_lio.md)."""
        from dataclasses import replace

        if not self.reference_rows or rows == self.reference_rows:
            return self
        k = rows / self.reference_rows
        cutoff = self.highpass_cutoff / k
        taps = max(3, int(round(self.highpass_taps * k)) | 1)
        return replace(self, line_removal=self.line_removal and cutoff < 0.5,
                       highpass_cutoff=min(cutoff, 0.49), highpass_taps=taps, reference_rows=0,
                       smoothing_height=self.smoothing_height if k >= 1 else 1)


@dataclass
class MaskConfig:
    """Where photometric patches may live: range gate, dead zones, eroded margin."""

    min_range: float = 0.7                       # m
    max_range: float = 30.0                      # m
    dead_zones_px: tuple = ()                    # ((u, v, width, height), ...) pixels; u wraps
    dead_zones_frac: tuple = ()                  # same as fractions of (W, H, W, H)
    erosion: int = 3                             # square kernel; 1 = none. The reference erodes 7
    #   (patch size + 2) so a patch around a valid centre has points; patches here check all 25
    #   pixels explicitly, and 7 throws away most of the ground where returns are sparse
    wrap_horizontal: bool = True
    fill_gaps_px: int = 2                        # row gaps of at most this many pixels without a
    #   return between returns that agree in range are filled first (gap_fill_kernel.py; 0 = never, as
    #   the reference): dark ground at grazing incidence drops single returns
    fill_gaps_rel: float = 0.05                  # the ends agree: |r_a - r_b| <= this x the larger

    def __post_init__(self) -> None:
        if self.fill_gaps_px < 0 or not 0.0 <= self.fill_gaps_rel < 1.0:
            raise ValueError(f"need fill_gaps_px >= 0 and 0 <= fill_gaps_rel < 1, got "
                             f"{self.fill_gaps_px}, {self.fill_gaps_rel}")
        if not 0.0 <= self.min_range < self.max_range:
            raise ValueError(f"need 0 <= min_range < max_range, got {self.min_range}, "
                             f"{self.max_range}")
        self.dead_zones_px = _rects(self.dead_zones_px, "dead_zones_px", int)
        self.dead_zones_frac = _rects(self.dead_zones_frac, "dead_zones_frac", float)
        for r in self.dead_zones_px:
            if r[2] < 0 or r[3] < 0:
                raise ValueError(f"dead zone {r} has a negative size")
        for r in self.dead_zones_frac:
            if not all(0.0 <= x <= 1.0 for x in r):
                raise ValueError(f"fractional dead zone {r} must lie in [0, 1]")
        _odd_positive("erosion", self.erosion)


def _rects(value: Any, name: str, kind: type) -> tuple:
    """Rectangles as ((u, v, w, h), ...); also the reference's flat list [u, v, w, h, u, ...]."""
    arr = np.asarray(value if len(value) else np.zeros((0, 4)), dtype=np.float64)
    if arr.ndim == 1:
        if arr.size % 4:
            raise ValueError(f"{name}: a flat list needs a multiple of 4 numbers, got {arr.size}")
        arr = arr.reshape(-1, 4)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"{name} must be rectangles (u, v, width, height), got shape {arr.shape}")
    if kind is int and not np.all(arr == np.round(arr)):
        raise ValueError(f"{name} must be whole pixels")
    return tuple(tuple(kind(x) for x in r) for r in arr)


SELECTION_MODES = ("degeneracy", "gradient", "random")


@dataclass
class FeatureConfig:
    """COIN-LIO image/ parameters of detection and selection (defaults = the reference's)."""

    grad_min: float = 16.5              # 0.5 |Iu| + 0.5 |Iv| must exceed this
    margin: int = 10                    # px from the image border
    suppression_radius: int = 10        # px, NMS and distance to existing patches
    num_features: int = 60              # patches kept alive at most
    refill_below: float = 1.0           # select new patches only when fewer than this x num_features
    #                                     are tracked (1.0: every scan that lost one, as the reference)
    selection_mode: str = "degeneracy"  # degeneracy | gradient | random (ablations)
    structure_block: int = 5            # cornerEigenValsAndVecs blockSize
    structure_ksize: int = 3            # its Sobel aperture

    def __post_init__(self) -> None:
        if not np.isfinite(self.grad_min) or self.grad_min < 0:
            raise ValueError(f"grad_min must be >= 0, got {self.grad_min}")
        for name in ("margin", "suppression_radius", "num_features"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 < self.refill_below <= 1.0:
            raise ValueError(f"refill_below must be in (0, 1], got {self.refill_below}")
        if self.selection_mode not in SELECTION_MODES:
            raise ValueError(f"selection_mode must be one of {SELECTION_MODES}, "
                             f"got '{self.selection_mode}'")
        if self.structure_block < 1 or self.structure_ksize not in (1, 3, 5, 7):
            raise ValueError("structure_block must be >= 1 and structure_ksize 1, 3, 5 or 7")
