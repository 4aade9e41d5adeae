"""coin_lio_node: LiDAR-inertial odometry on a ROS 2 graph (thin adapter over OdometryDriver).

Subscribes  <points_topic> sensor_msgs/PointCloud2, <imu_topic> sensor_msgs/Imu (sensor-data QoS),
            <metadata_topic> std_msgs/String (Ouster metadata JSON, transient local; geometric-only till then)
Publishes   ~/odometry nav_msgs/Odometry (odom_frame -> base_frame), ~/path nav_msgs/Path (the
            trajectory since the last reset, at most path_max_poses),
            ~/cloud_registered sensor_msgs/PointCloud2 (odom_frame), ~/degeneracy
            coin_lio_suite/DegeneracyReport, ~/intensity_image (mono8, filtered) and
            ~/feature_image (rgb8, tracked patches drawn) sensor_msgs/Image when subscribed,
            /tf (tf2_msgs/TFMessage) odom_frame -> base_frame each scan; /tf_static (latched)
            base_frame -> IMU frame -> LiDAR frame (the input messages' frame ids) from
            base_to_imu and the extrinsic, sent again when a frame id or the extrinsic changes
Services    ~/reset std_srvs/Trigger
Threads     IMU and cloud callbacks only convert and enqueue; a worker thread runs the filter, so
            the IMU callback never waits for a scan (at most imu_wait s for the IMU to cover it:
            odometry_driver.ScanGate). Lag policy: at most `max_scan_queue` scans wait; when
            another arrives the OLDEST waiting scan is dropped, counted, and reported
            (log + DegeneracyReport.num_dropped_scans).
"""
from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np
from nav_msgs.msg import Odometry, Path
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, Imu, PointCloud2
from std_msgs.msg import String
from std_srvs.srv import Trigger

from coin_lio import ros_messages as rm
from coin_lio.config import NODE_NAME
from coin_lio.kernel_warmup import warm_up_once
from coin_lio.node_config import NodeConfig
from coin_lio.odometry_driver import INFO_EVENTS, OdometryDriver, ScanGate, append_path_pose
from coin_lio_suite.msg import DegeneracyReport
from suite_tools.config_params import ConfigError, declare_and_build
from suite_tools.node_main import run_node
from suite_tools.tf_broadcast import (StaticTransformBroadcaster, TransformBroadcaster, sensor_frames,
                                      tf_available)

# IMU readings kept while no scan is processed (10 s at 2 kHz): a LiDAR outage with the IMU still
# publishing must not grow the queue without bound; the dropped ones become an IMU gap -> reset.
IMU_BACKLOG_MAX = 20000


class _RateLimitedLog:
    """Log each kind of problem the first time, then every 100th time with the count."""

    def __init__(self, logger) -> None:
        self.logger, self.counts = logger, {}

    def warn(self, kind: str, message: str) -> None:
        n = self.counts.get(kind, 0) + 1
        self.counts[kind] = n
        if n == 1 or n % 100 == 0:
            self.logger.warning(f"{message} [{kind}: {n} so far]")


