"""Sensor metadata -> extrinsic (coin_lio.io.sensor_metadata), pure: on the real Ouster metadata
files of ouster-sdk's test data (legacy and nested layouts, malformed ones) and on hand-built ones
with an IMU mounted rotated, so that an extrinsic applied in the wrong direction cannot pass."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from coin_lio.io import ouster_real
from coin_lio.io.sensor_metadata import (MetadataError, choose_extrinsic, cloud_frame_of,
                                         extrinsic_from_metadata, image_model_problem, load_metadata,
                                         parse_metadata)
from coin_lio.sim.lidar_model import OusterConfig


def _real_metadata_dir() -> Path:
    d = ouster_real.default_data_dir() / "sdk" / "tests" / "metadata"
    if not d.is_dir():
        pytest.skip(f"real Ouster metadata absent ({d}): `make setup` fetches ouster-sdk's test data")
    return d


def _mat(values) -> np.ndarray:
    return np.asarray(values, float).reshape(4, 4)


def test_real_metadata_files_legacy_and_nested():
    d = _real_metadata_dir()
    files = sorted(d.glob("*.json"))
    assert len(files) >= 20
    by_layout = {"legacy": 0, "nested": 0, "no image model": 0}
    for f in files:
        raw = json.loads(f.read_text())
        if "lidar_to_sensor_transform" not in raw and "lidar_intrinsics" not in raw:
            with pytest.raises(MetadataError, match="data_format"):     # Ouster Studio's reduced config
                load_metadata(f)
            continue
        meta = load_metadata(f)
        nested = "lidar_intrinsics" in raw
        by_layout["nested" if nested else "legacy"] += 1
        if image_model_problem(meta):         # FW 1.12/1.13: no data format, the transforms still count
            assert "data_format" in image_model_problem(meta) and f.name.startswith("1_1")
            by_layout["no image model"] += 1
        # the numbers straight from the file, by hand: mm, row-major, poses in os_sensor
        l2s = _mat(raw["lidar_intrinsics"]["lidar_to_sensor_transform"] if nested else raw["lidar_to_sensor_transform"])
        i2s = _mat(raw["imu_intrinsics"]["imu_to_sensor_transform"] if nested else raw["imu_to_sensor_transform"])
        T_lidar_imu = np.linalg.inv(l2s) @ i2s                       # the formula
        T_lidar_imu[:3, 3] *= 1e-3
        T = extrinsic_from_metadata(meta, "os_lidar")
        np.testing.assert_allclose(T, np.linalg.inv(T_lidar_imu), atol=1e-12, err_msg=f.name)
        T_sensor = extrinsic_from_metadata(meta, "os_sensor")
        np.testing.assert_allclose(T_sensor[:3, 3], -i2s[:3, :3].T @ i2s[:3, 3] * 1e-3, atol=1e-12)
        # every unit here: LiDAR yawed 180 deg in the sensor, IMU axes parallel to the sensor's
        np.testing.assert_allclose(T[:3, :3], np.diag([-1.0, -1.0, 1.0]), atol=1e-12, err_msg=f.name)
    assert by_layout["legacy"] >= 10 and by_layout["nested"] >= 8 and by_layout["no image model"] >= 4
    # FW 3.0.1: other offsets, both layouts agree; t = R_si^T (t_sl - t_si), R_si = I:
    # (0 + 2.441, 0 + 9.725, 38.195 - 7.533) mm (the README's other units: (-6.253, 11.775, 28.535))
    a, b = (extrinsic_from_metadata(load_metadata(d / n), "os_lidar")
            for n in ("3_0_1_os-122246000293-128.json", "3_0_1_os-122246000293-128_legacy.json"))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a[:3, 3], [0.002441, 0.009725, 0.030662], atol=1e-12)


def test_malformed_real_metadata_is_a_metadata_error_never_a_crash():
    d = _real_metadata_dir() / "malformed"
    outcomes = {}
    for f in sorted(d.glob("*.json")):
        try:
            meta = load_metadata(f)
        except MetadataError as exc:
            outcomes[f.name] = f"error: {exc}"
            continue
        extrinsic_from_metadata(meta, "os_lidar")       # what parses gives at least the extrinsic
        outcomes[f.name] = image_model_problem(meta) or "ok"
    assert len(outcomes) >= 8
    assert "beam_altitude_angles" in outcomes["complete_but_all_zeros_legacy.json"]
    assert "columns_per_frame" in outcomes["incomplete_data_format_legacy.json"]
    assert outcomes["incomplete_no_sensor_info_nonlegacy.json"] == "ok"


@pytest.mark.parametrize("text, match", [
    ("{not json", "not JSON"), ("[1, 2]", "not a JSON object"), ("{}", "usable Ouster metadata"),
    (json.dumps({"altitudes_deg_by_ring": "x"}), "altitudes_deg_by_ring")])
def test_bad_metadata_text(text, match):
    with pytest.raises(MetadataError, match=match):
        parse_metadata(text)


def _rotated_meta(layout: str, rpy=(90.0, 0.0, 90.0)) -> dict:
    return OusterConfig(rows=16, cols=512, imu_mount_rpy_deg=rpy).metadata().to_dict(layout)


@pytest.mark.parametrize("layout", ["legacy", "nested"])
def test_rotated_imu_mount_direction_by_hand(layout):
    """IMU turned 90 deg about z (yaw) in the sensor: x_imu = y_sensor. A point 1 m along os_lidar +x
    is at (-1, 0, 0.03618) in os_sensor (LiDAR yawed 180, 36.18 mm up), i.e. (0, 1, .) in the IMU."""
    meta = parse_metadata(json.dumps(_rotated_meta(layout, (0.0, 0.0, 90.0))))
    T = extrinsic_from_metadata(meta, "os_lidar")
    p_sensor = np.array([-1.0, 0.0, 0.03618])
    t_si = np.array([6.253, -11.775, 7.645]) * 1e-3
    p_imu_by_hand = np.array([p_sensor[1] - t_si[1], -(p_sensor[0] - t_si[0]), p_sensor[2] - t_si[2]])
    np.testing.assert_allclose(T @ [1.0, 0.0, 0.0, 1.0], [*p_imu_by_hand, 1.0], atol=1e-12)
    np.testing.assert_allclose(p_imu_by_hand[:2], [0.011775, 1.006253], atol=1e-12)
    # clouds in os_sensor: the same point given in sensor coordinates lands on the same IMU point
    Ts = extrinsic_from_metadata(meta, "os_sensor")
    np.testing.assert_allclose(Ts @ [*p_sensor, 1.0], [*p_imu_by_hand, 1.0], atol=1e-12)
    # the inverse (a direction mix-up) is a different rotation: it cannot pass for this one
    assert np.linalg.norm(Rotation.from_matrix(np.linalg.inv(T)[:3, :3] @ T[:3, :3].T).as_rotvec()) > 3.0


def test_simulator_mount_and_metadata_agree():
    """The test mount (roll 90 + yaw 90: a 120-degree turn, not a self-inverse 180) gives the
    simulator's LiDAR placement back, in both layouts."""
    cfg = OusterConfig(rows=16, cols=512, imu_mount_rpy_deg=(90.0, 0.0, 90.0))
    T_sim = cfg.metadata().T_imu_lidar()
    for layout in ("legacy", "nested"):
        T = extrinsic_from_metadata(parse_metadata(_rotated_meta(layout)), "os_lidar")
        np.testing.assert_allclose(T, T_sim, atol=1e-12)
    angle = np.degrees(np.linalg.norm(Rotation.from_matrix(T_sim[:3, :3]).as_rotvec()))
    assert not np.allclose(T_sim[:3, :3], T_sim[:3, :3].T)              # not self-inverse
    unrotated = OusterConfig(rows=16, cols=512).metadata().T_imu_lidar()
    wrong = np.degrees(np.linalg.norm(Rotation.from_matrix(unrotated[:3, :3].T @ T_sim[:3, :3]).as_rotvec()))
    assert wrong == pytest.approx(120.0) and angle > 90


