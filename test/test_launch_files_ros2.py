"""Every YAML launch file of the suite must also load in the real `launch` library (ros2 launch).

launch_pytest style: runs where `launch`, `launch_ros` and `launch_pytest` are installed (a ROS
machine or CI image); here they are not installable from the package registry, so the module is
skipped with the reason. Only parsing is checked: nothing is launched.
"""
from __future__ import annotations

from pathlib import Path

import pytest

REASON = ("the ROS 2 `launch`/`launch_ros`/`launch_pytest` packages are not installed "
          "(not on PyPI; source a ROS 2 install to run this check)")
# `launch.frontend` (not just `launch`): an unrelated PyPI project is also called `launch`.
frontend = pytest.importorskip("launch.frontend", reason=REASON)
pytest.importorskip("launch_ros", reason=REASON)
pytest.importorskip("launch_pytest", reason=REASON)

REPO = Path(__file__).resolve().parents[1]
FILES = sorted((REPO / "launch").glob("*.yaml")) + sorted((REPO / "test/launch").glob("*.yaml"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_launch_file_parses_with_ros2_launch(path):
    from launch import LaunchDescription

    with open(path) as stream:
        root_entity, parser = frontend.Parser.load(stream)
    description = parser.parse_description(root_entity)
    assert isinstance(description, LaunchDescription)
    assert description.entities, f"{path.name} declares no actions"
