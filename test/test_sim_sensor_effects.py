"""Simulator LiDAR effects on single sweeps, both sensor models: dropped packets, column window,
spurious noise returns, mixed pixels at depth edges; effects off -> the plain sweep."""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest

from coin_lio.sim import (ImuConfig, LidarSimulator, OusterConfig, SequenceConfig, VelodyneConfig,
                          destagger)
from coin_lio.sim.scan_effects import depth_edges, lost_packet_columns, window_columns
from coin_lio.sim.sensor_effects import SensorEffects
from coin_lio.sim.sequence import build

T_SCAN = 2.0          # s: a moving sweep of the dynamic profile


@lru_cache(maxsize=1)
def world():
    cfg = SequenceConfig(scene="corridor", duration=3.0, profile="dynamic", seed=7,
                         imu=ImuConfig(rate_hz=100.0))
    spec, traj, _, _ = build(cfg)
    return spec.scene, traj


def sensor(name: str, **kw) -> OusterConfig | VelodyneConfig:
    if name == "ouster":
        return OusterConfig(**{"rows": 32, "cols": 512, **kw})
    return VelodyneConfig(**{"rings": 16, "cols": 1800, **kw})


def sweep(name: str, effects: SensorEffects | None, seed: int = 0, **kw) -> np.ndarray:
    scene, traj = world()
    return LidarSimulator(sensor(name, **kw), effects=effects).scan(scene, traj, T_SCAN, rng=seed)


def velodyne_columns(cloud: np.ndarray, cols: int = 1800) -> np.ndarray:
    """Firing index of each point: firing j points at azimuth -360 j / cols (LiDAR frame)."""
    az = np.arctan2(cloud["y"].astype(float), cloud["x"].astype(float))
    return np.round(-az * cols / (2 * np.pi)).astype(int) % cols


def velodyne_image(cloud: np.ndarray, cols: int = 1800) -> np.ndarray:
    """(rings, cols) range (m) image of a Velodyne sweep, NaN where no point."""
    img = np.full((16, cols), np.nan)
    rng = np.linalg.norm(np.stack([cloud[c].astype(float) for c in "xyz"], -1), axis=-1)
    img[cloud["ring"], velodyne_columns(cloud, cols)] = rng
    return img


def same(a: np.ndarray, b: np.ndarray) -> bool:
    """Field by field (copies of padded structured arrays carry arbitrary padding bytes)."""
    return a.shape == b.shape and all(np.array_equal(a[f], b[f]) for f in a.dtype.names)


@pytest.mark.parametrize("name", ["ouster", "velodyne"])
def test_effects_off_give_the_plain_sweep(name):
    plain = sweep(name, None)
    assert sweep(name, SensorEffects()).tobytes() == plain.tobytes()
    # every effect switched on, then off again through replace(): the plain sweep
    off = SensorEffects.realistic(column_window=(3, 9)).replace(
        packet_drop_prob=0.0, column_window=None, noise_return_frac=0.0, mixed_pixel_frac=0.0)
    assert not off.lidar_enabled and sweep(name, off).tobytes() == plain.tobytes()


def test_lost_packets_are_whole_blocks_at_the_stated_rate():
    rng = np.random.default_rng(0)
    lost = lost_packet_columns(16 * 20000, 16, 0.05, rng).reshape(-1, 16)
    assert np.all(lost.all(axis=1) | ~lost.any(axis=1))          # whole packets only
    assert abs(lost[:, 0].mean() - 0.05) < 4 * np.sqrt(0.05 * 0.95 / 20000)
    short = lost_packet_columns(1800, 24, 0.5, rng)               # 75 firing blocks
    assert short.shape == (1800,) and np.all(short.reshape(75, 24).std(axis=1) == 0)


def test_ouster_dropped_packets_zero_whole_16_column_blocks():
    eff = SensorEffects(packet_drop_prob=0.2)
    plain, cut = sweep("ouster", None, 3), sweep("ouster", eff, 3)
    lost = (cut["range"] == 0).all(axis=0) & (cut["ambient"] == 0).all(axis=0)
    blocks = lost.reshape(-1, 16)
    assert np.all(blocks.all(axis=1) | ~blocks.any(axis=1)) and 1 <= blocks[:, 0].sum() < 32
    for f in ("x", "y", "z", "range", "intensity", "reflectivity", "ambient"):
        assert np.all(cut[f][:, lost] == 0), f
    for f in ("t", "ring"):                                       # kept, like other invalid pixels
        assert np.array_equal(cut[f], plain[f]), f
    assert same(cut[:, ~lost], plain[:, ~lost])  # the other packets untouched
    # destaggered clouds: the same raw blocks, moved by pixel_shift_by_row
    sim = LidarSimulator(sensor("ouster", destaggered=True), effects=eff)
    scene, traj = world()
    assert same(sim.scan(scene, traj, T_SCAN, rng=3), destagger(cut, sim.meta.pixel_shift_by_row))


def test_velodyne_dropped_packets_remove_blocks_of_24_firings():
    plain, cut = sweep("velodyne", None, 4), sweep("velodyne", SensorEffects(packet_drop_prob=0.2), 4)
    block_plain, block_cut = velodyne_columns(plain) // 24, velodyne_columns(cut) // 24
    lost = np.setdiff1d(block_plain, block_cut)
    assert 3 <= len(lost) <= 30                                   # of 75 packets, p = 0.2
    kept = plain[~np.isin(block_plain, lost)]
    assert cut.tobytes() == kept.tobytes()                        # whole blocks gone, rest equal
    eff = SensorEffects(packet_drop_prob=0.2, firings_per_packet=12)
    assert eff.packet_columns("velodyne", 16) == 12 and eff.packet_columns("ouster", 16) == 16


