"""sensor_msgs/Image <-> numpy for rgb8, bgr8, mono8, mono16 and 32FC1: one conversion for every
node of the suite (the model servers' inputs, the odometry's images, the clients' requests).

Works on any object with the Image attributes (height, width, encoding, is_bigendian, step, data):
rclpy messages, rosbags messages, SimpleNamespace in tests. Rows may be padded (step > width *
bytes per pixel); the padding is dropped. Every inconsistency raises ImageFormatError with a
reason a client can act on. No rclpy import except in `numpy_to_image`.
"""
from __future__ import annotations

from typing import Any

import numpy as np

# encoding -> (numpy base type, channels)
ENCODINGS: dict[str, tuple[str, int]] = {
    "rgb8": ("u1", 3),
    "bgr8": ("u1", 3),
    "mono8": ("u1", 1),
    "mono16": ("u2", 1),
    "32FC1": ("f4", 1),
}


class ImageFormatError(ValueError):
    """An Image message whose encoding, size, step or data is unusable."""


def image_to_numpy(msg: Any, max_pixels: int | None = None) -> np.ndarray:
    """The pixels of `msg` as (H, W, 3) or (H, W) in the encoding's own type and channel order.

    A copy, native byte order, padding removed. `max_pixels` bounds H * W before any copy.
    """
    enc = str(msg.encoding)
    if enc not in ENCODINGS:
        raise ImageFormatError(f"unsupported encoding '{enc}' (supported: {', '.join(ENCODINGS)})")
    base, channels = ENCODINGS[enc]
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    if h <= 0 or w <= 0:
        raise ImageFormatError(f"image has zero size ({w}x{h})")
    if max_pixels is not None and h * w > max_pixels:
        raise ImageFormatError(f"image of {w}x{h} = {h * w} pixels exceeds the limit of {max_pixels}")
    dtype = np.dtype(base).newbyteorder(">" if msg.is_bigendian else "<")
    row_bytes = w * channels * dtype.itemsize
    if step < row_bytes:
        raise ImageFormatError(f"step {step} is smaller than width x pixel size = {row_bytes} bytes")
    data = msg.data
    size = len(data)
    if size != h * step:
        raise ImageFormatError(f"data has {size} bytes, expected height x step = {h} x {step} = {h * step}")
    buf = np.frombuffer(_as_bytes(data), dtype=np.uint8).reshape(h, step)[:, :row_bytes]
    arr = buf.copy().view(dtype).reshape((h, w, channels) if channels > 1 else (h, w))
    return arr.astype(dtype.newbyteorder("="), copy=False)


def numpy_to_image(arr: np.ndarray, encoding: str, frame_id: str = "", stamp: Any = None):
    """A sensor_msgs/Image (rclpy type) holding `arr` (dense rows, little-endian)."""
    from sensor_msgs.msg import Image

    fields = image_fields(arr, encoding)
    msg = Image(**{k: v for k, v in fields.items() if k != "data"})
    msg.data = fields["data"]
    msg.header.frame_id = frame_id
    if stamp is not None:
        msg.header.stamp = stamp
    return msg


def image_fields(arr: np.ndarray, encoding: str) -> dict[str, Any]:
    """The Image fields (height, width, encoding, is_bigendian, step, data) for `arr`."""
    if encoding not in ENCODINGS:
        raise ImageFormatError(f"unsupported encoding '{encoding}'")
    base, channels = ENCODINGS[encoding]
    arr = np.asarray(arr)
    expected_ndim = 3 if channels > 1 else 2
    if arr.ndim != expected_ndim or (channels > 1 and arr.shape[2] != channels):
        raise ImageFormatError(f"{encoding} needs an array of shape "
                               f"{'(H, W, 3)' if channels > 1 else '(H, W)'}, got {arr.shape}")
    arr = np.ascontiguousarray(arr, dtype=np.dtype(base).newbyteorder("<"))
    h, w = arr.shape[:2]
    return {"height": h, "width": w, "encoding": encoding, "is_bigendian": 0,
            "step": w * channels * arr.dtype.itemsize, "data": arr.tobytes()}


def _as_bytes(data: Any) -> bytes | memoryview:
    """Message data may be bytes, array.array('B') (rclpy) or a list of ints."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return data
    if hasattr(data, "tobytes"):
        return data.tobytes()
    return bytes(data)
