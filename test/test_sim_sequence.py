"""Sequence writer and CLI: bag round trip, ground truth, determinism per seed."""
from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from suite_tools.pointcloud2 import pointcloud2_to_array
from coin_lio.sim import ImuConfig, OusterConfig, OusterMetadata, SequenceConfig, generate_sequence
from coin_lio.sim.cli import main
from coin_lio.sim.imu import simulate_imu
from coin_lio.sim.sequence import build
from suite_tools.bag_io import bag_topics, is_latched, read_bag


def small(**kw) -> SequenceConfig:
    base = dict(scene="corridor", duration=1.0, profile="dynamic", seed=7,
                ouster=OusterConfig(rows=32, cols=512), imu=ImuConfig(rate_hz=200.0))
    base.update(kw)
    return SequenceConfig(**base)


def test_bag_round_trip(tmp_path):
    cfg = small()
    info = generate_sequence(cfg, tmp_path / "seq", progress=False)
    assert bag_topics(info.bag) == {"/ouster/points": ("sensor_msgs/msg/PointCloud2", 10),
                                    "/ouster/imu": ("sensor_msgs/msg/Imu", info.n_imu),
                                    "/ouster/metadata": ("std_msgs/msg/String", 1)}
    spec, traj, sim, _ = build(cfg)
    imu = simulate_imu(traj, 10 * 0.1 + 2 / 200.0, cfg.imu, seed=cfg.seed)
    t0, k, i, last = cfg.start_time_ns, 0, 0, 0
    for m in read_bag(info.bag):
        assert m.t_ns >= last
        last = m.t_ns
        msg = m.decode()
        if m.topic == "/ouster/metadata":           # first, latched as ouster-ros offers it
            assert m.t_ns == t0 and k == i == 0 and is_latched(m.qos) and m.qos[0].depth == 1
            assert json.loads(msg.data) == json.loads(json.dumps(sim.meta.to_dict("legacy")))
            continue
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        if m.topic == "/ouster/points":
            assert stamp == t0 + k * 100_000_000 and m.t_ns == stamp + 100_000_000
            assert msg.header.frame_id == "os_lidar" and not msg.is_dense
            rng = np.random.default_rng([7, 0x5CA7, k])     # the per-scan stream of the writer
            expected = sim.scan(spec.scene, traj, k * 0.1, rng=rng)
            got = pointcloud2_to_array(msg)
            assert got.dtype.names == expected.dtype.names and got.shape == expected.shape
            assert all(np.array_equal(got[f], expected[f]) for f in expected.dtype.names)
            k += 1
        else:
            assert stamp == m.t_ns == t0 + round(imu.t[i] * 1e9)
            assert msg.header.frame_id == "os_imu"
            av, la = msg.angular_velocity, msg.linear_acceleration
            assert [av.x, av.y, av.z] == imu.gyro[i].tolist()
            assert [la.x, la.y, la.z] == imu.acc[i].tolist()
            i += 1
    assert k == 10 and i == len(imu.t) == info.n_imu
    # ground truth: IMU pose at the scan stamps
    gt = np.loadtxt(info.ground_truth)
    assert gt.shape == (10, 8)
    assert np.allclose(gt[:, 0] - gt[0, 0], np.arange(10) * 0.1)
    r, p = traj.pose(np.arange(10) * 0.1)
    assert np.allclose(gt[:, 1:4], p, atol=1e-9)
    assert np.allclose(Rotation.from_quat(gt[:, 4:]).as_matrix(), r, atol=1e-8)
    desc = json.loads(info.description.read_text())
    assert desc["ground_truth"]["frame"] == "os_imu" and desc["frames"]["cloud"] == "os_lidar"
    assert desc["coin_lio"]["u_shift"] == 256
    assert np.allclose(np.asarray(desc["extrinsics"]["T_imu_cloud"])[:3, :3], np.diag([-1, -1, 1]))
    meta = OusterMetadata.read(info.metadata)
    assert meta.pixel_shift_by_row == sim.meta.pixel_shift_by_row and meta.lidar_mode == "512x10"


