"""coin-lio-sim: write a simulated LiDAR + IMU sequence (bag, ground truth, metadata).

    coin-lio-sim tunnel --duration 60 --profile dynamic --seed 0 --rows 128 --cols 1024 \\
        --imu-rate 100 --sensor ouster --out /data/sim/tunnel_dynamic
"""
from __future__ import annotations

import argparse
import sys

from coin_lio.sim.imu import ImuConfig
from coin_lio.sim.lidar_model import (OUSTER_FAMILIES, LidarNoiseConfig, OusterConfig,
                                      VelodyneConfig)
from coin_lio.sim.scenes import SCENES
from coin_lio.sim.sensor_effects import SensorEffects
from coin_lio.sim.sequence import GT_FRAMES, SequenceConfig, generate_sequence
from coin_lio.sim.trajectory import PROFILES


# flag -> SensorEffects field: (flag, argparse kwargs, help)
EFFECT_FLAGS = (
    ("--drop-packets", dict(type=float, metavar="P", dest="packet_drop_prob"),
     "lost LiDAR packets: probability per packet (off: 0; realistic 0.005)"),
    ("--columns-per-packet", dict(type=int, metavar="N", dest="columns_per_packet"),
     "Ouster columns per lidar packet (16)"),
    ("--column-window", dict(type=int, nargs=2, metavar=("FIRST", "LAST"), dest="column_window"),
     "only raw columns FIRST..LAST return (inclusive, wraps if FIRST > LAST; off: all)"),
    ("--imu-time-offset", dict(type=float, metavar="S", dest="imu_time_offset"),
     "IMU stamps S seconds late: the sample of true time t is stamped t + S (off: 0; "
     "realistic 0.005)"),
    ("--imu-saturation", dict(action="store_const", const=True, dest="imu_saturation"),
     "clip the IMU at --acc-range-g / --gyro-range-dps (off; realistic on)"),
    ("--acc-range-g", dict(type=float, metavar="G", dest="acc_range_g"),
     "accelerometer full scale +-G per axis (2)"),
    ("--gyro-range-dps", dict(type=float, metavar="D", dest="gyro_range_dps"),
     "gyro full scale +-D deg/s per axis (250)"),
    ("--knocks", dict(type=float, metavar="RATE", dest="knock_rate_hz"),
     "knocks (5 g, 300 deg/s jolts of the rig) per second (off: 0; realistic 0.1)"),
    ("--noise-returns", dict(type=float, metavar="F", dest="noise_return_frac"),
     "share of pixels given a spurious 0.5-5 m return (off: 0; realistic 0.001)"),
    ("--mixed-pixels", dict(type=float, metavar="F", dest="mixed_pixel_frac"),
     "share of depth-edge pixels given a mixed range (off: 0; realistic 0.3)"),
    ("--pedestrians", dict(type=float, metavar="N", dest="pedestrians_per_min"),
     "people passing per minute, along or across the path (off: 0; realistic 12)"),
    ("--vehicles", dict(type=float, metavar="N", dest="vehicles_per_min"),
     "oncoming cars passing beside the path per minute (off: 0; realistic 4)"),
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="coin-lio-sim", description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("scene", choices=sorted(SCENES), help="named scene")
    p.add_argument("--out", required=True,
                   help="output directory (DIR/bag, DIR/*.json, DIR/*.tum)")
    p.add_argument("--duration", type=float, default=60.0, help="seconds")
    p.add_argument("--profile", choices=PROFILES, default="smooth")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sensor", choices=("ouster", "velodyne"), default="ouster")
    p.add_argument("--rows", type=int, default=None,
                   help="Ouster rows 16/32/64/128 (default 128) or Velodyne rings 16/32/64 "
                        "(default 16)")
    p.add_argument("--cols", type=int, default=None,
                   help="Ouster columns 512/1024/2048 (default 1024); Velodyne firings per turn "
                        "(default 1800)")
    p.add_argument("--lidar-rate", type=int, default=10, help="Hz (Ouster 10 or 20)")
    p.add_argument("--imu-rate", type=float, default=100.0, help="Hz")
    p.add_argument("--family", choices=sorted(OUSTER_FAMILIES), default="OS-0",
                   help="Ouster vertical field of view family")
    p.add_argument("--destaggered", action="store_true",
                   help="publish destaggered clouds (default: raw column order like ouster-ros)")
    p.add_argument("--cloud-frame", choices=("os_lidar", "os_sensor"), default="os_lidar",
                   help="Ouster cloud frame (ouster-ros ROS 2 default os_lidar; ROS 1 os_sensor)")
    p.add_argument("--imu-mount-rpy", type=float, nargs=3, default=(0.0, 0.0, 0.0),
                   metavar=("ROLL", "PITCH", "YAW"),
                   help="Ouster: the IMU turned against the usual layout, deg about os_sensor x y z "
                        "(in the metadata's imu_to_sensor_transform)")
    p.add_argument("--no-metadata-topic", action="store_true",
                   help="Ouster: no /ouster/metadata (std_msgs/String, latched) in the bag")
    p.add_argument("--range-noise", type=float, default=LidarNoiseConfig.range_sigma,
                   help="m (1 sigma)")
    p.add_argument("--noiseless", action="store_true", help="no LiDAR and no IMU noise at all")
    e = p.add_argument_group("real-sensor effects (off unless asked; coin_lio/sim/README.md)")
    e.add_argument("--effects", choices=("none", "realistic"), default="none",
                   help="realistic: every effect below at its realistic level (no column "
                        "window); the flags below override single effects")
    for flag, kwargs, text in EFFECT_FLAGS:
        e.add_argument(flag, default=argparse.SUPPRESS, help=text, **kwargs)
    p.add_argument("--gt-frame", choices=GT_FRAMES, default="imu",
                   help="frame of ground_truth.tum")
    p.add_argument("--metadata-layout", choices=("legacy", "nested"), default="legacy")
    p.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    p.add_argument("--overwrite", action="store_true", help="replace an existing DIR/bag")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def config_from_args(args: argparse.Namespace) -> SequenceConfig:
    noise = LidarNoiseConfig.noiseless() if args.noiseless else LidarNoiseConfig(
        range_sigma=args.range_noise)
    imu = (ImuConfig.noiseless(args.imu_rate) if args.noiseless
           else ImuConfig(rate_hz=args.imu_rate))
    kwargs = {}
    if args.sensor == "ouster":
        kwargs["ouster"] = OusterConfig(rows=args.rows or 128, cols=args.cols or 1024,
                                        frequency_hz=args.lidar_rate, family=args.family,
                                        destaggered=args.destaggered, cloud_frame=args.cloud_frame,
                                        imu_mount_rpy_deg=tuple(args.imu_mount_rpy))
    else:
        kwargs["velodyne"] = VelodyneConfig(rings=args.rows or 16, cols=args.cols or 1800,
                                            frequency_hz=float(args.lidar_rate))
    return SequenceConfig(scene=args.scene, duration=args.duration, profile=args.profile,
                          seed=args.seed, sensor=args.sensor, noise=noise, imu=imu,
                          effects=effects_from_args(args),
                          gt_frame=args.gt_frame, storage=args.storage,
                          metadata_layout=args.metadata_layout,
                          metadata_topic="" if args.no_metadata_topic else None, **kwargs)


def effects_from_args(args: argparse.Namespace) -> SensorEffects:
    base = SensorEffects.realistic() if args.effects == "realistic" else SensorEffects()
    given = {kw["dest"]: getattr(args, kw["dest"]) for _, kw, _ in EFFECT_FLAGS
             if hasattr(args, kw["dest"])}
    return base.replace(**given)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        info = generate_sequence(config, args.out, progress=not args.quiet,
                                 overwrite=args.overwrite)
    except FileExistsError as exc:
        parser.error(str(exc))
    print(f"{info.n_scans} scans, {info.n_imu} IMU samples in {info.seconds:.1f} s "
          f"({info.mean_scan_ms:.0f} ms per scan)\n"
          f"bag           {info.bag}\nground truth  {info.ground_truth} (frame {info.gt_frame})\n"
          f"metadata      {info.metadata}\ndescription   {info.description}\n"
          f"cloud frame   {info.cloud_frame}", file=sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
