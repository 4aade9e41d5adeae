"""TransformStamped <-> 4x4 pose: the conversions /tf and /tf_static are built from."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

pytest.importorskip("geometry_msgs.msg")

from builtin_interfaces.msg import Time  # noqa: E402

from suite_tools.tf_broadcast import matrix, transform  # noqa: E402


def test_transform_round_trip_and_frames():
    rng = np.random.default_rng(3)
    for _ in range(20):
        T = np.eye(4)
        T[:3, :3] = Rotation.random(random_state=rng.integers(1 << 30)).as_matrix()
        T[:3, 3] = rng.normal(0, 10, 3)
        msg = transform(Time(sec=5, nanosec=7), T, "odom", "base_link")
        assert (msg.header.frame_id, msg.child_frame_id, msg.header.stamp.nanosec) == ("odom", "base_link", 7)
        np.testing.assert_allclose(matrix(msg), T, atol=1e-12)
    # the pose of the child in the parent: a point at the child's origin is at T's translation
    T = np.eye(4)
    T[:3, 3] = [1.0, 2.0, 3.0]
    t = transform(Time(), T, "a", "b").transform.translation
    assert (t.x, t.y, t.z) == (1.0, 2.0, 3.0)


def test_sensor_frames_chain():
    from suite_tools.tf_broadcast import sensor_frames

    T_bi, T_il = np.eye(4), np.eye(4)
    T_bi[:3, 3], T_il[:3, 3] = [1.0, 0.0, 0.0], [0.0, 2.0, 0.0]
    chain, note = sensor_frames("base_link", "os_imu", "os_lidar", T_bi, T_il)
    assert [(p, c) for p, c, _ in chain] == [("base_link", "os_imu"), ("os_imu", "os_lidar")] and not note
    # the IMU is the base: the LiDAR hangs off it; a non-identity base_to_imu is reported
    chain, note = sensor_frames("os_imu", "os_imu", "os_lidar", T_bi, T_il)
    assert [(p, c) for p, c, _ in chain] == [("os_imu", "os_lidar")] and "base_to_imu" in note
    np.testing.assert_allclose(chain[0][2], T_il)
    # no IMU frame id: the LiDAR hangs off the base through base_to_imu
    chain, _ = sensor_frames("base_link", "", "os_lidar", T_bi, T_il)
    assert [(p, c) for p, c, _ in chain] == [("base_link", "os_lidar")]
    np.testing.assert_allclose(chain[0][2], T_bi @ T_il)
    assert sensor_frames("base_link", "", "", T_bi, T_il)[0] == []
