"""The bench runner on a tiny synthetic sequence: frame handling (with an oracle odometry), event
order, sequence.json parsing, outputs (TUM, timing CSV, summary JSON, plot, markdown table)."""
from __future__ import annotations

import csv
import importlib.util
import json
import logging

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from coin_lio.eval import bench_runner
from coin_lio.eval.odometry_api import ODOMETRY_FACTORIES, SensorSetup
from coin_lio.eval.sequence import (ImuSample, Scan, iter_sensor_events, load_sequence,
                                    parse_transform, read_gt_frame, read_lidar_imu_extrinsic)
from coin_lio.eval.synthetic import SyntheticRig, write_sequence
from coin_lio.eval.trajectory import read_tum

SECONDS = 3.0


@pytest.fixture(scope="module")
def seq_dir(tmp_path_factory):
    return write_sequence(tmp_path_factory.mktemp("seq") / "synthetic_room", seconds=SECONDS)


class OracleOdometry:
    """Returns the true T_world_lidar at the scan end, in a world frame of its own; checks that the
    runner ran each scan as soon as the IMU covered its end on the odometry's clock (`time_offset`,
    as coin_lio's, which moves it; the last scan of the bag may run uncovered) and the extrinsic
    it was given."""

    name = "oracle"

    def __init__(self, setup: SensorSetup, organized: bool = False) -> None:
        self.rig = SyntheticRig()
        np.testing.assert_allclose(setup.T_lidar_imu, np.linalg.inv(self.rig.T_imu_lidar), atol=1e-12)
        self.world = np.eye(4)
        self.world[:3, :3] = Rotation.from_rotvec([0.3, -0.2, 1.0]).as_matrix()
        self.world[:3, 3] = [10.0, -5.0, 2.0]
        self.imu_times: list[float] = []
        self.time_offset = 0.0                   # s: IMU stamps minus it are on the LiDAR clock
        self.uncovered = 0                       # scans run before the IMU covered their end
        if organized:
            self.add_organized_scan = self._add_organized_scan

    def add_imu(self, t_s, gyro, acc):
        assert not self.imu_times or t_s > self.imu_times[-1]
        self.imu_times.append(t_s)

    def add_scan(self, t_s, points, point_times):
        assert points.ndim == 2 and points.shape[1] == 3 and points.dtype == np.float64
        assert len(points) == len(point_times) and np.all(np.any(points != 0, axis=1))
        end = float(point_times.max())
        assert t_s <= point_times.min() + 1e-6
        last = [t - self.time_offset for t in self.imu_times[-2:]]
        if last[-1] >= end - 1e-9:                                        # covered: and not later
            assert len(last) < 2 or last[-2] < end
        else:
            self.uncovered += 1
        return self.world @ self.rig.lidar_pose(end)[0]

    def _add_organized_scan(self, t_s, cloud, point_times):
        assert cloud.shape == point_times.shape == (self.rig.rows, self.rig.cols)
        valid = (cloud["x"] != 0) | (cloud["y"] != 0) | (cloud["z"] != 0)
        return self.world @ self.rig.lidar_pose(float(point_times[valid].max()))[0]


@pytest.fixture
def oracles(monkeypatch):
    monkeypatch.setitem(ODOMETRY_FACTORIES, "oracle", OracleOdometry)
    monkeypatch.setitem(ODOMETRY_FACTORIES, "oracle_organized",
                        lambda setup, **kw: OracleOdometry(setup, organized=True))


def test_oracle_comes_out_equal_to_ground_truth(seq_dir, tmp_path, oracles):
    res = bench_runner.run_sequence(seq_dir, ["oracle", "oracle_organized"], tmp_path, progress=False)
    rig = SyntheticRig()
    for method in ("oracle", "oracle_organized"):
        s = res[method]
        assert s["n_poses"] == s["timing"]["n_scans"] == int(SECONDS * 10)
        assert s["metrics"]["ape_m"]["rmse"] < 2e-3      # GT at 100 Hz vs scan ends: < 0.4 ms apart
        est = read_tum(tmp_path / "synthetic_room" / f"{method}.tum")
        # Written in the GT frames (IMU body, GT world) at each scan's last point time.
        np.testing.assert_allclose(est.poses(), rig.imu_pose(est.timestamps), atol=1e-6)
        np.testing.assert_allclose(np.diff(est.timestamps), 0.1, atol=1e-6)


