"""The image side of COIN-LIO: intensity image model, filter chain, patch candidates,
degeneracy-aware selection and patch helpers. Pure numpy / scipy / OpenCV; no rclpy, no torch.

    model = ImageModel.from_metadata("metadata.json", u_shift=512)
    intensity, point_index, rng = model.image_from_cloud(cloud)        # (H, W) each
    img = filter_image(intensity)                                      # .image, .grad_u, .grad_v
    mask = validity_mask(rng)
    uv, score = detect_candidates(img.grad_u, img.grad_v, mask, existing_uv)

Names load lazily: `coin_lio.photometric.projection` (numpy only) does not pull in OpenCV,
so coin_lio.sim can reuse it cheaply.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "projection": ("ImageModel", "destagger"),
    "photometric_config": ("REFERENCE_DEAD_ZONES_1024x128", "ImageFilterConfig", "MaskConfig",
                           "FeatureConfig"),
    "image_filter": ("FilteredImage", "filter_image", "validity_mask"),
    "features": ("detect_candidates", "dominant_directions", "greedy_nms", "random_candidates",
                 "select_patches"),
    "patches": ("ncc", "patch_intensities", "patch_offsets", "patch_pixels", "patch_points",
                "sample_bilinear", "sample_patches"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'coin_lio.photometric' has no attribute '{name}'")
    return getattr(importlib.import_module(f"coin_lio.photometric.{_WHERE[name]}"), name)