@pytest.mark.parametrize("window", [(100, 299), (400, 50)])
def test_ouster_column_window(window):
    plain, cut = sweep("ouster", None, 5), sweep("ouster", SensorEffects(column_window=window), 5)
    inside = window_columns(512, window)
    assert inside.sum() == (window[1] - window[0]) % 512 + 1
    assert np.all(cut["range"][:, ~inside] == 0) and np.all(cut["x"][:, ~inside] == 0)
    assert np.all(cut["ambient"][:, ~inside] == 0)
    assert same(cut[:, inside], plain[:, inside])
    sim = LidarSimulator(sensor("ouster"), effects=SensorEffects(column_window=window))
    assert sim.meta.column_window == window and sim.meta.to_dict()["data_format"]["column_window"] == list(window)
    with pytest.raises(ValueError, match="column_window"):
        LidarSimulator(sensor("ouster"), effects=SensorEffects(column_window=(0, 512)))


def test_velodyne_azimuth_window():
    plain, cut = sweep("velodyne", None, 6), sweep("velodyne", SensorEffects(column_window=(0, 449)), 6)
    j = velodyne_columns(cut)
    assert j.max() <= 449 and len(cut) > 0                        # azimuth 0 .. -90 deg only
    assert cut.tobytes() == plain[velodyne_columns(plain) <= 449].tobytes()


def test_ouster_noise_returns():
    plain, noisy = sweep("ouster", None, 8), sweep("ouster", SensorEffects(noise_return_frac=0.05), 8)
    changed = noisy["range"] != plain["range"]
    assert abs(changed.mean() - 0.05) < 4 * np.sqrt(0.05 * 0.95 / changed.size)
    r = noisy["range"][changed]
    assert r.min() >= 500 and r.max() <= 5000                   # mm: 0.5 .. 5 m
    assert noisy["intensity"][changed].max() <= 30 and noisy["reflectivity"][changed].max() <= 20
    assert np.all(noisy["range"][~changed] == plain["range"][~changed])
    # the points lie on their rays: x y z = range along the pixel's direction
    xyz = np.stack([noisy[c][changed] for c in "xyz"], -1).astype(float)
    assert np.all(np.abs(np.linalg.norm(xyz, axis=1) - r * 1e-3) < 0.08)


def test_velodyne_noise_returns():
    plain = sweep("velodyne", None, 9)
    noisy = sweep("velodyne", SensorEffects(noise_return_frac=0.05), 9)
    a, b = velodyne_image(plain), velodyne_image(noisy)
    changed = ~np.isclose(a, b, atol=1e-4, equal_nan=False) & ~np.isnan(b)
    assert not np.any(np.isnan(b) & ~np.isnan(a))                # a noise return never removes
    assert abs(changed.mean() - 0.05) < 4 * np.sqrt(0.05 * 0.95 / changed.size)
    assert b[changed].min() >= 0.5 - 1e-4 and b[changed].max() <= 5.0 + 1e-4
    assert noisy["intensity"][changed[noisy["ring"], velodyne_columns(noisy)]].max() <= 10


def check_mixed(before: np.ndarray, after: np.ndarray, frac: float, min_jump: float) -> None:
    """(H, W) ranges in m (NaN or 0: no return): changed pixels are depth-edge pixels whose new
    range lies between their old one and a horizontal neighbour's across a step > min_jump."""
    valid = np.isfinite(before) & (before > 0)
    edge, _ = depth_edges(np.nan_to_num(before), valid, min_jump)
    changed = valid & (np.abs(after - before) > 2e-3)
    assert changed.any() and np.all(edge[changed])
    between = np.zeros_like(changed)
    for shift in (-1, 1):
        nb = np.roll(np.nan_to_num(before), shift, axis=1)
        ok = np.roll(valid, shift, axis=1) & (np.abs(nb - before) > min_jump - 2e-3)
        lo, hi = np.minimum(before, nb) - 2e-3, np.maximum(before, nb) + 2e-3
        between |= ok & (after >= lo) & (after <= hi)
    assert np.all(between[changed])
    share = changed.sum() / edge.sum()
    assert 0.5 * frac < share < 1.2 * frac, share


def test_ouster_mixed_pixels_only_at_depth_edges():
    eff = SensorEffects(mixed_pixel_frac=0.5, mixed_pixel_min_jump_m=0.3)
    plain, mixed = sweep("ouster", None, 10), sweep("ouster", eff, 10)
    assert np.array_equal(plain["range"] > 0, mixed["range"] > 0)   # no return added or lost
    check_mixed(plain["range"] * 1e-3, mixed["range"] * 1e-3, 0.5, 0.3)


def test_velodyne_mixed_pixels_only_at_depth_edges():
    eff = SensorEffects(mixed_pixel_frac=0.5, mixed_pixel_min_jump_m=0.3)
    plain, mixed = sweep("velodyne", None, 11), sweep("velodyne", eff, 11)
    assert len(plain) == len(mixed) and np.array_equal(plain["time"], mixed["time"])
    check_mixed(velodyne_image(plain), velodyne_image(mixed), 0.5, 0.3)


def test_depth_edges_marks_both_sides_of_a_step():
    r = np.array([[2.0, 2.0, 2.0, 9.0, 9.0, 9.0, 2.0, 2.0]])
    valid = np.ones_like(r, bool)
    valid[0, 6] = False                                          # no return: no edge with it
    edge, partner = depth_edges(r, valid, 0.5)
    assert edge.tolist() == [[False, False, True, True, False, False, False, False]]
    assert partner[0, 2] == 9.0 and partner[0, 3] == 2.0
