"""Generate a simulated LiDAR + IMU sequence: bag, ground truth, sensor metadata, description.

DIR/bag                 ROS 2 bag (MCAP): PointCloud2 stamped at the scan START (time of
                        measurement column 0, as ouster-ros does; point t / time = offset from that
                        stamp) and written at bag time stamp + scan period (when the sweep is
                        complete); Imu stamped and written at its sample time, same clock; Ouster:
                        the metadata JSON (std_msgs/String on /ouster/metadata) first, recorded
                        with the latched QoS ouster-ros offers (reliable, transient local, depth 1).
DIR/ground_truth.tum    t x y z qx qy qz qw: pose of the ground-truth frame (default the IMU
                        frame, FAST-LIO's body) in the world (z up, gravity -z) at the scan stamps.
DIR/metadata.json       Ouster sensor metadata (Velodyne: ring table) of the simulated sensor.
DIR/sequence.json       scene, seed, profile, frames, extrinsics, noise, stamps, files, effects.
"""
from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from coin_lio.sim.imu import GRAVITY, ImuConfig
from coin_lio.io.ouster_geometry import coin_lio_u_shift
from coin_lio.sim.lidar_model import LidarNoiseConfig, OusterConfig, VelodyneConfig
from coin_lio.sim.lidar_sim import LidarSimulator
from coin_lio.sim.movers import place_movers
from coin_lio.sim.scenes import SCENES, make_scene
from coin_lio.sim.sensor_effects import SensorEffects, add_knocks, recorded_imu
from coin_lio.sim.trajectory import PROFILES, RotatedBody, SplineTrajectory, TrajectoryConfig
from coin_lio.sim.trajectory import Path as SplinePath

SENSORS = ("ouster", "velodyne")
GT_FRAMES = ("imu", "lidar", "sensor", "cloud")
FORMAT = "coin_lio_sim/1"


@dataclass
class SequenceConfig:
    """Everything that determines a sequence; the same config gives the same bytes."""

    scene: str = "tunnel"
    duration: float = 60.0                     # s
    profile: str = "smooth"
    seed: int = 0
    sensor: str = "ouster"
    ouster: OusterConfig = field(default_factory=OusterConfig)
    velodyne: VelodyneConfig = field(default_factory=VelodyneConfig)
    noise: LidarNoiseConfig = field(default_factory=LidarNoiseConfig)
    imu: ImuConfig = field(default_factory=ImuConfig)
    trajectory: TrajectoryConfig | None = None   # None: TrajectoryConfig(profile=profile)
    start_time_ns: int = 1_700_000_000_000_000_000
    points_topic: str = ""                       # "" -> /ouster/points or /velodyne_points
    imu_topic: str = ""                          # "" -> /ouster/imu or /imu/data
    metadata_topic: str | None = None            # None -> /ouster/metadata (Ouster), none (Velodyne);
    #                                              "" = no metadata topic in the bag
    gt_frame: str = "imu"                        # imu | lidar | sensor (Ouster) | cloud
    velodyne_extrinsic: tuple[float, float, float, float] = (0.0, 0.0, 0.12, 0.0)  # x y z yaw_deg
    storage: str = "mcap"
    metadata_layout: str = "legacy"              # legacy (flat) or nested (FW 2.x sections)
    effects: SensorEffects = field(default_factory=SensorEffects)   # all off by default

    def __post_init__(self) -> None:
        if self.scene not in SCENES:
            raise ValueError(f"scene must be one of {sorted(SCENES)}, got '{self.scene}'")
        if not 0.2 <= self.duration <= 3600:
            raise ValueError(f"duration must be in [0.2, 3600] s, got {self.duration}")
        if self.profile not in PROFILES:
            raise ValueError(f"profile must be one of {PROFILES}, got '{self.profile}'")
        if self.trajectory is None:
            self.trajectory = TrajectoryConfig(profile=self.profile)
        elif self.trajectory.profile != self.profile:
            raise ValueError(f"trajectory.profile '{self.trajectory.profile}' != profile "
                             f"'{self.profile}'")
        if self.sensor not in SENSORS:
            raise ValueError(f"sensor must be one of {SENSORS}, got '{self.sensor}'")
        if self.gt_frame not in GT_FRAMES or (self.gt_frame == "sensor"
                                              and self.sensor != "ouster"):
            raise ValueError(f"gt_frame must be one of {GT_FRAMES} ('sensor' for Ouster only), "
                             f"got '{self.gt_frame}'")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if self.storage not in ("mcap", "sqlite3"):
            raise ValueError(f"storage must be 'mcap' or 'sqlite3', got '{self.storage}'")
        if self.metadata_layout not in ("legacy", "nested"):
            raise ValueError(f"metadata_layout must be 'legacy' or 'nested', got "
                             f"'{self.metadata_layout}'")
        self.effects.check_columns(self.ouster.cols if self.sensor == "ouster"
                                   else self.velodyne.cols)
        if len(self.velodyne_extrinsic) != 4:
            raise ValueError("velodyne_extrinsic is (x, y, z, yaw_deg)")
        if not self.points_topic:
            self.points_topic = "/ouster/points" if self.sensor == "ouster" else "/velodyne_points"
        if not self.imu_topic:
            self.imu_topic = "/ouster/imu" if self.sensor == "ouster" else "/imu/data"
        if self.metadata_topic is None:
            self.metadata_topic = "/ouster/metadata" if self.sensor == "ouster" else ""
        if self.metadata_topic and self.sensor != "ouster":
            raise ValueError("a metadata topic is written for Ouster sensors only")

    def to_dict(self) -> dict:
        out = asdict(self)
        out.pop("velodyne" if self.sensor == "ouster" else "ouster")
        return out


