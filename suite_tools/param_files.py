"""Which entries of a ROS 2 parameter file apply to a node: the rule rcl/rclpy/rclcpp use.

A params YAML maps node-name keys to `ros__parameters`. ROS applies an entry to a node when the
key, read as a pattern, matches the node's FULLY QUALIFIED name (`/robot1/coin_lio_node`):

- a key without a leading slash gets one (`coin_lio_node` -> `/coin_lio_node`): it applies to
  that name in the root namespace only, NOT to `/robot1/coin_lio_node`;
- `/*` stands for one namespace or name token, `/**` for any number of them (none included):
  `/**/coin_lio_node` applies to `coin_lio_node` in every namespace, `/**` to every node;
- the entries that apply are merged in file order (a later entry overrides an earlier one).

rclpy and rclcpp implement this by rewriting the key into a regular expression
(`/*` -> `(/\\w+)`, so `/**` -> `(/\\w+)*`) and full-matching the node's name; this module does
the same, so that the suite's launcher, its offline tools and the nodes can never disagree
(test/test_param_files.py checks it against rclpy itself).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterator, Mapping

import yaml


class ParamFileError(ValueError):
    """A parameter file is not a mapping of node names to `ros__parameters`."""


def fully_qualified_name(name: str, namespace: str = "") -> str:
    """'/ns/name' from a node name and its namespace ('' or '/' = the root namespace)."""
    ns = "/" + namespace.strip("/") if namespace.strip("/") else ""
    return f"{ns}/{name}"


def key_pattern(key: str) -> re.Pattern:
    """The regular expression rcl builds from a params-file node key."""
    key = key if key.startswith("/") else "/" + key
    return re.compile(key.replace("/*", r"(/\w+)"))


def key_matches(key: str, fqn: str) -> bool:
    """True when the params-file entry `key` applies to the node named `fqn` (fully qualified)."""
    try:
        return key_pattern(key).fullmatch(fqn) is not None
    except re.error:          # a key that is no valid pattern applies to nothing, as in rcl
        return False


def load(path: str | Path) -> dict[str, Any]:
    """The YAML of a params file; ParamFileError when it is not a mapping."""
    data = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(data, dict):
        raise ParamFileError(f"{path}: top level must be a mapping of node names")
    return data


def matching_sections(data: Mapping[str, Any], fqn: str,
                      source: str = "params file") -> Iterator[tuple[str, dict]]:
    """(key, ros__parameters) of every entry that applies to `fqn`, in file order."""
    for key, section in data.items():
        if not key_matches(str(key), fqn):
            continue
        params = section.get("ros__parameters") if isinstance(section, Mapping) else None
        if not isinstance(params, dict):
            raise ParamFileError(f"{source}: '{key}' has no ros__parameters mapping")
        yield str(key), params


def params_for(data: Mapping[str, Any], fqn: str, source: str = "params file") -> dict[str, Any]:
    """The nested parameters that apply to `fqn`, merged as ROS merges them ({} when none)."""
    merged: dict[str, Any] = {}
    for _, params in matching_sections(data, fqn, source):
        deep_update(merged, params)
    return merged


def node_section(data: Mapping[str, Any], node_name: str) -> dict[str, Any]:
    """The `ros__parameters` mapping of the entry written for `node_name` in any namespace
    (`/**/name`, or `name` / `/name`): for tools and tests that edit a shipped file."""
    for key in (f"/**/{node_name}", node_name, f"/{node_name}"):
        section = data.get(key)
        if isinstance(section, Mapping) and isinstance(section.get("ros__parameters"), dict):
            return section["ros__parameters"]
    raise KeyError(f"no entry for node '{node_name}' (keys: {sorted(map(str, data))})")


def deep_update(dst: dict, src: Mapping) -> None:
    """dst updated by src, recursing into mappings that both have (ROS's dotted-name merge)."""
    for k, v in src.items():
        if isinstance(v, Mapping) and isinstance(dst.get(k), dict):
            deep_update(dst[k], v)
        else:
            dst[k] = v