def test_a_scan_waits_until_the_imu_covers_it_on_the_odometry_clock(seq_dir, monkeypatch):
    """An odometry whose IMU clock runs 25 ms behind (its time_offset, moved halfway through as
    coin_lio's online estimate moves it): each scan runs once an IMU reading at or after its end
    on that clock has been fed, not before and not later (the node's ScanGate)."""
    made = []

    def late(setup, **kw):
        made.append(OracleOdometry(setup))
        made[-1].time_offset = 0.025
        original = made[-1].add_scan

        def add_scan(t_s, points, point_times):
            out = original(t_s, points, point_times)
            made[-1].time_offset = 0.012 if t_s > 1.7e9 + 1.0 else 0.025
            return out
        made[-1].add_scan = add_scan
        return made[-1]

    monkeypatch.setitem(ODOMETRY_FACTORIES, "late", late)
    res = bench_runner.run_sequence(seq_dir, ["late"], progress=False)
    assert res["late"]["n_poses"] == int(SECONDS * 10)
    assert made[0].uncovered <= 1                                         # the bag's last scan


def test_interleaved_feed_gives_every_method_its_own_sequential_run(seq_dir, monkeypatch):
    """Interleaved (the default), every method sees every IMU reading and every scan under its own
    IMU clock, as when run alone: the same poses and scan count as the sequential run; the method
    that gets a scan first rotates from scan to scan; an unavailable method stays a row."""
    calls = []

    def recording(name, offset):
        def make(setup, **kw):
            odom = OracleOdometry(setup)
            odom.time_offset = offset
            inner = odom.add_scan

            def add_scan(t_s, points, point_times):
                calls.append((t_s, name))
                return inner(t_s, points, point_times)
            odom.add_scan = add_scan
            return odom
        return make

    def missing(setup, **kw):
        raise ImportError("No module named 'not_installed'")

    for name, offset in (("a", 0.0), ("b", 0.02), ("c", 0.0)):
        monkeypatch.setitem(ODOMETRY_FACTORIES, name, recording(name, offset))
    monkeypatch.setitem(ODOMETRY_FACTORIES, "missing", missing)
    together = bench_runner.run_sequence(seq_dir, ["a", "b", "missing", "c"], progress=False)
    firsts = [name for i, (t, name) in enumerate(calls) if i == 0 or calls[i - 1][0] != t]
    calls.clear()
    alone = bench_runner.run_sequence(seq_dir, ["a", "b", "c"], progress=False, interleave=False)
    assert together["missing"]["error"].startswith("unavailable")
    for m in "abc":
        assert together[m]["n_poses"] == alone[m]["n_poses"] == int(SECONDS * 10)
        assert together[m]["metrics"]["ape_m"]["rmse"] == pytest.approx(alone[m]["metrics"]["ape_m"]["rmse"], abs=1e-12)
    assert len(set(firsts[:6])) >= 2                   # not always the same method first