def test_same_seed_same_bytes_other_seed_other_data(tmp_path):
    a = generate_sequence(small(), tmp_path / "a", progress=False)
    b = generate_sequence(small(), tmp_path / "b", progress=False)
    c = generate_sequence(small(seed=8), tmp_path / "c", progress=False)
    for name in ("bag/bag.mcap", "bag/metadata.yaml", "ground_truth.tum", "metadata.json"):
        assert (a.out_dir / name).read_bytes() == (b.out_dir / name).read_bytes(), name
    desc = [json.loads(x.description.read_text()) for x in (a, b)]
    for d in desc:
        d.pop("generation")
    assert desc[0] == desc[1]
    clouds = [[m.raw for m in read_bag(x.bag, ["/ouster/points"])] for x in (a, c)]
    assert all(ra != rc for ra, rc in zip(clouds[0], clouds[1]))
    gt = [(x.out_dir / "ground_truth.tum").read_bytes() for x in (a, c)]
    assert gt[0] != gt[1]
    with pytest.raises(FileExistsError):
        generate_sequence(small(), tmp_path / "a", progress=False)
    generate_sequence(small(), tmp_path / "a", progress=False, overwrite=True)


def test_cli_velodyne_destaggered_options(tmp_path, capsys):
    out = tmp_path / "v"
    assert main(["field", "--duration", "0.5", "--sensor", "velodyne", "--rows", "16", "--cols",
                 "720", "--imu-rate", "200", "--out", str(out), "--quiet",
                 "--gt-frame", "lidar"]) == 0
    assert "5 scans" in capsys.readouterr().out
    topics = bag_topics(out / "bag")
    assert topics["/velodyne_points"][1] == 5 and topics["/imu/data"][1] >= 100
    msg = next(read_bag(out / "bag", ["/velodyne_points"])).decode()
    assert msg.height == 1 and msg.point_step == 22 and msg.header.frame_id == "velodyne"
    assert [f.name for f in msg.fields] == ["x", "y", "z", "intensity", "ring", "time"]
    assert json.loads((out / "sequence.json").read_text())["ground_truth"]["frame"] == "velodyne"
    out2 = tmp_path / "o"
    assert main(["tunnel", "--duration", "0.3", "--rows", "32", "--cols", "512", "--destaggered",
                 "--cloud-frame", "os_sensor", "--metadata-layout", "nested", "--out", str(out2),
                 "--quiet"]) == 0
    desc = json.loads((out2 / "sequence.json").read_text())
    assert desc["coin_lio"] == {**desc["coin_lio"], "u_shift": 0, "destaggered": True}
    assert "lidar_data_format" in json.loads((out2 / "metadata.json").read_text())
    with pytest.raises(SystemExit) as exc:
        main(["tunnel", "--rows", "100", "--out", str(tmp_path / "x"), "--quiet"])
    assert exc.value.code == 2
    assert "rows must be" in capsys.readouterr().err


@pytest.mark.parametrize("kwargs,match", [
    ({"scene": "moon"}, "scene"), ({"duration": 0.0}, "duration"), ({"sensor": "livox"}, "sensor"),
    ({"gt_frame": "sensor", "sensor": "velodyne"}, "gt_frame")])
def test_sequence_config_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SequenceConfig(**kwargs)


