"""Config dataclasses of the model servers as ROS parameters (suite_tools.config_params'
declaration rule) and back to a params-file section."""
from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from suite_tools.config_params import ConfigError, declare_and_build

T = TypeVar("T")


def declare_config(node, cls: type[T]) -> T:
    """suite_tools.config_params.declare_and_build (the suite's one declaration rule); a bad value
    ends the server with one line naming the node and the parameter."""
    try:
        return declare_and_build(node, cls)
    except ConfigError as exc:
        raise SystemExit(f"bad parameters for {node.get_name()}: {exc}") from None


def as_yaml_section(cfg: Any) -> dict[str, Any]:
    """The nested `ros__parameters` mapping of a config instance (for writing params files)."""
    return {f.name: (as_yaml_section(getattr(cfg, f.name)) if dataclasses.is_dataclass(getattr(cfg, f.name))
                     else getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
