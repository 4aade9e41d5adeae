"""Ouster geometry of the simulator: COIN-LIO projection round trip, staggering, metadata JSON."""
from __future__ import annotations

import json

import numpy as np
import pytest

from coin_lio.sim import (LidarNoiseConfig, LidarSimulator, LinearTrajectory, OusterConfig,
                          OusterMetadata, coin_lio_project, coin_lio_u_shift, destagger)
from coin_lio.sim.primitives import Cylinder, Plane
from coin_lio.sim.scene import Scene
from coin_lio.sim.textures import Noise


def room() -> Scene:
    """A closed round room around the sensor: every beam returns."""
    return Scene("room", [Cylinder(point=(0, 0, 0), axis=(0, 0, 1), radius=7.0, texture=Noise()),
                          Plane(point=(0, 0, -4.0), normal=(0, 0, 1), texture=Noise(seed=5)),
                          Plane(point=(0, 0, 5.0), normal=(0, 0, -1), texture=Noise(seed=6))])


def scan_room(cfg: OusterConfig) -> tuple[LidarSimulator, np.ndarray]:
    sim = LidarSimulator(cfg, LidarNoiseConfig.noiseless())
    return sim, sim.scan(room(), LinearTrajectory(p0=(0.3, -0.2, 0.1), yaw_deg=20.0), 0.0, rng=0)


def xyz(cloud: np.ndarray) -> np.ndarray:
    return np.stack([cloud["x"], cloud["y"], cloud["z"]], axis=-1).astype(np.float64)


def image_columns(meta: OusterMetadata, destaggered: bool, u_shift: int) -> np.ndarray:
    """(H, W) COIN-LIO image column of each cloud index (its fill-by-index rule)."""
    h, w = meta.pixels_per_column, meta.columns_per_frame
    col = np.broadcast_to(np.arange(w), (h, w))
    if not destaggered:
        col = (col + np.asarray(meta.pixel_shift_by_row)[:, None]) % w
    return (col - u_shift) % w


@pytest.mark.parametrize("rows,cols", [(32, 1024), (64, 512), (128, 1024)])
@pytest.mark.parametrize("destaggered", [False, True])
@pytest.mark.parametrize("cloud_frame", ["os_lidar", "os_sensor"])
def test_coin_lio_projection_maps_points_back_to_their_index(rows, cols, destaggered, cloud_frame):
    offset = 5 if rows == 64 else 0          # firmware-style constant in pixel_shift_by_row
    cfg = OusterConfig(rows=rows, cols=cols, destaggered=destaggered, cloud_frame=cloud_frame,
                       quantize_azimuths=True, pixel_shift_offset=offset)
    sim, cloud = scan_room(cfg)
    meta = sim.meta
    assert cloud.shape == (rows, cols) and np.all(cloud["range"] > 0)
    pts = xyz(cloud).reshape(-1, 3)
    if cloud_frame == "os_sensor":   # sensor axes; remove the 36 mm LiDAR height for the rows
        pts = pts - meta.T_sensor("os_lidar")[:3, 3]
    u, v = coin_lio_project(pts, meta)
    u_shift = coin_lio_u_shift(meta, cloud_frame, offset)
    expected_col = image_columns(meta, destaggered, u_shift).reshape(-1)
    expected_row = np.repeat(np.arange(rows), cols)
    assert np.array_equal(np.round(v).astype(int), expected_row)
    assert np.array_equal(np.round(u).astype(int) % cols, expected_col)
    assert np.abs(v - expected_row).max() < 0.02


@pytest.mark.parametrize("rows", [32, 64, 128])
def test_realistic_azimuths_stay_within_half_a_column(rows):
    """Real azimuth tables are not on the column grid: destaggering leaves < 0.5 px per row."""
    sim, cloud = scan_room(OusterConfig(rows=rows, cols=1024))
    meta = sim.meta
    u, v = coin_lio_project(xyz(cloud).reshape(-1, 3), meta)
    expected = image_columns(meta, False, coin_lio_u_shift(meta, "os_lidar")).reshape(-1)
    du = (u - expected + cols_half(meta)) % meta.columns_per_frame - cols_half(meta)
    assert np.abs(du).max() < 0.5 + 0.2
    assert np.array_equal(np.round(v).astype(int), np.repeat(np.arange(rows), 1024))