def test_cloud_frame_names():
    assert cloud_frame_of("os_lidar") == "os_lidar" and cloud_frame_of("/os_sensor") == "os_sensor"
    assert cloud_frame_of("robot1/os_lidar") == "os_lidar"
    for other in ("velodyne", "os_lidar_1", "lidar", "", "os_imu"):
        assert cloud_frame_of(other) is None


def test_choose_extrinsic_rules():
    meta = parse_metadata(_rotated_meta("nested"))
    T_cfg = np.eye(4)
    T_meta = extrinsic_from_metadata(meta, "os_lidar")
    c = choose_extrinsic("auto", meta, "os_lidar", T_cfg, "os_imu")
    assert c.source == "metadata" and np.allclose(c.T_imu_cloud, T_meta) and "os_lidar" in c.reason
    assert choose_extrinsic("auto", meta, "ns/os_sensor", T_cfg).source == "metadata"   # IMU frame unknown yet
    for args, why in [(("config", meta, "os_lidar"), "source is config"),
                      (("auto", None, "os_lidar"), "no sensor metadata"),
                      (("metadata", meta, "velodyne"), "neither os_lidar nor os_sensor"),
                      (("auto", {"beam_altitude_angles": [1, 0]}, "os_lidar"), "no sensor metadata")]:
        c = choose_extrinsic(*args, T_cfg)
        assert c.source == "config" and np.array_equal(c.T_imu_cloud, T_cfg) and why in c.reason
    # an IMU that is not the Ouster's: auto keeps the config, metadata forces the metadata's
    assert choose_extrinsic("auto", meta, "os_lidar", T_cfg, "xsens_imu").source == "config"
    assert choose_extrinsic("metadata", meta, "os_lidar", T_cfg, "xsens_imu").source == "metadata"
    bent = dict(meta, lidar_intrinsics={"lidar_to_sensor_transform": [2.0] + [0.0] * 15})
    with pytest.raises(MetadataError, match="rigid"):
        parse_metadata(bent)
    assert choose_extrinsic("auto", bent, "os_lidar", T_cfg).source == "config"
    with pytest.raises(ValueError):
        choose_extrinsic("sometimes", meta, "os_lidar", T_cfg)
