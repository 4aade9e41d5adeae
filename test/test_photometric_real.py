"""The image side on a REAL Ouster frame (OS-1-128 of the ouster-sdk 1.0.1 test data, fetched by
`make setup` into data/ouster_sdk_tests/): the intensity image built from the cloud in raw
(staggered) order as ouster-ros publishes it equals the sdk's own destaggered image pixel for
pixel, and the whole chain (filter, mask, candidates, selection, patch points) runs on it."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from coin_lio.io import ouster_real as orl
from coin_lio.photometric.features import (FeatureConfig, detect_candidates, dominant_directions,
                                           select_patches)
from coin_lio.photometric.image_filter import filter_image, validity_mask
from coin_lio.photometric.patches import patch_indices, patch_points
from coin_lio.photometric.projection import ImageModel
from coin_lio.io.ouster_geometry import coin_lio_u_shift


@pytest.fixture(scope="module")
def os1_128():
    try:
        pcap, meta_path = orl.find_recording("OS-1-128")
    except FileNotFoundError as exc:
        pytest.skip(f"real Ouster data absent: {exc}")
    meta, _, _ = orl.read_metadata(meta_path)
    frame = orl.read_first_complete_frame(pcap, meta_path)
    cloud, _ = orl.frame_to_cloud(frame, meta)
    return {"meta_path": meta_path, "meta": meta, "frame": frame, "cloud": cloud}


def sdk_destagger(meta_path: Path, shifts: list[int]):
    """ouster-sdk's destagger: the package's own (metadata parsed by the sdk) when importable,
    else its C++ (ouster/impl/lidar_scan_impl.h destagger) transcribed: for row u,
    offset = (shift[u] + W) % W; out[u, offset:] = img[u, :W - offset];
    out[u, :offset] = img[u, W - offset:]."""
    try:
        from ouster.sdk.core import SensorInfo, destagger

        info = SensorInfo(Path(meta_path).read_text())
        return lambda img: destagger(info, np.ascontiguousarray(img)), "ouster.sdk"
    except ImportError:
        pass

    def transcribed(img: np.ndarray) -> np.ndarray:
        h, w = img.shape[:2]
        out = np.empty_like(img)
        for u in range(h):
            offset = (shifts[u] + w) % w
            out[u, offset:] = img[u, :w - offset]
            out[u, :offset] = img[u, w - offset:]
        return out
    return transcribed, "transcribed"


def test_intensity_image_from_the_raw_cloud_equals_the_sdks_destaggered_image(os1_128):
    meta, frame, cloud = os1_128["meta"], os1_128["frame"], os1_128["cloud"]
    destag, source = sdk_destagger(os1_128["meta_path"], meta.pixel_shift_by_row)
    print(f"destagger reference: {source}")
    h, w = cloud.shape
    model = ImageModel.from_metadata(os1_128["meta_path"])          # u_shift 0, raw order
    image, index, rng = model.image_from_cloud(cloud)
    has = destag(frame.fields["RANGE"]) > 0
    src = frame.info["intensity_field"]                              # REFLECTIVITY here
    expect = np.where(has, destag(frame.fields[src]), 0).astype(np.float32)
    assert has.mean() > 0.75
    np.testing.assert_array_equal(image, expect)
    flat = np.arange(h * w).reshape(h, w)
    np.testing.assert_array_equal(index, np.where(has, destag(flat), -1))
    xyz = np.stack([cloud[c] for c in "xyz"], -1).astype(np.float64)
    np.testing.assert_allclose(rng, np.where(has, destag(np.linalg.norm(xyz, axis=-1)), 0),
                               rtol=1e-6)
    # a calibrated u_shift is a pure column roll of the same image
    shifted, _, _ = ImageModel.from_metadata(meta, u_shift=37).image_from_cloud(cloud)
    np.testing.assert_array_equal(shifted, np.roll(expect, -37, axis=1))
    # a cloud the driver already destaggered (field by field, by the sdk) gives the same image
    dst = np.empty_like(cloud)
    for name in cloud.dtype.names:
        dst[name] = destag(cloud[name])
    again, _, _ = ImageModel.from_metadata(meta, destaggered=True).image_from_cloud(dst)
    np.testing.assert_array_equal(again, expect)
    scrambled, _, _ = model.image_from_cloud(dst)                    # the reference's issue
    assert not np.array_equal(scrambled, expect)


def test_real_points_project_onto_their_own_pixels(os1_128):
    meta, cloud = os1_128["meta"], os1_128["cloud"]
    u_shift = coin_lio_u_shift(meta, "os_lidar", orl.pixel_shift_offset(meta))
    model = ImageModel.from_metadata(meta, u_shift=u_shift)
    assert model.estimate_u_shift(cloud) == u_shift                 # 512 + 12 on this unit
    _, index, _ = model.image_from_cloud(cloud)
    v, u = np.nonzero(index >= 0)
    pts = np.stack([cloud[c].reshape(-1) for c in "xyz"], 1).astype(np.float64)[index[v, u]]
    uv, valid = model.project(pts)
    assert valid.mean() > 0.999
    pu = np.floor(uv[:, 0] + 0.5).astype(int) % model.cols
    assert np.mean((pu == u) & (np.rint(uv[:, 1]) == v)) > 0.995


def test_the_chain_runs_on_the_real_frame(os1_128):
    meta, cloud = os1_128["meta"], os1_128["cloud"]
    u_shift = coin_lio_u_shift(meta, "os_lidar", orl.pixel_shift_offset(meta))
    model = ImageModel.from_metadata(meta, u_shift=u_shift)
    image, index, rng = model.image_from_cloud(cloud)
    filter_image(image)                                              # warm (scipy's firwin)
    t0 = time.perf_counter()
    filtered = filter_image(image)
    mask = validity_mask(rng)
    uv, score = detect_candidates(filtered.grad_u, filtered.grad_v, mask)
    directions = dominant_directions(filtered.image, uv)
    xyz = np.stack([cloud[c].reshape(-1) for c in "xyz"], 1).astype(np.float64)
    pts = xyz[index[uv[:, 1], uv[:, 0]]]
    _, full = patch_indices(index, uv)          # all 25 pixels have points (the mask is eroded by 3)
    chosen = select_patches(uv, directions, None, pts, model, FeatureConfig().num_features, valid=full)
    patch_pts, valid = patch_points(xyz, index, uv[chosen])
    elapsed = time.perf_counter() - t0
    print(f"real OS-1-128: {len(uv)} candidates, {len(chosen)} patches, "
          f"chain {elapsed * 1e3:.1f} ms")
    assert len(uv) > 100 and len(chosen) == 60
    assert valid.all() and np.isfinite(patch_pts).all()
    assert np.all(index[uv[:, 1], uv[:, 0]] >= 0)                   # the mask saw to that
