"""Config dataclasses <-> ROS parameters <-> YAML, one schema for nodes and offline tools.

A component's config is a (nested) dataclass validated in __post_init__. Its YAML lives under
`<node>: ros__parameters:` with nested mappings (ROS turns them into dotted parameter names:
`lio.map.voxel_size`). Offline tools read the same file with `load_node_params`.
"""
from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any, Mapping, TypeVar

from suite_tools import param_files
from suite_tools.param_files import fully_qualified_name

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration value is unknown, of the wrong type, or out of range."""


def flatten(cfg: Any, prefix: str = "") -> dict[str, Any]:
    """{'a.b.c': value} for a nested dataclass instance (lists stay lists)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            out.update(flatten(value, key + "."))
        else:
            out[key] = list(value) if isinstance(value, tuple) else value
    return out


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """{'a.b': 1} -> {'a': {'b': 1}}."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"'{key}' conflicts with a value at '{p}'")
        node[leaf] = value
    return out


def build(cls: type[T], values: Mapping[str, Any] | None = None, path: str = "") -> T:
    """cls from nested or dotted values over its defaults; unknown keys and bad types raise."""
    values = nest(values or {}) if any("." in k for k in (values or {})) else dict(values or {})
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(values) - set(fields)
    if unknown:
        raise ConfigError(f"unknown parameter(s) {sorted(path + k for k in unknown)}; "
                          f"known at this level: {sorted(fields)}")
    kwargs = {}
    for name, value in values.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            if not isinstance(value, Mapping):
                raise ConfigError(f"'{path}{name}' must be a mapping of parameters")
            kwargs[name] = build(hint, value, f"{path}{name}.")
        else:
            kwargs[name] = _coerce(value, hint, f"{path}{name}")
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{path or cls.__name__}: {exc}") from None


def _coerce(value: Any, hint: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"'{key}' must be a number, got {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, float)
                                                                       and value.is_integer())):
            raise ConfigError(f"'{key}' must be an integer, got {value!r}")
        return int(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"'{key}' must be true or false, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"'{key}' must be a string, got {value!r}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"'{key}' must be a list, got {value!r}")
        (item,) = typing.get_args(hint)[:1] or (Any,)
        items = [v if item is Any else _coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    return value


def load_node_params(path: str | Path, node_name: str, namespace: str = "") -> dict[str, Any]:
    """The `ros__parameters` that a params YAML gives node `node_name` in `namespace`, matched
    and merged exactly as ROS does (suite_tools.param_files: `/**/name`, `/**`, `/ns/name`)."""
    fqn = fully_qualified_name(node_name, namespace)
    try:
        data = param_files.load(path)
        merged = param_files.params_for(data, fqn, str(path))
    except param_files.ParamFileError as exc:
        raise ConfigError(str(exc)) from None
    if not merged:
        raise ConfigError(f"{path}: no entry applies to node '{fqn}' (keys: {sorted(map(str, data))}; "
                          f"'/**/{node_name}:' applies in every namespace)")
    return merged


def ros_parameter_default(value: Any) -> Any:
    """A default ROS accepts: lists of numbers become all-float when any item is a float."""
    if isinstance(value, (list, tuple)):
        items = list(value)
        if any(isinstance(v, float) for v in items) and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in items):
            return [float(v) for v in items]
        return items
    return value


ARRAY_TYPES = {str: "STRING_ARRAY", int: "INTEGER_ARRAY", float: "DOUBLE_ARRAY", bool: "BOOL_ARRAY"}


def _hint_of(cls: type, dotted: str) -> Any:
    """The type hint of the field at dotted path `dotted` of config dataclass `cls`."""
    hint: Any = cls
    for part in dotted.split("."):
        hint = typing.get_type_hints(hint)[part]
    return hint


def declare_and_build(node: Any, cls: type[T]) -> T:
    """Declare every field of config dataclass `cls` as a ROS parameter (dotted names, the
    dataclass defaults) on `node`, read them back (params files and -p overrides applied) and
    build the validated config. Raises ConfigError naming the bad parameter.

    The one declaration rule of every node of the suite: parameters are dynamically typed, so a
    `5` given for a float reads as 5.0 and a wrong type is refused by the dataclass with the
    parameter's name (not by rclpy with a traceback); an empty-list default is declared as an
    array of the field's item type (str, int, float, bool), unset unless a file or -p sets it.
    """
    from rcl_interfaces.msg import ParameterDescriptor
    from rclpy.exceptions import ParameterUninitializedException
    from rclpy.parameter import Parameter

    values: dict[str, Any] = {}
    for key, default in flatten(cls()).items():
        empty = isinstance(default, list) and not default
        item = (typing.get_args(_hint_of(cls, key)) or (None,))[0] if empty else None
        if item in ARRAY_TYPES:
            node.declare_parameter(key, getattr(Parameter.Type, ARRAY_TYPES[item]))
            try:
                value = node.get_parameter(key).value
            except ParameterUninitializedException:
                value = default
        elif empty:             # no item type (e.g. rectangles): the file decides
            node.declare_parameter(key, default, ParameterDescriptor(dynamic_typing=True))
            value = node.get_parameter(key).value
            value = default if value is None else value
        else:
            node.declare_parameter(key, ros_parameter_default(default),
                                   ParameterDescriptor(dynamic_typing=True))
            value = node.get_parameter(key).value
        if not isinstance(value, (str, bytes)) and hasattr(value, "__len__"):
            value = list(value)  # array.array / tuple from rclpy -> list
        values[key] = value
    return build(cls, values)
