"""numpy -> model input for the model servers (the sensor_msgs/Image <-> numpy conversion itself
is suite_tools.image_msgs, re-exported here).
"""
from __future__ import annotations

import numpy as np

from suite_tools.image_msgs import (ENCODINGS, ImageFormatError, image_fields,  # noqa: F401
                                    image_to_numpy, numpy_to_image)


def to_rgb8(arr: np.ndarray, encoding: str) -> np.ndarray:
    """Model input: (H, W, 3) uint8 RGB from any supported encoding.

    mono16 and 32FC1 (depth, thermal) are stretched min-max to 0..255 per image (in float64, so
    that the full float32 range rescales without overflow); non-finite float pixels, and any
    rescaling that would not be finite, raise ImageFormatError (a NaN would poison every score).
    """
    if encoding == "rgb8":
        return arr
    if encoding == "bgr8":
        return np.ascontiguousarray(arr[..., ::-1])
    if encoding == "mono8":
        return np.repeat(arr[..., None], 3, axis=2)
    if encoding == "32FC1" and not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).sum())
        raise ImageFormatError(f"32FC1 image holds {bad} NaN or infinite pixel(s)")
    if encoding in ("mono16", "32FC1"):
        x = arr.astype(np.float64)   # float32 overflows: +-3e38 has a range of 6e38 > float32 max
        lo, hi = float(x.min()), float(x.max())
        if hi <= lo:
            grey = np.zeros(arr.shape, np.uint8)
        else:
            x -= lo
            x *= 255.0 / (hi - lo)
            if not np.isfinite(x).all():   # not expected in float64; refused rather than cast to garbage
                raise ImageFormatError(f"{encoding} pixel range [{lo:g}, {hi:g}] cannot be rescaled to 0..255")
            grey = np.clip(np.round(x, out=x), 0, 255, out=x).astype(np.uint8)   # in place: 8 B/px
        return np.repeat(grey[..., None], 3, axis=2)
    raise ImageFormatError(f"unsupported encoding '{encoding}'")