@dataclass
class SequenceInfo:
    out_dir: Path
    bag: Path
    ground_truth: Path
    metadata: Path
    description: Path
    n_scans: int
    n_imu: int
    cloud_frame: str
    gt_frame: str
    seconds: float          # wall time of the generation
    mean_scan_ms: float     # mean cast + format time per scan


def build(config: SequenceConfig):
    """(scene spec, trajectory, LiDAR simulator, frames dict) of a config, without writing."""
    tcfg = config.trajectory
    speed = tcfg.resolved()["speed"]
    spec = make_scene(config.scene, config.seed, path_length=speed * (config.duration + 5) + 50)
    traj = SplineTrajectory(SplinePath(spec.waypoints, spec.closed), tcfg, config.duration + 1.0,
                            seed=config.seed)
    traj, knocks = add_knocks(traj, config.effects, config.seed, tcfg.static_duration, config.duration)
    movers = []
    if config.effects.movers_enabled:     # after the knocks: placed where the robot will really be
        movers = place_movers(spec.scene, traj, config.effects, config.seed, tcfg.static_duration,
                              config.duration)
        spec = replace(spec, scene=replace(spec.scene, primitives=spec.scene.primitives + movers))
    if config.sensor == "ouster":
        if config.ouster.imu_mount_rpy_deg != (0.0, 0.0, 0.0):   # the IMU turned on the same rig
            traj = RotatedBody(traj, config.ouster.imu_mount_rotation())
        sim = LidarSimulator(config.ouster, config.noise, effects=config.effects)
        sensor_frame, lidar_frame, imu_frame = config.ouster.frame_ids
        cloud_frame = lidar_frame if config.ouster.cloud_frame == "os_lidar" else sensor_frame
        imu_id = config.imu.frame_id
        T_body = {"imu": np.eye(4), "lidar": sim.T_body_lidar,
                  "sensor": sim.T_body_lidar @ np.linalg.inv(sim.meta.T_sensor("os_lidar"))}
        T_body["cloud"] = T_body["lidar"] if cloud_frame == lidar_frame else T_body["sensor"]
        names = {"imu": imu_id, "lidar": lidar_frame, "sensor": sensor_frame, "cloud": cloud_frame}
    else:
        x, y, z, yaw = config.velodyne_extrinsic
        T = np.eye(4)
        T[:3, :3] = Rotation.from_euler("z", yaw, degrees=True).as_matrix()
        T[:3, 3] = (x, y, z)
        sim = LidarSimulator(config.velodyne, config.noise, T, config.effects)
        cloud_frame = config.velodyne.frame_id
        imu_id = "imu_link" if config.imu.frame_id == "os_imu" else config.imu.frame_id
        T_body = {"imu": np.eye(4), "lidar": T, "cloud": T}
        names = {"imu": imu_id, "lidar": cloud_frame, "cloud": cloud_frame}
    return spec, traj, sim, dict(T_body=T_body, names=names, cloud=cloud_frame, imu=imu_id, knocks=knocks,
                                 movers=movers)


