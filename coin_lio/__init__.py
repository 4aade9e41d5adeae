"""coin_lio: LiDAR-inertial odometry after COIN-LIO (FAST-LIO2 iterated EKF + photometric residuals).

Pure numpy/scipy cores; ROS 2 adapters live in modules named *_node. Never imports torch
or learned_nodes.
"""
__version__ = "0.1.0"
