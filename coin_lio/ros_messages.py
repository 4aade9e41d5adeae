"""ROS message <-> core conversions of coin_lio (message types are imported lazily, in the
functions that build messages).

Inputs are validated here and turned into the core's plain types -- the ONE path from a message to
the core: coin_lio_node (rclpy messages), the offline runner and the evaluation (rosbags-decoded
bag messages, which have the same attribute layout) all call imu_from_msg, read_scan /
scan_from_msg and metadata_from_msg. Outputs are built from the core's results. Tested on
hand-built messages without a running graph.
"""
from __future__ import annotations

import array

import numpy as np
from scipy.spatial.transform import Rotation

from coin_lio.config import PreprocessConfig
from suite_tools.pointcloud2 import pointcloud2_to_array
from coin_lio.io.scan import LidarScan, scan_from_cloud
from coin_lio.io.sensor_metadata import parse_metadata
from coin_lio.odometry_driver import ImuReading
from coin_lio.pipeline import ScanResult


def stamp_ns(header) -> int:
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def to_stamp(t_s: float):
    from builtin_interfaces.msg import Time

    ns = int(round(t_s * 1e9))
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def imu_from_msg(msg) -> ImuReading:
    """sensor_msgs/Imu -> ImuReading (stamp s, gyro rad/s, acc m/s^2, frame id)."""
    av, la = msg.angular_velocity, msg.linear_acceleration
    return ImuReading(stamp_ns(msg.header) * 1e-9, np.array([av.x, av.y, av.z], float),
                      np.array([la.x, la.y, la.z], float), str(msg.header.frame_id))


def scan_from_msg(msg, time_field: str = "auto", time_scale: float = 0.0) -> LidarScan:
    """PointCloud2 -> LidarScan; raises PointCloudFormatError (a ValueError) with the reason."""
    return scan_from_cloud(pointcloud2_to_array(msg), stamp_ns(msg.header), time_field, time_scale,
                           str(msg.header.frame_id))


def read_scan(msg, preprocess: PreprocessConfig) -> LidarScan:
    """A cloud as the node and the offline runner read it: with lio.preprocess's time_field and
    time_scale (the per-point time unit)."""
    return scan_from_msg(msg, preprocess.time_field or "auto", preprocess.time_scale)


def metadata_from_msg(msg) -> dict:
    """std_msgs/String holding the sensor metadata JSON (/ouster/metadata) -> the checked dict;
    MetadataError (a ValueError) with the reason."""
    return parse_metadata(msg.data)


def pose_to_matrix(xyz_qxyzw) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = Rotation.from_quat(np.asarray(xyz_qxyzw[3:], float)).as_matrix()
    T[:3, 3] = xyz_qxyzw[:3]
    return T


def _fill_pose(pose, T: np.ndarray) -> None:
    q = Rotation.from_matrix(T[:3, :3]).as_quat()
    pose.position.x, pose.position.y, pose.position.z = map(float, T[:3, 3])
    pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w = map(float, q)


def odometry_msg(res: ScanResult, T_odom_base: np.ndarray, T_base_imu: np.ndarray,
                 odom_frame: str, base_frame: str, gyro: np.ndarray | None = None):
    """nav_msgs/Odometry of base_frame in odom_frame; twist in base_frame; covariance from P."""
    from nav_msgs.msg import Odometry

    msg = Odometry()
    msg.header.stamp = to_stamp(res.t_end)
    msg.header.frame_id, msg.child_frame_id = odom_frame, base_frame
    _fill_pose(msg.pose.pose, T_odom_base)
    x = res.state
    R_b = T_odom_base[:3, :3]
    v = R_b.T @ x.vel
    w = T_base_imu[:3, :3] @ ((gyro if gyro is not None else np.zeros(3)) - x.bg)
    msg.twist.twist.linear.x, msg.twist.twist.linear.y, msg.twist.twist.linear.z = map(float, v)
    msg.twist.twist.angular.x, msg.twist.twist.angular.y, msg.twist.twist.angular.z = map(float, w)
    if res.covariance is not None:  # [x y z rx ry rz], the order of the core's error state
        msg.pose.covariance = np.asarray(res.covariance, float).reshape(-1).tolist()
    return msg


def pose_stamped(res: ScanResult, T: np.ndarray, frame: str):
    from geometry_msgs.msg import PoseStamped

    msg = PoseStamped()
    msg.header.stamp, msg.header.frame_id = to_stamp(res.t_end), frame
    _fill_pose(msg.pose, T)
    return msg


def transform_msg(t_end: float, T: np.ndarray, parent: str, child: str):
    """geometry_msgs/TransformStamped: the pose T (4x4) of `child` in `parent` at t_end (s)."""
    from suite_tools.tf_broadcast import transform

    return transform(to_stamp(t_end), T, parent, child)


def xyz_cloud_msg(points: np.ndarray, t_end: float, frame: str):
    """sensor_msgs/PointCloud2 with float32 x, y, z (unorganised)."""
    from sensor_msgs.msg import PointCloud2, PointField

    pts = np.ascontiguousarray(points, dtype=np.float32).reshape(-1, 3)
    msg = PointCloud2()
    msg.header.stamp, msg.header.frame_id = to_stamp(t_end), frame
    msg.height, msg.width = 1, len(pts)
    msg.fields = [PointField(name=n, offset=4 * i, datatype=PointField.FLOAT32, count=1)
                  for i, n in enumerate("xyz")]
    msg.is_bigendian, msg.point_step, msg.row_step, msg.is_dense = False, 12, 12 * len(pts), True
    msg.data = array.array("B", pts.tobytes())
    return msg


def degeneracy_msg(res: ScanResult, frame: str, dropped: int, processing_ms: float):
    """coin_lio_suite/DegeneracyReport from a scan result (zeros when no update ran)."""
    from coin_lio_suite.msg import DegeneracyReport
    from geometry_msgs.msg import Vector3

    msg = DegeneracyReport()
    msg.header.stamp, msg.header.frame_id = to_stamp(res.t_end), frame
    d = res.degeneracy
    if d is not None:
        msg.eigenvalues = d.eigenvalues.astype(float).tolist()
        msg.eigenvectors = d.eigenvectors.astype(float).reshape(-1).tolist()
        msg.weak = [bool(b) for b in d.weak]
        msg.weak_translation_directions = [Vector3(x=float(v[0]), y=float(v[1]), z=float(v[2]))
                                           for v in d.weak_translation]
        rot = [d.eigenvectors[:3, i] for i in range(6) if d.weak[i] and np.linalg.norm(d.eigenvectors[:3, i]) > 0.7]
        msg.weak_rotation_directions = [Vector3(x=float(v[0]), y=float(v[1]), z=float(v[2]))
                                        for v in (r / np.linalg.norm(r) for r in rot)]
    msg.num_geometric_residuals = int(res.num_residuals)
    msg.num_photometric_residuals = int(getattr(res, "num_photometric", 0))
    msg.num_tracked_patches = int(getattr(res, "num_tracked_patches", 0))
    msg.num_new_patches = int(getattr(res, "num_new_patches", 0))
    msg.num_dropped_scans = int(dropped)
    msg.processing_time_ms = float(processing_ms)
    return msg


def image_msg(pixels: np.ndarray, t_end: float, frame: str):
    """sensor_msgs/Image from (H, W) uint8 (mono8) or (H, W, 3) uint8 (rgb8), stamped t_end (s)."""
    from suite_tools.image_msgs import numpy_to_image

    px = np.asarray(pixels, dtype=np.uint8)
    return numpy_to_image(px, "mono8" if px.ndim == 2 else "rgb8", frame, to_stamp(t_end))
