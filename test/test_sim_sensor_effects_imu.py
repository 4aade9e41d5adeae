"""Simulator IMU effects (time offset, saturation, knocks) and the effects in sequences: config
checks, CLI switches, sequence.json record, determinism, effects off -> the plain sequence."""
from __future__ import annotations

import json

import numpy as np
import pytest

from coin_lio.sim import (ImuConfig, LidarSimulator, OusterConfig, SequenceConfig, VelodyneConfig,
                          generate_sequence)
from coin_lio.sim.cli import main
from coin_lio.sim.imu import ideal_imu, simulate_imu
from coin_lio.sim.sensor_effects import STANDARD_G, KnockedBody, SensorEffects, recorded_imu
from coin_lio.sim.sequence import build
from suite_tools.bag_io import read_bag
from suite_tools.pointcloud2 import pointcloud2_to_array


def small(**kw) -> SequenceConfig:
    base = dict(scene="corridor", duration=0.3, profile="dynamic", seed=5,
                ouster=OusterConfig(rows=16, cols=512), imu=ImuConfig(rate_hz=200.0))
    return SequenceConfig(**{**base, **kw})


def imu_messages(bag, topic: str = "/ouster/imu") -> tuple[np.ndarray, np.ndarray]:
    """(stamps (N,) ns, readings (N, 6) gyro + acc) of a bag's IMU topic."""
    stamps, vals = [], []
    for m in read_bag(bag, [topic]):
        msg = m.decode()
        assert m.t_ns == msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        stamps.append(m.t_ns)
        vals.append([getattr(v, c) for v in (msg.angular_velocity, msg.linear_acceleration)
                     for c in "xyz"])
    return np.array(stamps), np.array(vals)


@pytest.mark.parametrize("kwargs,match", [
    ({"packet_drop_prob": 1.0}, "packet_drop_prob"), ({"columns_per_packet": 0}, "columns"),
    ({"column_window": (-1, 5)}, "column_window"), ({"imu_time_offset": 2.0}, "offset"),
    ({"acc_range_g": 1.0}, "acc_range_g"), ({"knock_rate_hz": -1.0}, "knock_rate_hz"),
    ({"noise_return_range_m": (3.0, 1.0)}, "noise_return_range_m"),
    ({"mixed_pixel_frac": 1.5}, "mixed_pixel_frac")])
def test_config_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SensorEffects(**kwargs)


def test_defaults_are_off_and_realistic_turns_everything_on():
    assert SensorEffects().enabled() == [] and not SensorEffects().lidar_enabled
    assert SensorEffects.realistic().enabled() == [
        "dropped_packets", "imu_time_offset", "imu_saturation", "knocks", "noise_returns",
        "mixed_pixels", "moving_objects"]                      # a column window is a setting
    with pytest.raises(ValueError, match="column_window"):
        small(effects=SensorEffects(column_window=(0, 512)))


def test_effects_off_time_offset_shifts_only_the_imu_stamps(tmp_path):
    off = generate_sequence(small(effects=SensorEffects()), tmp_path / "off", progress=False)
    late = generate_sequence(small(effects=SensorEffects(imu_time_offset=0.005)), tmp_path / "late",
                             progress=False)
    # effects off: exactly the plain simulator's clouds and IMU (the sequence as before effects)
    cfg = small()
    spec, traj, _, _ = build(cfg)
    plain = LidarSimulator(cfg.ouster, cfg.noise)
    for k, m in enumerate(read_bag(off.bag, ["/ouster/points"])):
        expected = plain.scan(spec.scene, traj, k * 0.1, rng=np.random.default_rng([5, 0x5CA7, k]))
        got = pointcloud2_to_array(m.decode())
        assert all(np.array_equal(got[f], expected[f]) for f in expected.dtype.names)
    imu = simulate_imu(traj, 0.3 + 2 / 200.0, cfg.imu, seed=5)
    t_off, v_off = imu_messages(off.bag)
    assert np.array_equal(t_off, cfg.start_time_ns + np.round(imu.t * 1e9).astype(np.int64))
    assert np.array_equal(v_off, np.hstack([imu.gyro, imu.acc]))
    # 5 ms late: same readings, stamps + 5 ms; clouds and ground truth unchanged
    t_late, v_late = imu_messages(late.bag)
    assert np.array_equal(t_late, t_off + 5_000_000) and np.array_equal(v_late, v_off)
    assert late.ground_truth.read_bytes() == off.ground_truth.read_bytes()
    assert [m.raw for m in read_bag(late.bag, ["/ouster/points"])] == \
        [m.raw for m in read_bag(off.bag, ["/ouster/points"])]
    desc = json.loads(late.description.read_text())
    assert desc["effects"]["enabled"] == ["imu_time_offset"]
    assert desc["effects"]["imu_time_offset"]["seconds"] == 0.005
    assert "stamped t + 0.005" in desc["stamps"]["imu"]


def test_early_imu_stamps_start_with_the_recording():
    cfg = small()
    _, traj, _, _ = build(cfg)
    _, plain, _, _ = recorded_imu(traj, 0.3, cfg.imu, 5, 1000, SensorEffects())
    imu, stamps, gyro, acc = recorded_imu(traj, 0.3, cfg.imu, 5, 1000, SensorEffects(
        imu_time_offset=-0.0125))                             # 2.5 samples early at 200 Hz
    assert stamps[0] == 1000 + 2_500_000 and stamps[-1] >= plain[-1]   # covers the same span
    assert np.array_equal(acc, imu.acc[3:]) and np.array_equal(gyro, imu.gyro[3:])


