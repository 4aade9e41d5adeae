"""coin_lio's message conversions on hand-built messages (no graph)."""
import numpy as np
import pytest

pytest.importorskip("rclpy")
from sensor_msgs.msg import Imu  # noqa: E402

from coin_lio import ros_messages as rm  # noqa: E402
from coin_lio.core.degeneracy import Degeneracy  # noqa: E402
from coin_lio.core.state import NavState  # noqa: E402
from suite_tools.pointcloud2 import OUSTER_ORIGINAL_DTYPE, PointCloudFormatError, pointcloud2_to_array  # noqa: E402
from coin_lio.pipeline import ScanResult  # noqa: E402


def _ouster_msg(rows=4, cols=8, stamp=(12, 500_000_000)):
    from sensor_msgs.msg import PointCloud2, PointField

    from suite_tools.pointcloud2 import array_to_pointcloud2_parts

    a = np.zeros((rows, cols), OUSTER_ORIGINAL_DTYPE)
    a["x"] = np.arange(rows * cols).reshape(rows, cols) + 1.0
    a["t"] = np.arange(cols, dtype=np.uint32) * 10_000_000
    fields, step, h, w, data = array_to_pointcloud2_parts(a)
    m = PointCloud2(height=h, width=w, point_step=step, row_step=step * w, is_dense=False)
    m.header.stamp.sec, m.header.stamp.nanosec = stamp
    m.fields = [PointField(name=f.name, offset=f.offset, datatype=f.datatype, count=f.count) for f in fields]
    m.data = data.tobytes()
    return m, a


def test_imu_from_msg():
    m = Imu()
    m.header.stamp.sec, m.header.stamp.nanosec = 3, 250_000_000
    m.angular_velocity.z, m.linear_acceleration.z = 0.5, 9.8
    r = rm.imu_from_msg(m)
    assert r.t == pytest.approx(3.25) and r.gyro[2] == 0.5 and r.acc[2] == 9.8


def test_scan_from_ouster_msg_times_and_validity():
    m, a = _ouster_msg()
    scan = rm.scan_from_msg(m)
    assert scan.organized and scan.cloud.shape == (4, 8) and scan.time_field == "t"
    np.testing.assert_allclose(scan.times[0], 12.5 + np.arange(8) * 0.01)
    assert scan.valid.all()
    assert scan.end == pytest.approx(12.57)
    m.fields = [f for f in m.fields if f.name != "x"]
    with pytest.raises(PointCloudFormatError, match="x"):
        rm.scan_from_msg(m)


def test_output_messages():
    x = NavState(pos=np.array([1.0, 2.0, 3.0]), vel=np.array([1.0, 0.0, 0.0]))
    d = Degeneracy(np.arange(6.0), np.eye(6), np.array([False, False, False, True, False, False]),
                   np.array([[1.0, 0.0, 0.0]]), np.zeros(3), np.eye(3))
    res = ScanResult(7.5, "tracked", x.lidar_pose(), x, d, num_residuals=42,
                     points_world=np.ones((5, 3)), covariance=np.eye(6) * 0.01)
    T = x.imu_pose()
    odom = rm.odometry_msg(res, T, np.eye(4), "odom", "base_link", gyro=np.array([0, 0, 0.2]))
    assert (odom.header.frame_id, odom.child_frame_id) == ("odom", "base_link")
    assert (odom.pose.pose.position.x, odom.pose.pose.position.z) == (1.0, 3.0)
    assert odom.header.stamp.sec == 7 and odom.header.stamp.nanosec == 500_000_000
    assert odom.twist.twist.linear.x == 1.0 and odom.twist.twist.angular.z == pytest.approx(0.2)
    assert odom.pose.covariance[0] == pytest.approx(0.01) and odom.pose.covariance[35] == pytest.approx(0.01)
    cloud = rm.xyz_cloud_msg(res.points_world, 7.5, "odom")
    np.testing.assert_array_equal(pointcloud2_to_array(cloud)["x"], np.ones((1, 5), np.float32))
    rep = rm.degeneracy_msg(res, "odom", dropped=3, processing_ms=12.0)
    assert list(rep.weak) == [False, False, False, True, False, False]
    assert len(rep.weak_translation_directions) == 1 and rep.weak_translation_directions[0].x == 1.0
    assert rep.num_geometric_residuals == 42 and rep.num_dropped_scans == 3
    tf = rm.transform_msg(7.5, T, "odom", "base_link")
    assert tf.transform.translation.y == 2.0 and tf.transform.rotation.w == 1.0
    assert (tf.header.frame_id, tf.child_frame_id, tf.header.stamp.nanosec) == ("odom", "base_link", 500_000_000)
