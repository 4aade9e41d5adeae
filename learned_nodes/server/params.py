"""Declare a config dataclass as ROS parameters (dotted names, nested sections) and build it back.

Parameters are dynamically typed so that `5` for a float reads as 5.0; the dataclass (through
suite_tools.config_params.build) then checks types and ranges and says what is wrong.
"""
from __future__ import annotations

import dataclasses
import typing
from typing import Any, TypeVar

from suite_tools.config_params import ConfigError, build, flatten

T = TypeVar("T")


def _hint_of(cls: type, dotted: str) -> Any:
    hint: Any = cls
    for part in dotted.split("."):
        hint = typing.get_type_hints(hint)[part]
    return hint


def declare_config(node, cls: type[T]) -> T:
    """Declare every field of `cls` (defaults from cls()) on `node` and build it from the values."""
    from rcl_interfaces.msg import ParameterDescriptor
    from rclpy.exceptions import ParameterUninitializedException
    from rclpy.parameter import Parameter

    values: dict[str, Any] = {}
    for key, default in flatten(cls()).items():
        if isinstance(default, list) and not default:
            item = (typing.get_args(_hint_of(cls, key)) or (str,))[0]
            ptype = {str: Parameter.Type.STRING_ARRAY, int: Parameter.Type.INTEGER_ARRAY,
                     float: Parameter.Type.DOUBLE_ARRAY, bool: Parameter.Type.BOOL_ARRAY}[item]
            node.declare_parameter(key, ptype)
            try:
                value = node.get_parameter(key).value
            except ParameterUninitializedException:
                value = default
        else:
            node.declare_parameter(key, default, ParameterDescriptor(dynamic_typing=True))
            value = node.get_parameter(key).value
        if not isinstance(value, (str, bytes)) and hasattr(value, "__len__"):
            value = list(value)  # array.array / tuple from rclpy -> list
        values[key] = value
    try:
        return build(cls, values)
    except ConfigError as exc:
        raise SystemExit(f"bad parameters for {node.get_name()}: {exc}") from None


def as_yaml_section(cfg: Any) -> dict[str, Any]:
    """The nested `ros__parameters` mapping of a config instance (for writing params files)."""
    return {f.name: (as_yaml_section(getattr(cfg, f.name)) if dataclasses.is_dataclass(getattr(cfg, f.name))
                     else getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
