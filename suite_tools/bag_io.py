"""ROS 2 bag reading and writing (MCAP and sqlite3) with rosbags: no ROS install needed.

The suite's own message types (msg/*.msg) are registered in the typestore, so bags written here
carry them and players/readers on robots see the same type hashes.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from suite_tools.ros_env import PACKAGE_NAME, share_dir, source_root

_TYPESTORE = None


def suite_typestore():
    """The ROS 2 Kilted typestore with coin_lio_suite/msg/* registered (cached)."""
    global _TYPESTORE
    if _TYPESTORE is None:
        store = get_typestore(Stores.ROS2_KILTED)
        msg_dir = next((d / "msg" for d in (source_root(), share_dir()) if (d / "msg").is_dir()), None)
        types: dict = {}
        for path in sorted(msg_dir.glob("*.msg")) if msg_dir else ():
            types.update(get_types_from_msg(path.read_text(), f"{PACKAGE_NAME}/msg/{path.stem}"))
        store.register(types)
        _TYPESTORE = store
    return _TYPESTORE


def msg_class(msgtype: str):
    """The rosbags dataclass for a type name like 'sensor_msgs/msg/Imu'."""
    try:
        return suite_typestore().types[msgtype]
    except KeyError:
        raise KeyError(f"unknown message type '{msgtype}'") from None


def stamp(t_ns: int):
    """builtin_interfaces/Time from integer nanoseconds."""
    return msg_class("builtin_interfaces/msg/Time")(sec=int(t_ns // 1_000_000_000),
                                                     nanosec=int(t_ns % 1_000_000_000))


def header(t_ns: int, frame_id: str):
    return msg_class("std_msgs/msg/Header")(stamp=stamp(t_ns), frame_id=frame_id)


def make_pointcloud2(points: np.ndarray, t_ns: int, frame_id: str, is_dense: bool = True):
    """sensor_msgs/PointCloud2 (rosbags) from a structured array of shape (H, W) or (N,)."""
    from suite_tools.pointcloud2 import array_to_pointcloud2_parts

    fields, point_step, height, width, data = array_to_pointcloud2_parts(points)
    field_cls = msg_class("sensor_msgs/msg/PointField")
    return msg_class("sensor_msgs/msg/PointCloud2")(
        header=header(t_ns, frame_id), height=height, width=width,
        fields=[field_cls(name=f.name, offset=f.offset, datatype=f.datatype, count=f.count) for f in fields],
        is_bigendian=False, point_step=point_step, row_step=point_step * width, data=data,
        is_dense=is_dense)


def make_imu(t_ns: int, frame_id: str, gyro: Sequence[float], acc: Sequence[float],
             orientation: Sequence[float] | None = None):
    """sensor_msgs/Imu (rosbags): gyro in rad/s, acc in m/s^2, orientation xyzw or unknown."""
    quat = msg_class("geometry_msgs/msg/Quaternion")
    vec = msg_class("geometry_msgs/msg/Vector3")
    cov_unknown = np.zeros(9)
    if orientation is None:
        orient, orient_cov = quat(x=0.0, y=0.0, z=0.0, w=1.0), np.r_[-1.0, np.zeros(8)]
    else:
        orient, orient_cov = quat(*map(float, orientation)), cov_unknown
    return msg_class("sensor_msgs/msg/Imu")(
        header=header(t_ns, frame_id), orientation=orient, orientation_covariance=orient_cov,
        angular_velocity=vec(*map(float, gyro)), angular_velocity_covariance=cov_unknown.copy(),
        linear_acceleration=vec(*map(float, acc)), linear_acceleration_covariance=cov_unknown.copy())


def latched_qos(depth: int = 1) -> list:
    """The offered QoS of a latched topic (reliable, transient local, keep last `depth`) as
    rosbag2 records it, e.g. ouster-ros' /ouster/metadata; for BagWriter.write(qos=...)."""
    from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime

    never = QosTime(sec=9223372036, nsec=854775807)      # rosbag2's "infinite"
    return [Qos(QosHistory.KEEP_LAST, depth, QosReliability.RELIABLE, QosDurability.TRANSIENT_LOCAL,
                never, never, QosLiveliness.AUTOMATIC, never, False)]


def is_latched(qos: Sequence) -> bool:
    """True when every recorded publisher offered transient local durability (ros2 bag play then
    replays the topic latched)."""
    from rosbags.interfaces import QosDurability

    return bool(qos) and all(q.durability == QosDurability.TRANSIENT_LOCAL for q in qos)


class BagWriter:
    """Writes a ROS 2 bag message by message: `with BagWriter(path) as w: w.write(topic, t, msg)`."""

    def __init__(self, path: str | Path, storage: str = "mcap") -> None:
        plugins = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
        if storage not in plugins:
            raise ValueError(f"storage must be one of {sorted(plugins)}, got '{storage}'")
        self.path = Path(path)
        if self.path.exists():
            raise FileExistsError(f"bag '{self.path}' already exists")
        self._writer = Writer(self.path, version=9, storage_plugin=plugins[storage])
        self._connections: dict[str, Any] = {}
        self._store = suite_typestore()

    def open(self) -> "BagWriter":
        self._writer.open()
        return self

    def write(self, topic: str, t_ns: int, msg: Any, qos: Sequence = ()) -> None:
        """Serialise and write one message; its type comes from the message object. qos: the
        offered QoS profiles recorded with the topic (rosbags Qos; e.g. latched_qos()), taken at
        the topic's first message; () = none recorded (players use their default)."""
        msgtype = msg.__msgtype__
        conn = self._connections.get(topic)
        if conn is None:
            conn = self._writer.add_connection(topic, msgtype, typestore=self._store,
                                               offered_qos_profiles=list(qos))
            self._connections[topic] = conn
        elif conn.msgtype != msgtype:
            raise TypeError(f"topic '{topic}' has type {conn.msgtype}, got {msgtype}")
        self._writer.write(conn, int(t_ns), self._store.serialize_cdr(msg, msgtype))

    def close(self) -> None:
        self._writer.close()

    def __enter__(self) -> "BagWriter":
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class BagMessage:
    topic: str
    msgtype: str
    t_ns: int      # bag (receive) time
    raw: bytes     # CDR with encapsulation header, as published
    qos: tuple = ()   # offered QoS profiles recorded with the topic (rosbags Qos)

    def decode(self) -> Any:
        return suite_typestore().deserialize_cdr(self.raw, self.msgtype)


def bag_topics(path: str | Path) -> dict[str, tuple[str, int]]:
    """{topic: (msgtype, message count)} of a bag."""
    with AnyReader([Path(path)], default_typestore=suite_typestore()) as reader:
        out: dict[str, tuple[str, int]] = {}
        for c in reader.connections:
            prev = out.get(c.topic, (c.msgtype, 0))[1]
            out[c.topic] = (c.msgtype, prev + c.msgcount)
        return out


def read_bag(path: str | Path, topics: Iterable[str] | None = None,
             start_ns: int | None = None) -> Iterator[BagMessage]:
    """Messages of a bag in time order (all topics, or the given ones)."""
    wanted = set(topics) if topics is not None else None
    with AnyReader([Path(path)], default_typestore=suite_typestore()) as reader:
        conns = [c for c in reader.connections if wanted is None or c.topic in wanted]
        if wanted is not None:
            missing = wanted - {c.topic for c in conns}
            if missing:
                raise KeyError(f"bag {path} has no topics {sorted(missing)}")
        for conn, t_ns, raw in reader.messages(connections=conns, start=start_ns):
            yield BagMessage(conn.topic, conn.msgtype, t_ns, bytes(raw), _offered_qos(conn))


def _offered_qos(conn) -> tuple:
    return tuple(getattr(getattr(conn, "ext", None), "offered_qos_profiles", None) or ())


def bag_offered_qos(path: str | Path) -> dict[str, tuple]:
    """{topic: offered QoS profiles recorded with it (rosbags Qos, all its connections)}."""
    with AnyReader([Path(path)], default_typestore=suite_typestore()) as reader:
        out: dict[str, tuple] = {}
        for c in reader.connections:
            out[c.topic] = out.get(c.topic, ()) + _offered_qos(c)
        return out


def bag_time_range(path: str | Path) -> tuple[int, int]:
    """(first, last) message time of a bag in ns."""
    with AnyReader([Path(path)], default_typestore=suite_typestore()) as reader:
        return int(reader.start_time), int(reader.end_time) - 1  # rosbags: end is exclusive