def test_runner_outputs_and_table(seq_dir, tmp_path, oracles, capsys):
    methods = ["oracle"] + [m for m in ("kiss_icp", "rko_lio") if importlib.util.find_spec(m)]
    options = {"kiss_icp": {"mapping.voxel_size": 0.5}, "rko_lio": {"voxel_size": 0.5}}
    rows = bench_runner.run_table([seq_dir], methods, tmp_path, options, rpe_delta=1.0, progress=False)
    out = tmp_path / "synthetic_room"
    assert [r["method"] for r in rows] == methods
    for r in rows:
        assert r["error"] == "" and r["n_poses"] == r["n_scans"] == 30
        assert r["ape_rmse_m"] < 0.15 and r["rtf"] > 0 and r["median_ms"] <= r["p95_ms"] <= r["max_ms"]
        assert r["distance_m"] == pytest.approx(2.04, abs=0.05)
        with (out / f"{r['method']}_timing.csv").open() as fh:
            timing = list(csv.DictReader(fh))
        assert len(timing) == 30 and all(int(t["pose"]) == 1 for t in timing)
    summary = json.loads((out / "summary.json").read_text(),
                         parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    assert set(summary) == set(methods)
    assert summary["oracle"]["metrics"]["kitti"]["t_err_pct"] is None   # 2 m: no 100 m segment
    assert summary["oracle"]["gt_frame"] == "imu" and summary["oracle"]["cloud_frame"] == "os_lidar"
    assert (out / "trajectories.png").stat().st_size > 10_000
    text = capsys.readouterr().out
    assert "| sequence | method |" in text and "RPE 1 m [%]" in text
    assert "[synthetic_room] oracle: APE" in text


def test_unavailable_method_is_a_row_not_a_crash(seq_dir, monkeypatch):
    def missing(setup, **kw):
        raise ImportError("No module named 'not_installed'")

    monkeypatch.setitem(ODOMETRY_FACTORIES, "missing", missing)
    rows = bench_runner.run_table([seq_dir], ["missing"], progress=False)
    assert rows[0]["error"].startswith("unavailable") and rows[0]["ape_rmse_m"] is None
    with pytest.raises(KeyError, match="unknown odometry"):
        bench_runner.run_sequence(seq_dir, ["no_such_method"], progress=False)


def test_cli_parses_sets_and_runs(seq_dir, tmp_path, oracles):
    assert bench_runner._parse_sets(["kiss_icp.mapping.voxel_size=0.5", "rko_lio.base=lidar"]) == {
        "kiss_icp": {"mapping.voxel_size": 0.5}, "rko_lio": {"base": "lidar"}}
    assert bench_runner.main([str(seq_dir), "--methods", "oracle", "--out", str(tmp_path),
                              "--no-progress"]) == 0
    assert (tmp_path / "synthetic_room" / "oracle.tum").exists()


def test_events_come_in_time_order_even_if_the_bag_is_not(tmp_path):
    from suite_tools.pointcloud2 import OUSTER_ORIGINAL_DTYPE
    from suite_tools.bag_io import BagWriter, make_imu, make_pointcloud2

    t0 = 1_700_000_000_000_000_000
    cloud = np.zeros((2, 4), OUSTER_ORIGINAL_DTYPE)
    cloud["x"] = 1.0
    cloud["t"] = np.arange(4, dtype=np.uint32)[None, :] * 25_000_000   # last column at +75 ms
    cloud["x"][:, 3] = np.nan                                         # ... invalid: end is +50 ms
    with BagWriter(tmp_path / "bag") as w:
        w.write("/ouster/points", t0, make_pointcloud2(cloud, t0, "os_lidar"))  # at scan START
        for k in range(12):
            t = t0 + k * 10_000_000
            w.write("/ouster/imu", t, make_imu(t, "os_imu", [0, 0, 0], [0, 0, 9.81]))
    (tmp_path / "ground_truth.tum").write_text(f"{t0 * 1e-9:.9f} 0 0 0 0 0 0 1\n")
    info = load_sequence(tmp_path)
    events = list(iter_sensor_events(info))
    kinds = ["S" if isinstance(e, Scan) else "I" for e in events]
    assert kinds == ["I"] * 6 + ["S"] + ["I"] * 6                     # IMU at exactly +50 ms first
    scan = events[6]
    assert scan.end == pytest.approx(t0 * 1e-9 + 0.05) and scan.valid.sum() == 6
    pts, times = scan.valid_points()
    assert pts.shape == (6, 3) and times.max() == pytest.approx(scan.end)
    assert all(isinstance(e, ImuSample) for e in events if not isinstance(e, Scan))


def _yaw180(t_mm):
    T = np.eye(4)
    T[:3, :3] = Rotation.from_euler("z", 180, degrees=True).as_matrix()
    T[:3, 3] = t_mm
    return T


def test_extrinsic_and_gt_frame_from_sequence_json_variants(caplog):
    T = _yaw180([0.1, 0.2, 0.3])
    assert np.allclose(read_lidar_imu_extrinsic({"extrinsics": {"T_lidar_imu": T.tolist()}}, None)[0], T)
    assert np.allclose(read_lidar_imu_extrinsic({"T_imu_lidar": T.reshape(-1).tolist()}, None)[0],
                       np.linalg.inv(T))
    # coin_lio.sim writes both; the cloud-frame one wins (T_lidar_imu there is os_lidar's).
    both = {"extrinsics": {"T_imu_cloud": T.tolist(), "T_lidar_imu": np.eye(4).tolist()}}
    assert np.allclose(read_lidar_imu_extrinsic(both, None)[0], np.linalg.inv(T))
    q = Rotation.from_matrix(T[:3, :3]).as_quat()
    as_dict = {"extrinsics": {"T_lidar_imu": {"translation": [0.1, 0.2, 0.3], "quat_xyzw": list(q)}}}
    assert np.allclose(read_lidar_imu_extrinsic(as_dict, None)[0], T)
    assert np.allclose(parse_transform({"xyz": {"x": 1, "y": 2, "z": 3},
                                        "rotation": {"x": 0, "y": 0, "z": 0, "w": 1}})[:3, 3], [1, 2, 3])
    # Ouster metadata: inv(lidar_to_sensor) @ imu_to_sensor, mm -> m (the 180-degree yaw survives).
    meta = {"lidar_to_sensor_transform": _yaw180([0, 0, 36.18]).reshape(-1).tolist(),
            "imu_to_sensor_transform": np.array([[1, 0, 0, 6.253], [0, 1, 0, -11.775], [0, 0, 1, 7.645],
                                                 [0, 0, 0, 1]]).reshape(-1).tolist()}
    T_li, source = read_lidar_imu_extrinsic({}, meta)                 # points in os_lidar
    assert source.startswith("metadata.json")
    np.testing.assert_allclose(T_li[:3, 3], [-0.006253, 0.011775, 0.007645 - 0.03618], atol=1e-9)
    np.testing.assert_allclose(T_li[:3, :3], np.diag([-1.0, -1.0, 1.0]), atol=1e-12)
    T_si, _ = read_lidar_imu_extrinsic({}, meta, cloud_frame="os_sensor")  # points in os_sensor
    np.testing.assert_allclose(T_si[:3, 3], [0.006253, -0.011775, 0.007645], atol=1e-9)
    np.testing.assert_allclose(T_si[:3, :3], np.eye(3), atol=1e-12)
    # GT of os_sensor, points in os_lidar: inv(lidar_to_sensor).
    _, T_lg, _ = read_gt_frame({"gt_frame": "os_sensor"}, T_li, meta, "os_lidar")
    np.testing.assert_allclose(T_lg[:3, 3], [0, 0, -0.03618], atol=1e-9)
    with caplog.at_level(logging.WARNING):
        T_id, source = read_lidar_imu_extrinsic({}, None)
    assert np.allclose(T_id, np.eye(4)) and "identity" in source and "extrinsic" in caplog.text
    # Which frame the GT describes.
    seq = {"frames": {"lidar": "os_lidar", "imu": "os_imu", "ground_truth": "os_imu"}}
    assert read_gt_frame(seq, T)[0] == "os_imu" and np.allclose(read_gt_frame(seq, T)[1], T)
    assert np.allclose(read_gt_frame({"ground_truth": {"frame": "lidar"}}, T)[1], np.eye(4))
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        frame, T_lg, note = read_gt_frame({}, T)
    assert frame == "lidar" and np.allclose(T_lg, np.eye(4)) and "assum" in caplog.text


@pytest.mark.parametrize("sensor, cloud_frame, gt_frame", [
    ("ouster", "os_lidar", "imu"), ("ouster", "os_sensor", "lidar"), ("velodyne", None, "imu")])
def test_oracle_on_the_simulators_own_sequences(tmp_path, monkeypatch, sensor, cloud_frame, gt_frame):
    """coin_lio.sim's sequence.json (extrinsics.T_imu_cloud, ground_truth.frame): the frame chain
    through the runner is exact for the simulator's cloud frames and GT frames."""
    sim_seq = pytest.importorskip("coin_lio.sim.sequence", reason="simulator not available")
    from coin_lio.sim.lidar_model import OusterConfig, VelodyneConfig

    cfg = sim_seq.SequenceConfig(scene="corridor", duration=3.5, sensor=sensor, gt_frame=gt_frame,
                                 ouster=OusterConfig(rows=16, cols=512, cloud_frame=cloud_frame or
                                                     "os_lidar"), velodyne=VelodyneConfig())
    sim_seq.generate_sequence(cfg, tmp_path / "seq", progress=False)
    _, traj, _, frames = sim_seq.build(cfg)
    T_imu_cloud, t0 = frames["T_body"]["cloud"], cfg.start_time_ns * 1e-9

    class SimOracle:
        name = "sim_oracle"

        def __init__(self, setup, **kw):
            np.testing.assert_allclose(setup.T_lidar_imu, np.linalg.inv(T_imu_cloud), atol=1e-9)

        def add_imu(self, t_s, gyro, acc):
            pass

        def add_scan(self, t_s, points, point_times):
            R, p = traj.pose(point_times.max() - t0)
            T = np.eye(4)
            T[:3, :3], T[:3, 3] = R[0], p[0]
            return T @ T_imu_cloud

    monkeypatch.setitem(ODOMETRY_FACTORIES, "sim_oracle", SimOracle)
    res = bench_runner.run_sequence(tmp_path / "seq", ["sim_oracle"], progress=False)["sim_oracle"]
    assert res["n_poses"] == res["timing"]["n_scans"] == 35
    assert res["metrics"]["ape_m"]["rmse"] < 1e-3    # GT at scan starts, poses at scan ends
