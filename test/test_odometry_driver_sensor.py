"""The one IMU-cover rule (odometry_driver.ScanGate) and the sensor metadata arriving in the driver
(pure core, no graph): geometric-only until it comes (said once), then the photometric part and
the metadata's extrinsic; an extrinsic change after the filter started resets it, with the reason."""
from __future__ import annotations

import numpy as np

from coin_lio.config import LioConfig
from coin_lio.io.scan import LidarScan
from coin_lio.io.sensor_metadata import extrinsic_from_metadata
from coin_lio.odometry_driver import ImuReading, OdometryDriver, ScanGate
from coin_lio.sim.lidar_model import OusterConfig
from test_lio_core import G, _room


def _scan(pts: np.ndarray, stamp: float, frame: str = "os_lidar", period: float = 0.1) -> LidarScan:
    """An unorganised (1, N) scan starting at `stamp` (s), point times over one period."""
    cloud = np.zeros((1, len(pts)), dtype=[("x", "f4"), ("y", "f4"), ("z", "f4")])
    for i, c in enumerate("xyz"):
        cloud[c][0] = pts[:, i]
    times = stamp + np.linspace(0.0, period, len(pts), endpoint=False)[None, :]
    return LidarScan(int(round(stamp * 1e9)), cloud, times, np.ones(cloud.shape, bool), "t", frame)


def test_scan_gate_waits_for_the_imu_bounded_and_drops_the_oldest():
    pts = np.ones((3, 3))
    a, b, c = _scan(pts, 10.0), _scan(pts, 10.1), _scan(pts, 10.2)     # ends 10.0667, .1667, .2667
    gate = ScanGate(max_wait=0.1, max_waiting=2)
    assert gate.add_scan(a) == 0 and gate.add_scan(b) == 0
    assert gate.pop_ready(now=5.0) is None                    # no IMU yet
    assert abs(gate.wait_left(5.04) - 0.06) < 1e-9
    gate.add_imu(10.05)
    assert gate.pop_ready(now=5.05) is None                   # 10.05 < end of a
    gate.add_imu(10.07)
    assert gate.pop_ready(now=5.06) is a                      # covered
    assert gate.pop_ready(now=5.07) is None                   # b waits from 5.07 on ...
    assert gate.pop_ready(now=5.169) is None
    assert gate.pop_ready(now=5.1701) is b                    # ... at most max_wait
    assert gate.add_scan(c) == 0 and gate.add_scan(a) == 0 and gate.add_scan(b) == 1
    assert list(gate.scans) == [a, b]                         # the OLDEST waiting (c) was dropped
    assert gate.pop_ready(flush=True) is a and gate.pop_ready(flush=True) is b    # input ended
    assert gate.pop_ready(flush=True) is None and gate.wait_left(0.0) == 0.0
    # a looped bag: the IMU jumps back; an early scan of the new loop waits for the new IMU
    gate = ScanGate()
    gate.add_imu(20.0)
    gate.add_imu(10.0)
    gate.add_imu(float("nan"))                                # ignored
    gate.add_scan(a)
    assert gate.pop_ready() is None and gate.last_imu_t == 10.0
    gate.clear()
    assert not gate.scans and gate.last_imu_t is None


def _drive(driver: OdometryDriver, pts: np.ndarray, t_from: float, n: int, frame: str = "os_lidar") -> list:
    out = []
    for k in range(n):                                        # 10 Hz scans, 100 Hz static IMU
        t0 = t_from + k * 0.1
        for j in range(1, 11):
            driver.add_imu(ImuReading(t0 + j * 0.01, np.zeros(3), np.array([0.0, 0.0, G]), "os_imu"))
        out.append(driver.process(_scan(pts, t0, frame)))
    return out


