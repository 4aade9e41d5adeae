"""Preprocessing cost is bounded by the input and the output, never by the aspect ratio.

Bounds are checked by size, not time: numpy allocations through tracemalloc (numpy reports its
buffers there), torch intermediates by recording every F.interpolate output. Before this change a
1 x 100000 rgb8 image became a 224 x 22,400,000 x 3 intermediate (15 GB) in the classifier.
"""
from __future__ import annotations

import tracemalloc
from types import SimpleNamespace

import numpy as np
import pytest

from learned_nodes.image_conversions import image_fields
from learned_nodes.server.limits import ServerLimits
from learned_nodes.server.validation import RequestError, check_image

MB = 1 << 20
S_CLS, S_BB = 224, 28            # classifier (CLIP-style) and backbone (digits checkpoint) input sizes
MEAN, STD = np.array([122.8, 116.7, 104.1]), np.array([68.5, 66.6, 70.3])
ENCODINGS = {"rgb8": np.uint8, "bgr8": np.uint8, "mono8": np.uint8, "mono16": np.uint16, "32FC1": np.float32}


def _msg(h: int, w: int, encoding: str):
    ch = 3 if encoding in ("rgb8", "bgr8") else 1
    rng = np.random.default_rng(h + w)
    arr = rng.uniform(-3e38, 3e38, (h, w)) if encoding == "32FC1" else rng.integers(0, 256, (h, w, ch)[:2 + (ch > 1)])
    return SimpleNamespace(**image_fields(np.asarray(arr).astype(ENCODINGS[encoding]), encoding))


def _peak(fn, *args):
    """(result, peak bytes that numpy allocated during fn)."""
    tracemalloc.start()
    try:
        out = fn(*args)
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _refused(msg, limits) -> str:
    try:
        check_image(msg, limits)
    except RequestError as exc:
        return str(exc)
    raise AssertionError("accepted")


def test_extreme_aspect_ratios_are_refused_from_the_header_before_any_copy():
    limits = ServerLimits()                                      # 4096 x 4096 pixels, 64:1
    for h, w in ((1, 100_000), (100_000, 1), (32, 2049)):
        msg = SimpleNamespace(height=h, width=w, encoding="rgb8", is_bigendian=0, step=3 * w,
                              data=bytes(3 * h * w))
        reason, peak = _peak(_refused, msg, limits)
        assert "aspect ratio" in reason and peak < MB, (reason, peak)
    assert "aspect ratio of 100000.0; the limit is 64" in _refused(
        SimpleNamespace(height=1, width=100_000, encoding="rgb8", is_bigendian=0, step=300_000,
                        data=bytes(300_000)), limits)
    assert check_image(_msg(32, 2048, "32FC1"), limits).shape == (32, 2048, 3)   # OS0-32 range image


@pytest.mark.parametrize("encoding", list(ENCODINGS))
@pytest.mark.parametrize("shape", [(1, 1 << 20), (1 << 20, 1)])
def test_worst_images_cost_a_bounded_multiple_of_the_input_with_the_ratio_limit_off(encoding, shape):
    """max_aspect_ratio off (an operator's choice): conversion + both preprocessings of 1 x N and
    N x 1 at the pixel limit stay within 20 B per input pixel (float64 rescaling of mono16/32FC1)
    + the outputs; the preprocessing itself within 2 MB (classifier) and S x min(H, W) (backbone)."""
    torch = pytest.importorskip("torch")
    from learned_nodes.cocoop import encoders
    from learned_nodes.daft import serve

    limits = ServerLimits(max_image_pixels=1 << 20, max_aspect_ratio=1e9)
    msg = _msg(*shape, encoding)
    rgb, peak = _peak(check_image, msg, limits)
    assert rgb.shape == (*shape, 3) and rgb.dtype == np.uint8
    assert peak <= 20 * (1 << 20) + MB, f"conversion peak {peak / MB:.1f} MB"

    pixels, peak = _peak(encoders.preprocess_images, [rgb], S_CLS, MEAN, STD)
    assert tuple(pixels.shape) == (1, 3, S_CLS, S_CLS) and bool(torch.isfinite(pixels).all())
    assert peak <= 2 * MB, f"classifier preprocessing peak {peak / MB:.1f} MB"

    sizes: list[int] = []
    real = serve.F.interpolate

    def spy(t, *a, **k):
        out = real(t, *a, **k)
        # one axis per call: torch's own intermediate of a 2-D call (N x S for N x 1) is then visible
        assert sum(i != o for i, o in zip(t.shape[-2:], out.shape[-2:])) == 1, (t.shape, out.shape)
        sizes.append(out.numel())
        return out

    serve.F.interpolate = spy
    try:
        x, peak = _peak(serve.preprocess, rgb, S_BB)
    finally:
        serve.F.interpolate = real
    assert x.shape == (3, S_BB, S_BB) and np.isfinite(x).all()
    assert max(sizes) <= S_BB * S_BB * 3, sizes                  # min(H, W) = 1: no S x N intermediate
    assert peak <= 16 * (1 << 20) + MB, f"backbone preprocessing peak {peak / MB:.1f} MB"


def test_default_pixel_limit_one_by_n_rgb_stays_small_in_the_classifier():
    """The issue's case at the full default pixel limit (4096^2 = 16.8M, 1 x N): was S x 224N."""
    pytest.importorskip("cv2")
    from learned_nodes.cocoop import encoders

    rgb = np.zeros((1, 4096 * 4096, 3), np.uint8)
    for img in (rgb, rgb.reshape(4096 * 4096, 1, 3)):
        _, peak = _peak(encoders.preprocess_images, [img], S_CLS, MEAN, STD)
        assert peak <= 2 * MB, f"{peak / MB:.1f} MB"


def test_preprocessing_of_ordinary_images_is_unchanged():
    """Two separable passes equal one 2-D antialiased resize; the classifier keeps resize-then-crop
    up to 64:1 (the crop-first path only for beyond)."""
    torch = pytest.importorskip("torch")
    import cv2

    from learned_nodes.cocoop.encoders import preprocess_images
    from learned_nodes.daft.serve import GREY_WEIGHTS, preprocess

    rng = np.random.default_rng(0)
    for h, w in ((480, 640), (640, 480), (20, 40), (1000, 37), (10, 10)):
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        x = np.repeat((img.astype(np.float32) @ GREY_WEIGHTS)[..., None], 3, axis=2)
        t = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]
        ref = torch.nn.functional.interpolate(t, size=(S_BB, S_BB), mode="bilinear", align_corners=False,
                                              antialias=S_BB < h or S_BB < w)
        np.testing.assert_allclose(preprocess(img, S_BB), ((ref.clamp(0, 255) - 127) / 128)[0].numpy(),
                                   atol=1e-5)
        scale = S_CLS / min(h, w)
        nh, nw = max(S_CLS, round(h * scale)), max(S_CLS, round(w * scale))
        r = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
        y0, x0 = (nh - S_CLS) // 2, (nw - S_CLS) // 2
        ref = (r[y0:y0 + S_CLS, x0:x0 + S_CLS].astype(np.float32) - MEAN.astype(np.float32)) / STD.astype(np.float32)
        np.testing.assert_allclose(preprocess_images([img], S_CLS, MEAN, STD)[0].numpy(),
                                   ref.transpose(2, 0, 1), atol=1e-5)
