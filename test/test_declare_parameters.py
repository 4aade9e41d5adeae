"""The one rule by which every node declares its config dataclass as ROS parameters
(suite_tools.config_params.declare_and_build), on real rclpy nodes with params files."""
from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import yaml

from suite_tools.config_params import ConfigError, declare_and_build


@dataclass
class Inner:
    gain: float = 1.5
    names: list[str] = field(default_factory=list)      # empty: a typed string array


@dataclass
class Cfg:
    rate: float = 10.0
    count: int = 3
    offsets: list[float] = field(default_factory=lambda: [0.0, 1.0])
    zones: tuple = ()                                    # empty, no item type: the file decides
    inner: Inner = field(default_factory=Inner)

    def __post_init__(self) -> None:
        self.zones = tuple(self.zones)
        if self.count < 0:
            raise ValueError("count must be >= 0")


def _node(rclpy, tmp_path, graph, params: dict, name: str):
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({f"/**/{name}": {"ros__parameters": params}}))
    context = rclpy.Context()
    rclpy.init(args=["--ros-args", "--params-file", str(path)], context=context, domain_id=graph.domain_id)
    return context, rclpy.create_node(name, context=context)


@pytest.mark.parametrize("params, expect", [
    ({}, Cfg()),
    ({"rate": 5, "offsets": [1.0, 2.5], "zones": [0, 84, 70, 44], "inner": {"names": ["a", "b"], "gain": 2}},
     Cfg(rate=5.0, offsets=[1.0, 2.5], zones=(0, 84, 70, 44), inner=Inner(gain=2.0, names=["a", "b"]))),
])
def test_values_from_a_params_file(tmp_path, ros_context, graph, params, expect):
    import rclpy

    context, node = _node(rclpy, tmp_path, graph, params, "declare_ok")
    try:
        got = declare_and_build(node, Cfg)
        assert got == expect and isinstance(got.rate, float)
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=context)


@pytest.mark.parametrize("params, match", [
    ({"count": "three"}, "'count' must be an integer"),
    ({"count": -1}, "count must be >= 0"),
    ({"inner": {"gain": True}}, "'inner.gain' must be a number"),
])
def test_bad_values_are_refused_with_the_parameter_name(tmp_path, ros_context, graph, params, match):
    import rclpy

    context, node = _node(rclpy, tmp_path, graph, params, "declare_bad")
    try:
        with pytest.raises(ConfigError, match=match):
            declare_and_build(node, Cfg)
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=context)
