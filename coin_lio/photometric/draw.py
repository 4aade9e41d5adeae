"""Pictures for people: the filtered intensity image with the tracked patches drawn on it
(published by coin_lio_node as its feature image)."""
from __future__ import annotations

import numpy as np


def feature_image(image: np.ndarray, patch_uv: np.ndarray | None, ages: np.ndarray | None = None,
                  size: int = 5) -> np.ndarray:
    """image (H, W) float (0..255) -> (H, W, 3) uint8 RGB with a box around each patch centre
    (M, 2) (u, v): new patches yellow, older ones green."""
    import cv2

    mono = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    rgb = cv2.cvtColor(mono, cv2.COLOR_GRAY2RGB)
    if patch_uv is None or len(patch_uv) == 0:
        return rgb
    half = size // 2 + 1
    ages = np.zeros(len(patch_uv), int) if ages is None else np.asarray(ages)
    for (u, v), age in zip(np.rint(patch_uv).astype(int), ages):
        color = (255, 220, 0) if age == 0 else (0, 255, 0)
        cv2.rectangle(rgb, (int(u) - half, int(v) - half), (int(u) + half, int(v) + half), color, 1)
    return rgb
