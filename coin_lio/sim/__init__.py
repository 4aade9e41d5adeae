"""Simulated LiDAR + IMU sequences with ground truth (pure numpy/scipy; no rclpy, no torch).

Layers: sensor models (lidar_model; the real sensor's metadata and geometry are coin_lio.io's),
scenes (scene, textures, scenes), motion
(trajectory, imu), the sweep simulator (lidar_sim) and the sequence writer (sequence, cli).

    from coin_lio.sim import SequenceConfig, generate_sequence
    info = generate_sequence(SequenceConfig(scene="tunnel", duration=60, profile="dynamic"), "out")
"""
from coin_lio.io.ouster_geometry import coin_lio_project, coin_lio_u_shift, ouster_xyz_lut
from coin_lio.io.ouster_metadata import OusterMetadata
from coin_lio.photometric.projection import destagger
from coin_lio.sim.imu import ImuConfig, ideal_imu, simulate_imu
from coin_lio.sim.lidar_model import LidarNoiseConfig, OusterConfig, VelodyneConfig
from coin_lio.sim.lidar_sim import LidarSimulator
from coin_lio.sim.scenes import SCENES, clearance, make_scene
from coin_lio.sim.sensor_effects import SensorEffects
from coin_lio.sim.sequence import SequenceConfig, SequenceInfo, generate_sequence
from coin_lio.sim.trajectory import LinearTrajectory, SplineTrajectory, TrajectoryConfig

__all__ = [
    "ImuConfig", "ideal_imu", "simulate_imu", "LidarNoiseConfig", "OusterConfig", "VelodyneConfig",
    "coin_lio_project", "coin_lio_u_shift", "ouster_xyz_lut", "LidarSimulator", "OusterMetadata",
    "destagger", "SCENES", "clearance", "make_scene", "SequenceConfig", "SequenceInfo",
    "generate_sequence", "LinearTrajectory", "SensorEffects", "SplineTrajectory", "TrajectoryConfig",
]
