"""TF without tf2_ros: tf2_msgs/TFMessage on /tf and /tf_static with plain publishers.

tf2_ros's TransformBroadcaster publishes TFMessage on `/tf` (reliable, volatile, depth 100) and
its StaticTransformBroadcaster on `/tf_static` (reliable, transient local, depth 1), every static
transform sent so far in ONE message, so that a listener that joins late gets all of them. These
two classes do exactly that, so TF works where tf2_ros is not installed (the Python wheels) and
is the same on the wire where it is (robots). The topic names are absolute, as tf2_ros's are:
a namespaced robot remaps them (`-r /tf:=tf`) if it keeps one TF tree per namespace.

    from suite_tools.tf_broadcast import StaticTransformBroadcaster, TransformBroadcaster, transform
    tf = TransformBroadcaster(node)
    tf.send([transform(stamp, T_odom_base, "odom", "base_link")])   # T: (4, 4) child pose in parent
"""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np
from scipy.spatial.transform import Rotation

TF_TOPIC = "/tf"
TF_STATIC_TOPIC = "/tf_static"


def transform(stamp: Any, T_parent_child: np.ndarray, parent: str, child: str):
    """geometry_msgs/TransformStamped: the pose of `child` in `parent` (4x4, m), at `stamp`
    (a builtin_interfaces/Time)."""
    from geometry_msgs.msg import TransformStamped

    T = np.asarray(T_parent_child, float)
    msg = TransformStamped()
    msg.header.stamp, msg.header.frame_id, msg.child_frame_id = stamp, parent, child
    tr, r = msg.transform.translation, msg.transform.rotation
    tr.x, tr.y, tr.z = map(float, T[:3, 3])
    r.x, r.y, r.z, r.w = map(float, Rotation.from_matrix(T[:3, :3]).as_quat())
    return msg


def matrix(msg) -> np.ndarray:
    """(4, 4) pose of the child in the parent from a geometry_msgs/Transform(Stamped)."""
    t = getattr(msg, "transform", msg)
    T = np.eye(4)
    T[:3, :3] = Rotation.from_quat([t.rotation.x, t.rotation.y, t.rotation.z, t.rotation.w]).as_matrix()
    T[:3, 3] = [t.translation.x, t.translation.y, t.translation.z]
    return T


def sensor_frames(base: str, imu: str, lidar: str, T_base_imu: np.ndarray,
                  T_imu_lidar: np.ndarray) -> tuple[list[tuple[str, str, np.ndarray]], str]:
    """The static chain base -> IMU -> LiDAR as (parent, child, T (4x4)) and a note ('' if none).

    `imu` / `lidar` are the frame ids of the input messages: an empty one, or one equal to `base`,
    is skipped (the LiDAR then hangs off `base` with T_base_imu @ T_imu_lidar).
    """
    chain, note, parent = [], "", base
    if imu and imu != base:
        chain.append((base, imu, np.asarray(T_base_imu, float)))
        parent = imu
    elif not np.allclose(T_base_imu, np.eye(4)):
        note = (f"the IMU messages' frame '{imu}' is base_frame or empty: base_to_imu is not "
                "published (and should be the identity)")
    if lidar and lidar not in (parent, base):
        T = T_imu_lidar if parent == imu else T_base_imu @ T_imu_lidar
        chain.append((parent, lidar, np.asarray(T, float)))
    return chain, note


class TransformBroadcaster:
    """Dynamic transforms on /tf (tf2_ros.TransformBroadcaster's QoS: reliable, depth 100)."""

    def __init__(self, node: Any, depth: int = 100) -> None:
        from rclpy.qos import QoSProfile
        from tf2_msgs.msg import TFMessage

        self._msg = TFMessage
        self.pub = node.create_publisher(TFMessage, TF_TOPIC, QoSProfile(depth=depth))

    def send(self, transforms: Iterable[Any]) -> None:
        self.pub.publish(self._msg(transforms=list(transforms)))


class StaticTransformBroadcaster:
    """Static transforms on /tf_static, latched (transient local, depth 1): each send publishes
    every static transform so far, the latest per child frame (tf2_ros's behaviour)."""

    def __init__(self, node: Any) -> None:
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
        from tf2_msgs.msg import TFMessage

        self._msg = TFMessage
        qos = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL,
                         reliability=ReliabilityPolicy.RELIABLE)
        self.pub = node.create_publisher(TFMessage, TF_STATIC_TOPIC, qos)
        self.by_child: dict[str, Any] = {}

    def send(self, transforms: Iterable[Any]) -> None:
        for t in transforms:
            self.by_child[t.child_frame_id] = t
        self.pub.publish(self._msg(transforms=list(self.by_child.values())))


def tf_available() -> bool:
    """True when tf2_msgs imports (a ROS install, or the stand-in that scripts/setup.sh builds)."""
    try:
        import tf2_msgs.msg  # noqa: F401
    except ImportError:
        return False
    return True