@pytest.mark.parametrize("cloud_frame", ["os_lidar", "os_sensor"])
def test_described_frames_put_the_points_on_the_tunnel_walls(tmp_path, cloud_frame):
    """sequence.json's T_imu_cloud + the body trajectory + per-point t land every point of a
    moving, turning sweep on the tunnel (radius 3 m about y = 0, z = 1.2; floor z = 0)."""
    from coin_lio.sim import LidarNoiseConfig, TrajectoryConfig

    cfg = small(scene="tunnel", duration=2.0, noise=LidarNoiseConfig.noiseless(),
                ouster=OusterConfig(rows=32, cols=512, cloud_frame=cloud_frame),
                trajectory=TrajectoryConfig(profile="dynamic", static_duration=1.0,
                                            ramp_duration=0.5))
    info = generate_sequence(cfg, tmp_path / "s", progress=False)
    desc = json.loads(info.description.read_text())
    T_imu_cloud = np.asarray(desc["extrinsics"]["T_imu_cloud"])
    _, traj, _, _ = build(cfg)
    msgs = list(read_bag(info.bag, ["/ouster/points"]))
    msg = msgs[-1].decode()
    assert msg.header.frame_id == cloud_frame
    cloud = pointcloud2_to_array(msg).reshape(-1)
    cloud = cloud[cloud["range"] > 0]
    t = (msg.header.stamp.sec * 1e9 + msg.header.stamp.nanosec - cfg.start_time_ns
         + cloud["t"].astype(np.float64)) * 1e-9
    r_wb, p_wb = traj.pose(t)
    assert np.linalg.norm(traj.state(np.array([t.min()])).v) > 0.5   # it is moving
    pts = np.stack([cloud["x"], cloud["y"], cloud["z"]], -1).astype(np.float64)
    p_imu = pts @ T_imu_cloud[:3, :3].T + T_imu_cloud[:3, 3]
    world = np.einsum("nij,nj->ni", r_wb, p_imu) + p_wb
    wall = np.abs(np.hypot(world[:, 1], world[:, 2] - 1.2) - 3.0)
    assert np.minimum(wall, np.abs(world[:, 2])).max() < 2e-3


def test_rotated_imu_mount_changes_only_the_imu_side(tmp_path):
    """An IMU turned on the rig (roll 90 + yaw 90): the same LiDAR clouds, IMU readings and ground
    truth in the turned axes, and the metadata (in the bag too) says so."""
    imu = ImuConfig.noiseless(200.0)
    a = generate_sequence(small(duration=0.5, imu=imu), tmp_path / "a", progress=False)
    turned = OusterConfig(rows=32, cols=512, imu_mount_rpy_deg=(90.0, 0.0, 90.0))
    b = generate_sequence(small(duration=0.5, imu=imu, ouster=turned), tmp_path / "b", progress=False)
    R = turned.imu_mount_rotation()
    np.testing.assert_allclose(R, [[0, 0, 1], [1, 0, 0], [0, 1, 0]], atol=1e-15)   # x_imu = y_sensor ...
    raw = {k: {t: list(read_bag(x.bag, [t])) for t in ("/ouster/points", "/ouster/imu")}
           for k, x in (("a", a), ("b", b))}
    assert [m.raw for m in raw["a"]["/ouster/points"]] == [m.raw for m in raw["b"]["/ouster/points"]]
    for ma, mb in zip(raw["a"]["/ouster/imu"], raw["b"]["/ouster/imu"]):
        ia, ib = ma.decode(), mb.decode()
        for f in ("angular_velocity", "linear_acceleration"):
            va, vb = (np.array([getattr(getattr(m, f), c) for c in "xyz"]) for m in (ia, ib))
            np.testing.assert_allclose(vb, R.T @ va, atol=1e-9)
    ib = raw["b"]["/ouster/imu"][0].decode().linear_acceleration
    assert abs(ib.y - 9.81) < 0.2                       # at rest gravity is on the IMU's y axis
    ga, gb = np.loadtxt(a.ground_truth), np.loadtxt(b.ground_truth)
    np.testing.assert_allclose(gb[:, 1:4], ga[:, 1:4], atol=1e-12)
    Ra, Rb = (Rotation.from_quat(g[:, 4:]).as_matrix() for g in (ga, gb))
    np.testing.assert_allclose(Rb, Ra @ R, atol=1e-9)
    meta = json.loads(next(read_bag(b.bag, ["/ouster/metadata"])).decode().data)
    np.testing.assert_allclose(np.reshape(meta["imu_to_sensor_transform"], (4, 4))[:3, :3], R, atol=1e-12)
    assert meta == json.loads(b.metadata.read_text())
    desc = json.loads(b.description.read_text())
    assert desc["topics"]["metadata"] == "/ouster/metadata"
    assert desc["config"]["ouster"]["imu_mount_rpy_deg"] == [90.0, 0.0, 90.0]