def generate_sequence(config: SequenceConfig, out_dir: str | Path, progress: bool = True,
                      overwrite: bool = False) -> SequenceInfo:
    """Write DIR/bag, ground_truth.tum, metadata.json, sequence.json for `config`."""
    from tqdm import tqdm

    from suite_tools.bag_io import BagWriter, latched_qos, make_imu, make_pointcloud2, msg_class

    wall0 = time.perf_counter()
    out = Path(out_dir)
    bag_path = out / "bag"
    if bag_path.exists():
        if not overwrite:
            raise FileExistsError(f"{bag_path} exists (use overwrite=True / --overwrite)")
        shutil.rmtree(bag_path)
    out.mkdir(parents=True, exist_ok=True)
    spec, traj, sim, frames = build(config)
    period_ns = sim.period_ns
    n_scans = max(int(np.floor(config.duration * 1e9 / period_ns + 1e-9)), 1)
    t0 = int(config.start_time_ns)
    imu, imu_ns, gyro, acc = recorded_imu(traj, n_scans * period_ns * 1e-9 + 2.0 / config.imu.rate_hz,
                                          config.imu, config.seed, t0, config.effects)
    is_dense = config.sensor == "velodyne"
    scan_ms = []
    i_imu = 0
    with BagWriter(bag_path, storage=config.storage) as writer, \
            tqdm(total=n_scans, disable=not progress, unit="scan",
                 desc=f"{config.scene}/{config.profile}") as bar:
        if config.metadata_topic:   # as ros2 bag record gets the latched message: before the data
            text = json.dumps(sim.meta.to_dict(config.metadata_layout))
            writer.write(config.metadata_topic, t0, msg_class("std_msgs/msg/String")(data=text),
                         qos=latched_qos())
        for k in range(n_scans):
            stamp = t0 + k * period_ns
            tic = time.perf_counter()
            cloud = sim.scan(spec.scene, traj, k * period_ns * 1e-9,
                             rng=np.random.default_rng([config.seed, 0x5CA7, k]))
            scan_ms.append(1e3 * (time.perf_counter() - tic))
            while i_imu < len(imu_ns) and imu_ns[i_imu] <= stamp + period_ns:
                writer.write(config.imu_topic, int(imu_ns[i_imu]), make_imu(
                    int(imu_ns[i_imu]), frames["imu"], gyro[i_imu], acc[i_imu]))
                i_imu += 1
            writer.write(config.points_topic, stamp + period_ns,
                         make_pointcloud2(cloud, stamp, frames["cloud"], is_dense=is_dense))
            bar.update(1)
        for i in range(i_imu, len(imu_ns)):
            writer.write(config.imu_topic, int(imu_ns[i]),
                         make_imu(int(imu_ns[i]), frames["imu"], gyro[i], acc[i]))
    stamps_ns = t0 + np.arange(n_scans, dtype=np.int64) * period_ns
    gt_path = write_tum(out / "ground_truth.tum", traj, stamps_ns, t0,
                        frames["T_body"][config.gt_frame])
    meta_path = out / "metadata.json"
    if config.sensor == "ouster":
        sim.meta.write(meta_path, config.metadata_layout)
    else:
        alt = config.velodyne.altitudes_deg()
        meta_path.write_text(json.dumps({"sensor": "velodyne", "rings": config.velodyne.rings,
                                         "columns_per_frame": config.velodyne.cols,
                                         "frequency_hz": config.velodyne.frequency_hz,
                                         "altitudes_deg_by_ring": sorted(alt.tolist()),
                                         "altitudes_deg_firing_order": alt.tolist()}, indent=2))
    desc_path = out / "sequence.json"
    info = SequenceInfo(out, bag_path, gt_path, meta_path, desc_path, n_scans, len(imu_ns),
                        frames["cloud"], frames["names"][config.gt_frame],
                        time.perf_counter() - wall0, float(np.mean(scan_ms)))
    desc_path.write_text(json.dumps(describe(config, sim, frames, imu, info), indent=2,
                                    default=_json_default) + "\n")
    return info


