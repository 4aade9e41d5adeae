"""suite_tools: what every part of the suite shares -- graph launcher, bag player and writer,
ROS environment set-up and the test harness. Imports neither coin_lio nor learned_nodes.
"""
__version__ = "0.1.0"
