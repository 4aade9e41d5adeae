"""The suite's launcher: runs the same YAML launch files `ros2 launch` runs on robots.

Pure parsing (schema, substitutions, launch_file, process_actions, plan) is kept apart from
process handling (supervisor, output); nothing here imports rclpy.

    plan = load_launch_file("launch/x.launch.yaml", {"rate": "10.0"}, env)
    with Supervisor(plan, env) as sup:
        sup.wait(timeout=5.0)
"""
from suite_tools.launcher.errors import LaunchError
from suite_tools.launcher.launch_file import load_launch_file
from suite_tools.launcher.plan import (InlineParams, LaunchPlan, ParamsFile, ProcessSpec,
                                       describe)
from suite_tools.launcher.supervisor import ProcessStatus, Supervisor

__all__ = ["LaunchError", "load_launch_file", "LaunchPlan", "ProcessSpec", "InlineParams",
           "ParamsFile", "describe", "Supervisor", "ProcessStatus"]
