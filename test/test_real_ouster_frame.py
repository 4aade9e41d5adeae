"""Real Ouster frames (ouster-sdk 1.0.1 test data, fetched by `make setup` into data/ouster_sdk_tests/)
through the suite: pcap decoding equals the sdk's (its own md5 digests), the cloud has ouster-ros'
"original" layout in raw column order, xyz follows the sdk's make_xyz_lut, the simulator's
projection code puts every real point back on its own pixel, and the cloud survives a bag."""
from __future__ import annotations

import json

import numpy as np
import pytest

from coin_lio.io import ouster_real as orl
from suite_tools.pointcloud2 import OUSTER_ORIGINAL_DTYPE, pointcloud2_to_array
from coin_lio.io.ouster_geometry import coin_lio_project, coin_lio_u_shift, ouster_xyz_lut
from coin_lio.io.ouster_metadata import OusterMetadata


def _recording(name: str):
    try:
        return orl.find_recording(name)
    except FileNotFoundError as exc:
        pytest.skip(f"real Ouster data absent: {exc}")


@pytest.fixture(scope="module")
def os1_128():
    pcap, meta_path = _recording("OS-1-128")
    meta, sf, raw = orl.read_metadata(meta_path)
    frames = orl.read_frames(pcap, meta_path)
    frame = next(f for f in frames if f.complete)
    cloud, stamp = orl.frame_to_cloud(frame, meta)
    return {"pcap": pcap, "meta_path": meta_path, "meta": meta, "sf": sf, "raw": raw,
            "frames": frames, "frame": frame, "cloud": cloud, "stamp": stamp}