def test_saturation_clips_and_knocks_reach_the_limits():
    eff = SensorEffects(imu_saturation=True, knock_rate_hz=1.0)
    cfg = small(duration=6.0, profile="smooth", imu=ImuConfig(rate_hz=100.0), effects=eff)
    _, traj, _, frames = build(cfg)
    knocks = frames["knocks"]
    assert isinstance(traj, KnockedBody) and len(knocks.t) >= 2 and knocks.t.min() >= 1.5
    imu, _, gyro, acc = recorded_imu(traj, 6.0, cfg.imu, 5, 0, eff)
    a_lim, g_lim = 2.0 * STANDARD_G, np.radians(250.0)
    assert np.abs(acc).max() <= a_lim and np.abs(gyro).max() <= g_lim
    at_limit = np.abs(acc).max(axis=1) == a_lim
    assert at_limit.sum() >= 2 and np.array_equal(acc[~at_limit], imu.acc[~at_limit])
    near = np.abs(imu.t[:, None] - knocks.t[None, :]).min(axis=1) < 4 * eff.knock_width_s
    assert np.all(near[at_limit])                                # clipped during knocks only
    assert np.abs(imu.acc).max() > 1.2 * a_lim                   # the knocks exceed the range
    # the smooth motion alone stays inside the ranges
    g0, a0 = ideal_imu(traj.base, imu.t)
    assert np.abs(a0).max() < 0.8 * a_lim and np.abs(g0).max() < 0.5 * g_lim
    # knocks are motion: p, v, a and R, omega consistent; back to the base motion between knocks
    t = np.linspace(knocks.t[0] - 0.1, knocks.t[0] + 0.1, 4001)
    h, s, b = t[1] - t[0], traj.state(t), traj.base.state(t)
    assert np.abs(np.gradient(s.p, h, axis=0) - s.v)[2:-2].max() < 1e-4
    assert np.abs(np.gradient(s.v, h, axis=0) - s.a)[2:-2].max() < 5e-3 * np.abs(s.a).max()
    W = np.einsum("nji,njk->nik", s.R, np.gradient(s.R, h, axis=0))
    omega = np.stack([W[:, 2, 1], W[:, 0, 2], W[:, 1, 0]], axis=1)
    assert np.abs(omega - s.omega)[2:-2].max() < 1e-3 * np.abs(s.omega).max()
    assert np.abs(s.p - b.p).max() <= knocks.d + 1e-12
    far = np.abs(t - knocks.t[0]) > 8 * eff.knock_width_s
    assert np.allclose(s.p[far], b.p[far], atol=1e-9) and np.allclose(s.R[far], b.R[far], atol=1e-9)


def test_realistic_cli_sequence_is_recorded_and_deterministic(tmp_path):
    args = ["corridor", "--duration", "0.3", "--rows", "16", "--cols", "512", "--seed", "2",
            "--effects", "realistic", "--column-window", "0", "255", "--knocks", "2", "--quiet"]
    for name in ("a", "b"):
        assert main([*args, "--out", str(tmp_path / name)]) == 0
    assert (tmp_path / "a/bag/bag.mcap").read_bytes() == (tmp_path / "b/bag/bag.mcap").read_bytes()
    desc = json.loads((tmp_path / "a/sequence.json").read_text())
    fx = desc["effects"]
    assert fx["enabled"] == ["dropped_packets", "column_window", "imu_time_offset",
                             "imu_saturation", "knocks", "noise_returns", "mixed_pixels", "moving_objects"]
    assert fx["moving_objects"]["pedestrians_per_min"] == 12.0   # 0.3 s: all in the static start, none placed
    assert fx["dropped_packets"]["prob_per_packet"] == 0.005
    assert fx["dropped_packets"]["columns_per_packet"] == 16
    assert fx["column_window"] == {"first": 0, "last": 255, "columns": 256, "of": 512}
    assert fx["imu_saturation"]["acc_range_g"] == 2.0 and fx["knocks"]["knock_rate_hz"] == 2.0
    assert "events" in fx["knocks"] and desc["config"]["effects"]["mixed_pixel_frac"] == 0.3
    meta = json.loads((tmp_path / "a/metadata.json").read_text())
    assert meta["data_format"]["column_window"] == [0, 255]
    for m in read_bag(tmp_path / "a/bag", ["/ouster/points"]):
        cloud = pointcloud2_to_array(m.decode())
        assert np.all(cloud["range"][:, 256:] == 0) and np.count_nonzero(cloud["range"][:, :256])
    with pytest.raises(SystemExit):
        main(["corridor", "--drop-packets", "1.5", "--out", str(tmp_path / "x"), "--quiet"])


def test_velodyne_sequence_with_effects(tmp_path):
    eff = SensorEffects.realistic(packet_drop_prob=0.1)
    cfg = small(sensor="velodyne", velodyne=VelodyneConfig(rings=16, cols=720), effects=eff)
    info = generate_sequence(cfg, tmp_path / "v", progress=False)
    fx = json.loads(info.description.read_text())["effects"]
    assert fx["dropped_packets"]["firings_per_packet"] == 24
    assert fx["dropped_packets"]["packets_per_scan"] == 30
    stamps, vals = imu_messages(info.bag, "/imu/data")
    assert stamps[0] == cfg.start_time_ns + 5_000_000            # 5 ms late
    assert np.abs(vals[:, 3:]).max() <= 2.0 * STANDARD_G
