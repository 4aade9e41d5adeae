"""sensor_msgs/Image <-> numpy for every supported encoding, on hand-built messages (no graph)."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from learned_nodes.image_conversions import (ENCODINGS, ImageFormatError, image_fields, image_to_numpy,
                                             to_rgb8)

RNG = np.random.default_rng(0)


def _array(encoding: str, h: int = 5, w: int = 7) -> np.ndarray:
    base, ch = ENCODINGS[encoding]
    shape = (h, w, ch) if ch > 1 else (h, w)
    if base == "f4":
        return RNG.normal(size=shape).astype(np.float32)
    return RNG.integers(0, np.iinfo(np.dtype(base)).max, size=shape).astype(base)


def _msg(arr: np.ndarray, encoding: str, pad: int = 0, bigendian: bool = False) -> SimpleNamespace:
    """An Image-like message with `pad` bytes of garbage at the end of every row."""
    base, ch = ENCODINGS[encoding]
    dtype = np.dtype(base).newbyteorder(">" if bigendian else "<")
    rows = np.ascontiguousarray(arr, dtype=dtype).reshape(arr.shape[0], -1).view(np.uint8)
    rows = np.concatenate([rows, np.full((arr.shape[0], pad), 0xAB, np.uint8)], axis=1)
    return SimpleNamespace(height=arr.shape[0], width=arr.shape[1], encoding=encoding,
                           is_bigendian=int(bigendian), step=rows.shape[1], data=rows.tobytes())


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
@pytest.mark.parametrize("pad", [0, 3])
def test_round_trip_every_encoding_with_and_without_row_padding(encoding, pad):
    arr = _array(encoding)
    out = image_to_numpy(_msg(arr, encoding, pad))
    assert out.dtype == np.dtype(ENCODINGS[encoding][0]) and out.shape == arr.shape
    np.testing.assert_array_equal(out, arr)


@pytest.mark.parametrize("encoding", ["mono16", "32FC1"])
def test_big_endian_data_is_read_in_native_order(encoding):
    arr = _array(encoding)
    np.testing.assert_array_equal(image_to_numpy(_msg(arr, encoding, bigendian=True)), arr)


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
def test_image_fields_are_dense_and_read_back(encoding):
    arr = _array(encoding, 3, 4)
    fields = image_fields(arr, encoding)
    assert fields["step"] * fields["height"] == len(fields["data"])
    np.testing.assert_array_equal(image_to_numpy(SimpleNamespace(**fields)), arr)


def test_numpy_to_image_builds_a_sensor_msgs_image():
    pytest.importorskip("sensor_msgs.msg")
    from learned_nodes.image_conversions import numpy_to_image

    arr = _array("rgb8", 4, 6)
    msg = numpy_to_image(arr, "rgb8", frame_id="cam")
    assert (msg.height, msg.width, msg.step, msg.header.frame_id) == (4, 6, 18, "cam")
    np.testing.assert_array_equal(image_to_numpy(msg), arr)


def test_to_rgb8_channel_order_and_scaling():
    rgb = _array("rgb8")
    np.testing.assert_array_equal(to_rgb8(rgb[..., ::-1], "bgr8"), rgb)
    mono = _array("mono8")
    assert to_rgb8(mono, "mono8").shape == mono.shape + (3,)
    depth = np.array([[0.5, 1.5], [2.5, 4.5]], np.float32)
    out = to_rgb8(depth, "32FC1")
    assert out[0, 0, 0] == 0 and out[1, 1, 2] == 255 and out.dtype == np.uint8
    assert (to_rgb8(np.full((2, 2), 7, np.uint16), "mono16") == 0).all()  # constant image: no NaN


@pytest.mark.parametrize("mutate, reason", [
    (dict(encoding="yuv422"), "unsupported encoding"),
    (dict(height=0), "zero size"),
    (dict(width=0), "zero size"),
    (dict(step=5), "step 5 is smaller"),
    (dict(data=b"\x00" * 10), "expected height x step"),
])
def test_malformed_messages_raise_with_a_reason(mutate, reason):
    msg = _msg(_array("rgb8"), "rgb8")
    for k, v in mutate.items():
        setattr(msg, k, v)
    with pytest.raises(ImageFormatError, match=reason):
        image_to_numpy(msg)


def test_huge_image_is_refused_before_any_copy():
    msg = SimpleNamespace(height=100_000, width=100_000, encoding="mono8", is_bigendian=0, step=100_000,
                          data=b"")
    with pytest.raises(ImageFormatError, match="exceeds the limit"):
        image_to_numpy(msg, max_pixels=4096 * 4096)


def test_nan_in_float_image_is_refused():
    arr = np.ones((3, 3), np.float32)
    arr[1, 1] = np.nan
    with pytest.raises(ImageFormatError, match="NaN"):
        to_rgb8(image_to_numpy(_msg(arr, "32FC1")), "32FC1")
