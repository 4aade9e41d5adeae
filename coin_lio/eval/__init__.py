"""Offline evaluation: TUM trajectories, APE/RPE/KITTI metrics (evo-compatible), plots, peer baselines
and the bench runner that runs any odometry over a simulated sequence.

Nothing here imports rclpy; kiss_icp / rko_lio / evo / matplotlib are imported lazily where used.
"""