def sdk_make_xyz_lut(meta: OusterMetadata, transform: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ouster-sdk 1.0.1 ouster_core/src/xyzlut.cpp make_xyz_lut, transcribed (mm, then x 1e-3):
    (direction (H*W, 3), offset (H*W, 3)) for pixel i = row * W + col."""
    w, h = meta.columns_per_frame, meta.pixels_per_column
    btl = meta.beam_to_lidar()
    dist = btl[0, 3] if btl[2, 3] == 0 else np.hypot(btl[0, 3], btl[2, 3])
    col = np.tile(np.arange(w), h)
    row = np.repeat(np.arange(h), w)
    encoder = 2.0 * np.pi - col * (2.0 * np.pi / w)
    azimuth = -np.asarray(meta.beam_azimuth_angles)[row] * np.pi / 180.0
    altitude = np.asarray(meta.beam_altitude_angles)[row] * np.pi / 180.0
    direction = np.stack([np.cos(encoder + azimuth) * np.cos(altitude),
                          np.sin(encoder + azimuth) * np.cos(altitude), np.sin(altitude)], 1)
    offset = np.stack([np.cos(encoder) * btl[0, 3] - direction[:, 0] * dist,
                       np.sin(encoder) * btl[0, 3] - direction[:, 1] * dist,
                       -direction[:, 2] * dist + btl[2, 3]], 1)
    rot, trans = transform[:3, :3], transform[:3, 3]
    return direction @ rot.T, (offset @ rot.T + trans) * 1e-3


def test_os1_128_recording_decodes_into_three_full_frames_and_imu(os1_128):
    sf, frames = os1_128["sf"], os1_128["frames"]
    assert (sf.rows, sf.cols, sf.profile, sf.prod_line) == (128, 1024, "RNG15_RFL8_NIR8", "OS-1-128")
    assert [f.complete for f in frames] == [True, True, True]
    assert np.diff([f.frame_id for f in frames]).tolist() == [1, 1]
    for f in frames:
        ts = f.timestamp.astype(np.int64)
        assert np.all(np.diff(ts) > 0) and 99.0e6 < ts[-1] - ts[0] < 100.0e6     # 10 Hz sweep
        assert (f.fields["RANGE"] > 0).mean() > 0.75
    imu = orl.read_imu(os1_128["pcap"], os1_128["meta_path"])
    assert len(imu.t_ns) == 30
    assert np.all(np.diff(imu.t_ns) > 0) and 9.0e6 < np.median(np.diff(imu.t_ns)) < 11.0e6  # 100 Hz
    assert 8.5 < np.median(np.linalg.norm(imu.acc, axis=1)) < 12.0             # m/s^2, ~1 g
    assert np.abs(imu.gyro).max() < 0.2                                        # rad/s


@pytest.mark.parametrize("name", ["OS-0-128", "OS-2-128", "OS-0-32", "OS-1-32", "OS-2-32"])
def test_decoding_equals_the_sdks_own_digest(name):
    """sdk/tests/pcaps/*_digest.json: md5 of every field of the frame as ouster-sdk decodes it
    (LEGACY, RNG19_RFL8_SIG16_NIR16, its _DUAL and RNG15_RFL8_NIR8 profiles)."""
    pcap, meta_path = _recording(name)
    digest_path = pcap.with_name(pcap.name.replace(".pcap", "_digest.json"))
    ref = json.loads(digest_path.read_text())["scans"][0]
    frame = next(f for f in orl.read_frames(pcap, meta_path) if str(f.frame_id) == ref["FRAME_ID"])
    mine = orl.frame_digest(frame)
    checked = {k: v for k, v in ref.items() if k != "ENCODER_COUNT"}   # the sdk skips it too
    assert {k: mine.get(k) for k in checked} == checked


def test_cloud_has_ouster_ros_original_layout_in_raw_column_order(os1_128):
    cloud, frame, stamp = os1_128["cloud"], os1_128["frame"], os1_128["stamp"]
    assert cloud.dtype == OUSTER_ORIGINAL_DTYPE and cloud.dtype.itemsize == 48
    assert cloud.shape == (128, 1024)
    assert [cloud.dtype.fields[n][1] for n in ("x", "y", "z", "intensity", "t", "reflectivity",
                                               "ring", "ambient", "range")] == [0, 4, 8, 16, 20,
                                                                                 24, 26, 28, 32]
    # raw order: one measurement time per column, the header stamp is column 0's time
    assert np.all(cloud["t"] == cloud["t"][0]) and cloud["t"][0, 0] == 0
    assert stamp == int(frame.timestamp[0])
    np.testing.assert_array_equal(cloud["t"][0], frame.timestamp.astype(np.int64) - stamp)
    assert np.all(cloud["ring"] == np.arange(128)[:, None])
    np.testing.assert_array_equal(cloud["range"], frame.fields["RANGE"])      # mm
    valid = cloud["range"] > 0
    assert valid.mean() > 0.75
    none = ~valid
    for name in ("x", "y", "z", "intensity", "reflectivity"):
        assert np.all(cloud[name][none] == 0)
    # this profile has no SIGNAL channel: intensity comes from reflectivity (and says so)
    assert frame.info["intensity_field"] == "REFLECTIVITY"
    np.testing.assert_array_equal(cloud["intensity"][valid], frame.fields["REFLECTIVITY"][valid])
    np.testing.assert_array_equal(cloud["ambient"], frame.fields["NEAR_IR"])
    # staggered: destaggering by pixel_shift_by_row makes neighbouring rows agree in range
    from coin_lio.photometric.projection import destagger

    rng = cloud["range"].astype(np.float64)
    d = destagger(rng, os1_128["meta"].pixel_shift_by_row)
    both = lambda a: (a[:-1] > 0) & (a[1:] > 0)                          # noqa: E731
    step = lambda a: np.median(np.abs(np.diff(a, axis=0))[both(a)])       # noqa: E731
    assert step(d) < 0.5 * step(rng)


def test_xyz_lookup_table_is_the_sdks_formula(os1_128):
    meta, cloud = os1_128["meta"], os1_128["cloud"]
    for frame_name, transform in (("os_lidar", np.eye(4)),
                                  ("os_sensor", meta.lidar_to_sensor_transform)):
        d_ref, o_ref = sdk_make_xyz_lut(meta, transform)
        d, o = ouster_xyz_lut(meta, frame_name)
        np.testing.assert_allclose(d.reshape(-1, 3), d_ref, atol=1e-12)
        np.testing.assert_allclose(o.reshape(-1, 3), o_ref, atol=1e-12)
    d_ref, o_ref = sdk_make_xyz_lut(meta, np.eye(4))
    rng = cloud["range"].reshape(-1).astype(np.float64) * 1e-3
    xyz_ref = np.where(rng[:, None] > 0, d_ref * rng[:, None] + o_ref, 0.0)
    xyz = np.stack([cloud[c].reshape(-1) for c in "xyz"], 1).astype(np.float64)
    np.testing.assert_allclose(xyz, xyz_ref, atol=2e-5)                      # float32 metres


@pytest.mark.parametrize("name", sorted(orl.RECORDINGS))
def test_every_real_point_projects_back_to_its_own_pixel(name):
    """COIN-LIO's projection (coin_lio.io.ouster_geometry.coin_lio_project) of each valid point of a
    real frame, in os_lidar with u_shift = coin_lio_u_shift(os_lidar, pixel shift offset): the row
    within half a pixel always; the column within half a pixel of the destaggered column, up to
    the part the integer pixel_shift_by_row rounds away (< 0.5 px) plus the beam-origin parallax
    of near points (the OS-0's +-11 degree beam azimuths; beyond 2 m it stays under 0.6 px)."""
    pcap, meta_path = _recording(name)
    meta, _, _ = orl.read_metadata(meta_path)
    frame = orl.read_first_complete_frame(pcap, meta_path)
    cloud, _ = orl.frame_to_cloud(frame, meta)
    w = cloud.shape[1]
    offset = orl.pixel_shift_offset(meta)           # firmware 2.x: 6..34 columns, constant
    valid = cloud["range"] > 0
    rows, cols = np.nonzero(valid)
    pts = np.stack([cloud[c][valid] for c in "xyz"], 1).astype(np.float64)
    u, v = coin_lio_project(pts, meta)
    u_shift = coin_lio_u_shift(meta, "os_lidar", offset)
    image_col = (cols + np.asarray(meta.pixel_shift_by_row)[rows] - u_shift) % w
    du = (u - image_col + w / 2) % w - w / 2
    assert np.abs(v - rows).max() < 0.5
    az_cols = np.asarray(meta.beam_azimuth_angles) * w / 360.0
    rounded_away = (az_cols - np.round(az_cols))[rows]
    far = cloud["range"][valid] > 2000
    assert np.abs(du - rounded_away)[far].max() < 0.6
    if name.startswith(("OS-1", "OS-2")):            # narrow beam azimuths: exactly its own pixel
        assert np.abs(du).max() < 0.5


def test_metadata_in_the_simulators_layout(os1_128, tmp_path):
    meta, raw = os1_128["meta"], os1_128["raw"]
    doc = orl.suite_metadata(meta)
    path = tmp_path / "metadata.json"
    path.write_text(json.dumps(doc))
    back = OusterMetadata.read(path)
    assert back.beam_altitude_angles == raw["beam_altitude_angles"]
    assert back.pixel_shift_by_row == raw["data_format"]["pixel_shift_by_row"]
    assert back.lidar_origin_to_beam_origin_mm == raw["lidar_origin_to_beam_origin_mm"] == 15.806
    assert back.lidar_mode == "1024x10" and back.prod_line == "OS-1-128"
    # the real unit's 180-degree yaw between LiDAR and sensor frames, as the simulator models it
    np.testing.assert_allclose(back.T_lidar_imu()[:3, :3], np.diag([-1.0, -1.0, 1.0]))
    np.testing.assert_allclose(back.lidar_to_sensor_transform,
                               np.reshape(raw["lidar_to_sensor_transform"], (4, 4)))


def test_real_frame_through_a_bag(os1_128, tmp_path):
    from suite_tools.bag_io import BagWriter, bag_topics, make_pointcloud2, read_bag

    cloud, stamp = os1_128["cloud"], os1_128["stamp"]
    with BagWriter(tmp_path / "one") as writer:
        writer.write("/ouster/points", stamp + 100_000_000,
                     make_pointcloud2(cloud, stamp, "os_lidar", is_dense=False))
    msg = next(read_bag(tmp_path / "one")).decode()
    assert (msg.height, msg.width, msg.point_step, msg.header.frame_id) == (128, 1024, 48, "os_lidar")
    assert msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec == stamp
    back = pointcloud2_to_array(msg)
    assert back.dtype == OUSTER_ORIGINAL_DTYPE
    for name in OUSTER_ORIGINAL_DTYPE.names:          # field by field (padding bytes are not data)
        np.testing.assert_array_equal(back[name], cloud[name], err_msg=name)

    info = orl.write_real_sequence("OS-1-128", tmp_path / "seq")
    assert (info["n_clouds"], info["n_imu"]) == (3, 30)
    topics = bag_topics(info["bag"])
    assert topics == {"/ouster/points": ("sensor_msgs/msg/PointCloud2", 3),
                      "/ouster/imu": ("sensor_msgs/msg/Imu", 30)}
    from coin_lio.eval.sequence import decode_scan

    scans = [decode_scan(m.decode()) for m in read_bag(info["bag"], ["/ouster/points"])]
    assert scans[0].stamp == pytest.approx(stamp * 1e-9)
    assert scans[0].end - scans[0].stamp == pytest.approx(0.0999, abs=2e-4)
    assert OusterMetadata.read(info["metadata"]).pixel_shift_by_row == os1_128["meta"].pixel_shift_by_row