def cols_half(meta: OusterMetadata) -> float:
    return meta.columns_per_frame / 2


def test_geometry_follows_the_ouster_lut_conventions():
    """range = beam offset + |p - beam origin|, beam origin n (cos e, sin e, 0) with encoder angle
    e = 2 pi - 2 pi v / W: column 0 looks along +x of os_lidar, columns advance clockwise."""
    sim, cloud = scan_room(OusterConfig(rows=64, cols=512))
    meta = sim.meta
    n = meta.lidar_origin_to_beam_origin_mm * 1e-3
    enc = 2 * np.pi - np.arange(512) * 2 * np.pi / 512
    origin = np.stack([n * np.cos(enc), n * np.sin(enc), np.zeros(512)], axis=-1)
    rel = xyz(cloud) - origin[None]
    assert np.allclose(np.linalg.norm(rel, axis=-1) + n, cloud["range"] * 1e-3, atol=2e-5)
    beam_az = np.arctan2(rel[..., 1], rel[..., 0])
    expect = enc[None, :] - np.radians(meta.beam_azimuth_angles)[:, None]
    assert np.allclose(np.angle(np.exp(1j * (beam_az - expect))), 0.0, atol=1e-4)
    # the sensor frame is the LiDAR frame yawed by 180 degrees and lifted 36.18 mm
    _, cloud_s = scan_room(OusterConfig(rows=64, cols=512, cloud_frame="os_sensor"))
    lifted = xyz(cloud) * np.array([-1, -1, 1]) + np.array([0, 0, 0.03618])
    assert np.allclose(xyz(cloud_s), lifted, atol=1e-5)


def test_staggering_round_trip_against_metadata(tmp_path):
    cfg = OusterConfig(rows=64, cols=1024, pixel_shift_offset=3)
    sim_raw, raw = scan_room(cfg)
    _, dst = scan_room(OusterConfig(rows=64, cols=1024, pixel_shift_offset=3, destaggered=True))
    for layout in ("legacy", "nested"):
        meta = OusterMetadata.read(sim_raw.meta.write(tmp_path / f"{layout}.json", layout))
        shifts = np.asarray(meta.pixel_shift_by_row)
        az = np.asarray(meta.beam_azimuth_angles)
        assert np.array_equal(shifts, np.round(az * 1024 / 360) + 3)
        assert np.array_equal(destagger(raw, shifts).view(np.uint8), dst.view(np.uint8))
        back = destagger(dst, shifts, inverse=True)
        assert np.array_equal(back.view(np.uint8), raw.view(np.uint8))
    # destaggered columns share one azimuth: column c looks along encoder angle of c - offset
    az = np.arctan2(dst["y"], dst["x"])
    spread = np.angle(np.exp(1j * (az - az[32:33])))
    assert np.abs(spread[:, 100:900]).max() < np.radians(360 / 1024)


def test_metadata_reads_both_layouts_and_rejects_bad_files(tmp_path):
    meta = OusterConfig(rows=32, cols=512).metadata()
    flat, nested = meta.to_dict("legacy"), meta.to_dict("nested")
    assert "data_format" in flat and "beam_altitude_angles" in flat
    assert "lidar_data_format" in nested and "beam_intrinsics" in nested
    for d in (flat, nested):
        back = OusterMetadata.from_dict(json.loads(json.dumps(d)))
        assert back.pixel_shift_by_row == meta.pixel_shift_by_row
        assert back.lidar_mode == "512x10" and back.pixels_per_column == 32
        assert np.allclose(back.lidar_to_sensor_transform, meta.lidar_to_sensor_transform)
    # LiDAR -> IMU extrinsic carries the 180-degree yaw of lidar_to_sensor
    assert np.allclose(meta.T_imu_lidar()[:3, :3], np.diag([-1.0, -1.0, 1.0]))
    assert np.allclose(meta.T_imu_lidar()[:3, 3], [-0.006253, 0.011775, 0.028535])
    bad = dict(flat, beam_azimuth_angles=flat["beam_azimuth_angles"][:-1])
    with pytest.raises(ValueError, match="beam_azimuth_angles"):
        OusterMetadata.from_dict(bad)
    with pytest.raises(KeyError, match="data_format"):
        OusterMetadata.from_dict({k: v for k, v in flat.items() if k != "data_format"})
