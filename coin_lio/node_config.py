"""Configuration of coin_lio_node (topics, frames, publishing, lag policy), validated; the LIO
itself is coin_lio.config.LioConfig under the `lio.` parameters."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from coin_lio.config import NODE_NAME, LioConfig
from suite_tools.config_params import build, load_node_params


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise ValueError(msg)


@dataclass
class NodeConfig:
    points_topic: str = "/ouster/points"
    imu_topic: str = "/ouster/imu"
    metadata_topic: str = "/ouster/metadata"   # std_msgs/String, the sensor metadata JSON (reliable,
    #                                    transient local, as ouster-ros); read when lio.photometric.
    #                                    metadata_path is empty ('' = none); the runner reads it from bags
    input_reliability: str = "best_effort"   # sensor-data QoS; "reliable" for lossless bag replay
    odom_frame: str = "odom"           # REP-105 names; the odometry's fixed frame
    base_frame: str = "base_link"      # child frame of the odometry (the IMU body unless set)
    base_to_imu: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0])
    #                                    pose of the IMU in base_frame: x y z qx qy qz qw
    publish_tf: bool = True            # /tf odom_frame -> base_frame, each scan (tf2_msgs/TFMessage)
    publish_static_tf: bool = True     # /tf_static base_frame -> IMU -> LiDAR frame (the input messages'
    #                                    frame ids) from base_to_imu + the extrinsic; false where the
    #                                    driver publishes its own sensor frames (ouster-ros: os_sensor ->
    #                                    os_imu, os_lidar) and base_frame is joined to them elsewhere
    publish_cloud: bool = True         # registered (downsampled) scan in odom_frame
    publish_path: bool = True
    publish_images: bool = True        # filtered intensity (mono8) + feature image (rgb8), when subscribed
    path_max_poses: int = 20000        # the path keeps the most recent poses
    path_every: int = 5                # publish the path every N scans
    max_scan_queue: int = 2            # scans waiting beyond this: the OLDEST is dropped
    imu_wait: float = 0.1              # s to wait for IMU to cover a scan before extrapolating
    time_jump_reset: float = 1.0       # s backwards in IMU or LiDAR time: reset (bag loop)
    lio: LioConfig = field(default_factory=LioConfig)

    def __post_init__(self) -> None:
        _check(bool(self.points_topic) and bool(self.imu_topic), "topics must be set")
        _check(self.input_reliability in ("best_effort", "reliable"),
               "input_reliability must be best_effort or reliable")
        _check(bool(self.odom_frame) and bool(self.base_frame) and self.odom_frame != self.base_frame,
               "odom_frame and base_frame must be set and differ")
        _check(len(self.base_to_imu) == 7, "base_to_imu is x y z qx qy qz qw")
        _check(self.max_scan_queue >= 1 and self.path_max_poses >= 1 and self.path_every >= 1,
               "queue and path sizes must be >= 1")
        _check(self.imu_wait >= 0 and self.time_jump_reset > 0, "bad imu_wait / time_jump_reset")


def load_node_config(path: str | Path | None, node_name: str = NODE_NAME) -> NodeConfig:
    """NodeConfig from a params YAML (defaults when path is None)."""
    return NodeConfig() if path is None else build(NodeConfig, load_node_params(path, node_name))