def test_metadata_arrives_late_geometric_until_then_and_reset_on_extrinsic_change():
    cfg = LioConfig()
    cfg.photometric.enabled = False                         # unorganised scans: geometry only here
    pts = _room(np.random.default_rng(3), n=3000) - [0.0, 0.0, 1.5]
    driver = OdometryDriver(cfg, metadata_source="topic /ouster/metadata")
    assert not [e for e in driver.drain_events() if e[0] == "photometric_off"]   # waiting, not off
    res = _drive(driver, pts, 100.0, 20)
    events = driver.drain_events()
    waits = [m for k, m in events if k == "metadata_wait"]
    assert len(waits) == 1 and "topic /ouster/metadata" in waits[0] and "geometric-only" in waits[0]
    assert driver.pipeline.initialised and res[-1].status in ("tracked", "mapped")
    np.testing.assert_array_equal(driver.pipeline.T_imu_lidar, np.eye(4))       # the config's
    meta = OusterConfig(rows=16, cols=512, imu_mount_rpy_deg=(90.0, 0.0, 90.0)).metadata().to_dict("nested")
    driver.set_metadata(meta)
    _drive(driver, pts, 102.0, 3)
    events = dict(driver.drain_events())
    assert "extrinsic from the sensor metadata for clouds in os_lidar" in events["sensor_setup"]
    assert "extrinsic changed" in events["extrinsic_reset"] and driver.counts["resets"] == 1
    np.testing.assert_allclose(driver.pipeline.T_imu_lidar, extrinsic_from_metadata(meta, "os_lidar"))
    res = _drive(driver, pts, 102.3, 20)                     # tracks again with the new extrinsic
    assert res[-1].status == "tracked"
    np.testing.assert_allclose(driver.pipeline.state.rot_il, extrinsic_from_metadata(meta, "os_lidar")[:3, :3])
    driver.set_metadata(dict(meta))                          # the latched copy again: nothing new
    _drive(driver, pts, 104.3, 2)
    assert not {"sensor_setup", "extrinsic_reset"} & {k for k, _ in driver.drain_events()}
    assert driver.counts["resets"] == 1


def test_metadata_switches_the_photometric_part_on_and_partial_metadata_only_the_extrinsic():
    meta = OusterConfig(rows=16, cols=512).metadata().to_dict("legacy")
    driver = OdometryDriver(LioConfig(), metadata_source="the bag's /ouster/metadata")
    assert driver.pipeline.photo is None
    driver.set_metadata(meta)
    assert driver.pipeline.photo is not None and driver.pipeline.photo.metadata is meta
    # FW 1.12-like: transforms, but no data format -> no image model; the extrinsic still comes
    old = {k: v for k, v in meta.items() if k != "data_format"}
    driver = OdometryDriver(LioConfig(), metadata_source="topic /ouster/metadata")
    driver.set_metadata(old)
    driver.process(_scan(np.ones((20, 3)) * 3.0, 100.0, "os_sensor"))
    events = dict(driver.drain_events())
    assert driver.pipeline.photo is None and "data_format" in events["metadata_partial"]
    assert "clouds in os_sensor" in events["sensor_setup"]
    np.testing.assert_allclose(driver.pipeline.T_imu_lidar, extrinsic_from_metadata(old, "os_sensor"))


def test_clouds_in_another_frame_keep_the_config_extrinsic_and_say_why_once():
    meta = OusterConfig(rows=16, cols=512, imu_mount_rpy_deg=(0.0, 0.0, 90.0)).metadata().to_dict("legacy")
    cfg = LioConfig()
    cfg.photometric.enabled = False
    driver = OdometryDriver(cfg)
    driver.set_metadata(meta)
    for k in range(3):
        driver.process(_scan(np.ones((20, 3)) * 3.0, 100.0 + 0.1 * k, "velodyne"))
    reasons = [m for kind, m in driver.drain_events() if kind == "sensor_setup"]
    assert len(reasons) == 1 and "'velodyne' is neither os_lidar nor os_sensor" in reasons[0]
    np.testing.assert_array_equal(driver.pipeline.T_imu_lidar, np.eye(4))