class CoinLioNode(Node):
    """The node: parameters -> OdometryDriver; callbacks enqueue, a worker thread filters."""

    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        try:
            self.cfg = declare_and_build(self, NodeConfig)
        except ConfigError as exc:
            raise SystemExit(f"invalid parameters: {exc}") from None
        c = self.cfg
        self.exit_code = None
        self.log = _RateLimitedLog(self.get_logger())
        metadata_sub = bool(c.metadata_topic) and not c.lio.photometric.metadata_path
        self.driver = OdometryDriver(c.lio, c.time_jump_reset,
                                     metadata_source=f"topic {c.metadata_topic}" if metadata_sub else "")
        self.get_logger().info("loading the odometry's compiled kernels (the first start after an install "
                               "compiles them: ~20 s)")
        try:
            took = warm_up_once()
        except Exception as exc:   # the kernels then compile at the first scans instead: not fatal
            self.get_logger().warning(f"odometry kernel warm-up failed ({type(exc).__name__}: {exc}); "
                                      "the first scans will compile them")
            took = None
        if took is not None:
            self.get_logger().info(f"odometry kernels ready in {took:.1f} s")
        self.T_base_imu = rm.pose_to_matrix(c.base_to_imu)
        self.T_imu_base = np.linalg.inv(self.T_base_imu)
        # raw readings, appended by the callback; bounded for a LiDAR outage (IMU still running)
        self.imu_in: deque = deque(maxlen=IMU_BACKLOG_MAX)
        self.gate = ScanGate(c.imu_wait, c.max_scan_queue, c.lio.imu.time_offset)   # the IMU-cover rule
        self.new_metadata = None                     # parsed, for the worker to apply
        self.cond = threading.Condition()
        self.dropped = 0
        self.reset_requested = False
        self.last_gyro = np.zeros(3)
        self.path = Path()
        self.path.header.frame_id = c.odom_frame
        self.n_published = 0

        self.pub_odom = self.create_publisher(Odometry, "~/odometry", 50)
        self.pub_path = self.create_publisher(Path, "~/path", 5)
        self.pub_cloud = self.create_publisher(PointCloud2, "~/cloud_registered", 5)
        self.pub_degen = self.create_publisher(DegeneracyReport, "~/degeneracy", 20)
        self.pub_image = self.create_publisher(Image, "~/intensity_image", 2)
        self.pub_features = self.create_publisher(Image, "~/feature_image", 2)
        self.tf = self.tf_static = None
        self.imu_frame = self.lidar_frame = ""       # frame ids of the latest input messages
        self.static_sent = None                       # what /tf_static last carried
        if (c.publish_tf or c.publish_static_tf) and not tf_available():
            self.get_logger().warning("tf2_msgs is not installed: TF not published (odometry is)")
        elif c.publish_tf or c.publish_static_tf:
            self.tf = TransformBroadcaster(self) if c.publish_tf else None
            self.tf_static = StaticTransformBroadcaster(self) if c.publish_static_tf else None
        rel = (ReliabilityPolicy.RELIABLE if c.input_reliability == "reliable"
               else ReliabilityPolicy.BEST_EFFORT)
        imu_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=400, reliability=rel)
        # lossless replay needs a deep reader queue too: a reliable reader with a short
        # KEEP_LAST history still drops clouds while a slow callback has not taken them
        cloud_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, reliability=rel,
                               depth=100 if c.input_reliability == "reliable" else 5)
        self.create_subscription(Imu, c.imu_topic, self._on_imu, imu_qos,
                                 callback_group=MutuallyExclusiveCallbackGroup())
        self.create_subscription(PointCloud2, c.points_topic, self._on_cloud, cloud_qos,
                                 callback_group=MutuallyExclusiveCallbackGroup())
        if metadata_sub:   # as ouster-ros publishes it: reliable, transient local, depth 1
            meta_qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                                  durability=DurabilityPolicy.TRANSIENT_LOCAL)
            self.create_subscription(String, c.metadata_topic, self._on_metadata, meta_qos,
                                     callback_group=MutuallyExclusiveCallbackGroup())
        self.create_service(Trigger, "~/reset", self._on_reset,
                            callback_group=MutuallyExclusiveCallbackGroup())
        self.running = True
        self.worker = threading.Thread(target=self._work, name="coin_lio_worker", daemon=True)
        self.worker.start()
        self.get_logger().info(f"coin_lio: {c.points_topic} + {c.imu_topic} -> "
                               f"{self.get_name()}/odometry ({c.odom_frame} -> {c.base_frame})")

    # ---- callbacks: convert, validate, enqueue ----------------------------------------
    def _on_imu(self, msg) -> None:
        try:
            r = rm.imu_from_msg(msg)
        except (ValueError, TypeError) as exc:
            self.log.warn("imu_bad", f"IMU message dropped: {exc}")
            return
        self.imu_frame = msg.header.frame_id
        with self.cond:
            if len(self.imu_in) == IMU_BACKLOG_MAX:
                self.log.warn("imu_backlog", f"no scan processed for {IMU_BACKLOG_MAX} IMU readings: "
                              "the oldest are dropped (the odometry resets on the gap)")
            self.imu_in.append(r)
            self.gate.add_imu(r.t)
            self.cond.notify()

    def _on_cloud(self, msg) -> None:
        try:
            scan = rm.read_scan(msg, self.cfg.lio.preprocess)
        except ValueError as exc:
            self.log.warn("cloud_bad", f"point cloud dropped: {exc}")
            return
        if not scan.valid.any():
            self.log.warn("cloud_empty", "point cloud without valid points dropped")
            return
        self.lidar_frame = msg.header.frame_id
        with self.cond:
            dropped = self.gate.add_scan(scan)
            self.cond.notify()
        if dropped:
            self.dropped += dropped
            self.log.warn("scan_dropped", "processing behind: the oldest waiting scan was dropped")

    def _on_metadata(self, msg) -> None:
        try:
            meta = rm.metadata_from_msg(msg)
        except ValueError as exc:   # malformed: say so, keep running (geometric-only)
            self.log.warn("metadata_bad", f"sensor metadata on {self.cfg.metadata_topic} ignored: {exc}")
            return
        with self.cond:
            self.new_metadata = meta

    def _on_reset(self, request, response):
        with self.cond:
            self.reset_requested = True
            self.cond.notify()
        response.success, response.message = True, "odometry will restart with the next scan"
        return response

    # ---- worker ------------------------------------------------------------------------
    def _work(self) -> None:
        while self.running:
            with self.cond:
                self.cond.wait_for(lambda: not self.running or self.gate.scans or self.reset_requested,
                                   timeout=0.5)
                if not self.running:
                    return
                if self.reset_requested:
                    self.reset_requested = False
                    self.gate.clear()
                    self.imu_in.clear()
                    self.driver.reset("service call")
                    self.path.poses.clear()
                scan = None           # wait (bounded by imu_wait) for the IMU to cover the scan
                while self.running and self.gate.scans:
                    scan = self.gate.pop_ready(time.monotonic())
                    if scan is not None:
                        break
                    self.cond.wait(timeout=self.gate.wait_left(time.monotonic()))
                if scan is None:
                    continue
                imu = list(self.imu_in)
                self.imu_in.clear()
                meta, self.new_metadata = self.new_metadata, None
            if meta is not None:
                self.driver.set_metadata(meta)
            for r in imu:
                self.driver.add_imu(r)
                self.last_gyro = r.gyro
            t0 = time.perf_counter()
            try:
                res = self.driver.process(scan)
            except Exception as exc:  # never let the worker die: report, reset, go on
                self.get_logger().error(f"odometry failed on a scan ({type(exc).__name__}: {exc}): reset")
                self.driver.reset("internal error")
                continue
            ms = (time.perf_counter() - t0) * 1e3
            with self.cond:                     # the online clock-offset estimate moves the IMU cover rule
                self.gate.imu_time_offset = self.driver.time_offset
            for kind, message in self.driver.drain_events():   # news as info, problems rate-limited
                self.get_logger().info(message) if kind in INFO_EVENTS else self.log.warn(kind, message)
            if res is not None and res.T_world_lidar is not None and res.state.is_finite():
                try:
                    self._publish(res, ms)
                except Exception as exc:  # SIGINT shuts the context down under a running worker
                    if not self.context.ok():
                        return
                    self.get_logger().error(f"publishing failed ({type(exc).__name__}: {exc})")

    def _publish(self, res, ms: float) -> None:
        c = self.cfg
        T_odom_base = self.T_base_imu @ res.state.imu_pose() @ self.T_imu_base
        self.pub_odom.publish(rm.odometry_msg(res, T_odom_base, self.T_base_imu, c.odom_frame,
                                              c.base_frame, self.last_gyro))
        if self.tf is not None:
            self.tf.send([rm.transform_msg(res.t_end, T_odom_base, c.odom_frame, c.base_frame)])
        if self.tf_static is not None:
            self._send_static_tf(res.t_end)
        if c.publish_path:
            append_path_pose(self.path.poses, rm.pose_stamped(res, T_odom_base, c.odom_frame),
                             res.status, c.path_max_poses)   # a reset starts a new path
            if self.n_published % c.path_every == 0:
                self.path.header.stamp = rm.to_stamp(res.t_end)
                self.pub_path.publish(self.path)
        if c.publish_cloud and res.points_world is not None:
            pts = res.points_world @ self.T_base_imu[:3, :3].T + self.T_base_imu[:3, 3]
            self.pub_cloud.publish(rm.xyz_cloud_msg(pts, res.t_end, c.odom_frame))
        self.pub_degen.publish(rm.degeneracy_msg(res, c.odom_frame, self.dropped, ms))
        if c.publish_images and res.image is not None:   # only the work someone asked for
            frame = c.base_frame
            if self.pub_image.get_subscription_count():
                mono = np.clip(np.rint(res.image), 0, 255).astype(np.uint8)
                self.pub_image.publish(rm.image_msg(mono, res.t_end, frame))
            if self.pub_features.get_subscription_count():
                from coin_lio.photometric.draw import feature_image

                ages = self.driver.pipeline.photo.patches.age if self.driver.pipeline.photo else None
                self.pub_features.publish(rm.image_msg(feature_image(res.image, res.patch_uv, ages),
                                                       res.t_end, frame))
        self.n_published += 1

    def _send_static_tf(self, t: float) -> None:
        """base_frame -> IMU frame -> LiDAR frame on /tf_static, when any of it changed."""
        T_imu_lidar = self.driver.pipeline.T_imu_lidar
        key = (self.imu_frame, self.lidar_frame, T_imu_lidar.round(9).tobytes())
        if key != self.static_sent:
            self.static_sent = key
            chain, note = sensor_frames(self.cfg.base_frame, self.imu_frame, self.lidar_frame,
                                        self.T_base_imu, T_imu_lidar)
            if note:
                self.log.warn("tf_frames", note)
            if chain:
                self.tf_static.send([rm.transform_msg(t, T, parent, child) for parent, child, T in chain])

    def on_shutdown(self) -> None:
        self.running = False
        with self.cond:
            self.cond.notify_all()
        self.worker.join(timeout=2.0)
        counts = dict(self.driver.counts)
        # rclpy may be shut down already (SIGINT): print instead of the ROS logger
        print(f"[coin_lio_node] {self.n_published} poses published, {self.dropped} scans dropped, "
              f"counts {counts}, problems {self.log.counts}", flush=True)


def main(args=None) -> int:
    # One executor thread is enough (callbacks only convert and enqueue; the filter runs in the
    # worker thread); a thread pool here only competes with the worker for the GIL.
    return run_node(CoinLioNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