def write_tum(path: Path, traj, stamps_ns: np.ndarray, t0_ns: int,
              T_body_frame: np.ndarray) -> Path:
    """TUM poses (world <- frame) at the given stamps; frame = body @ T_body_frame."""
    r_wb, p_wb = traj.pose((stamps_ns - t0_ns) * 1e-9)
    r = r_wb @ T_body_frame[:3, :3]
    p = np.einsum("nij,j->ni", r_wb, T_body_frame[:3, 3]) + p_wb
    q = Rotation.from_matrix(r).as_quat()     # x y z w
    with open(path, "w") as f:
        for ns, pos, quat in zip(stamps_ns, p, q):
            f.write(f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d} "
                    + " ".join(f"{v:.9f}" for v in (*pos, *quat)) + "\n")
    return path


def describe(config: SequenceConfig, sim: LidarSimulator, frames: dict, imu,
             info: SequenceInfo) -> dict:
    """The sequence.json content."""
    T_body = frames["T_body"]
    T_imu_cloud = T_body["cloud"]
    desc = {
        "format": FORMAT, "scene": config.scene, "seed": config.seed, "profile": config.profile,
        "sensor": config.sensor, "duration_s": config.duration, "n_scans": info.n_scans,
        "n_imu": info.n_imu, "scan_period_ns": sim.period_ns,
        "start_time_ns": config.start_time_ns,
        "files": {"bag": "bag", "ground_truth": "ground_truth.tum", "metadata": "metadata.json"},
        "topics": {"points": config.points_topic, "imu": config.imu_topic,
                   **({"metadata": config.metadata_topic} if config.metadata_topic else {})},
        "frames": {"world": "world (z up, gravity -z)", "cloud": frames["cloud"],
                   "imu": frames["imu"], "trajectory_body": frames["imu"], **{
                       f"{k}_frame": v for k, v in frames["names"].items()}},
        "ground_truth": {"file": "ground_truth.tum", "frame": frames["names"][config.gt_frame],
                         "parent": "world", "stamps": "scan start (PointCloud2 header.stamp)",
                         "format": "TUM: t[s] x y z qx qy qz qw"},
        "stamps": {"cloud_header": "time of measurement column 0 (scan start), as ouster-ros",
                   "cloud_bag_time": "header stamp + scan period (sweep complete)",
                   "point_time": ("field t: uint32 ns since the header stamp, one value per "
                                  "measurement column" if config.sensor == "ouster" else
                                  "field time: float32 s since the header stamp"),
                   "imu": "header stamp = bag time = sample time, same clock as the LiDAR"
                          + config.effects.imu_stamp_note()},
        "extrinsics": {"T_imu_cloud": T_imu_cloud, "T_imu_lidar": T_body["lidar"],
                       "note": "T_a_b maps b coordinates to a (pose of b in a), metres; "
                               "FAST-LIO extrinsic_T/extrinsic_R = T_imu_cloud"},
        "gravity": GRAVITY.tolist(),
        "imu": {**config.imu.to_dict(), "initial_bias_gyro": imu.bias_gyro[0],
                "initial_bias_acc": imu.bias_acc[0], "frame_id": frames["imu"]},
        "noise": asdict(config.noise), "trajectory": config.trajectory.resolved(),
        "effects": config.effects.describe(config.sensor, *sim.shape, frames["knocks"], frames["movers"]),
        "config": config.to_dict(),
        "generation": {"seconds": round(info.seconds, 2),
                       "mean_scan_ms": round(info.mean_scan_ms, 1)},
    }
    if config.sensor == "ouster":
        meta = sim.meta
        desc["extrinsics"].update({"lidar_to_sensor_transform_mm": meta.lidar_to_sensor_transform,
                                   "imu_to_sensor_transform_mm": meta.imu_to_sensor_transform,
                                   "T_lidar_imu": meta.T_lidar_imu()})
        desc["coin_lio"] = {
            "u_shift": coin_lio_u_shift(meta, config.ouster.cloud_frame,
                                        config.ouster.pixel_shift_offset),
            "destaggered": config.ouster.destaggered,
            "extrinsic_T": T_imu_cloud[:3, 3], "extrinsic_R": T_imu_cloud[:3, :3].reshape(-1),
            "note": "u_shift for COIN-LIO's projection applied to points in the cloud frame "
                    "(os_lidar: the 180-degree yaw puts column 0 at W/2)"}
    return desc


def _json_default(obj):
    if isinstance(obj, np.ndarray):
        return (obj + 0.0).tolist() if obj.dtype.kind == "f" else obj.tolist()
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj)}")
