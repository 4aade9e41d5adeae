"""YAML launch file -> checked entity tree (no evaluation): the structure ros2 launch accepts.

Each action and sub-entity has a table of allowed keys and their types. The types follow the
YAML frontend of launch/launch_ros, which does not coerce: `respawn: true` (a YAML bool) and
`respawn_delay: 1` (an int) are rejected by `ros2 launch`, so they are rejected here too, with
a message that says how to write them. Unknown actions and keys are errors naming file and key.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from suite_tools.launcher.errors import LaunchError
from suite_tools.launcher.substitutions import parse_template

# Attribute kinds: S = string (substitutions allowed), T = plain text (no substitutions),
# B = YAML bool, F = float, I = int, V = parameter value (scalar or uniform list),
# a tuple ("list", NAME) = list of sub-entities checked against SUB[NAME].
S, T, B, F, I, V = "str", "text", "bool", "float", "int", "value"  # noqa: E741
_COND = {"if": S, "unless": S}
_PROCESS = {
    "name": S, "cwd": S, "output": S, "env": ("list", "env"), "launch-prefix": S,
    "respawn": S, "respawn_delay": F, "respawn_max_retries": I, "sigterm_timeout": F,
    "sigkill_timeout": F, "on_exit": S, "shell": B, "emulate_tty": B,
}
ACTIONS: dict[str, dict[str, Any]] = {
    "arg": {"name": T, "default": S, "description": T, "choice": ("list", "choice"), **_COND},
    "let": {"name": S, "value": S, **_COND},
    "node": {**_PROCESS, "pkg": S, "exec": S, "exec_name": S, "namespace": S, "args": S,
             "ros_args": S, "param": ("list", "param"), "remap": ("list", "remap"), **_COND},
    "executable": {**_PROCESS, "cmd": S, **_COND},
    "include": {"file": S, "arg": ("list", "include_arg"), **_COND},
    "group": {"scoped": B, "forwarding": B, "keep": ("list", "keep"), "children": "children",
              **_COND},
    "push-ros-namespace": {"namespace": S, **_COND},
    "push_ros_namespace": {"namespace": S, **_COND},
    "set_env": {"name": S, "value": S, **_COND},
    "unset_env": {"name": S, **_COND},
}
REQUIRED = {"arg": ["name"], "let": ["name", "value"], "node": ["exec"], "executable": ["cmd"],
            "include": ["file"], "group": ["children"], "push-ros-namespace": ["namespace"],
            "push_ros_namespace": ["namespace"], "set_env": ["name", "value"],
            "unset_env": ["name"]}
SUB: dict[str, dict[str, Any]] = {
    "env": {"name": S, "value": S}, "remap": {"from": S, "to": S}, "choice": {"value": T},
    "keep": {"name": S, "value": S}, "include_arg": {"name": S, "value": S},
    "param": {"name": S, "value": V, "param": ("list", "param"), "from": S, "allow_substs": B},
}
SUB_REQUIRED = {"env": ["name", "value"], "remap": ["from", "to"], "choice": ["value"],
                "keep": ["name", "value"], "include_arg": ["name", "value"], "param": []}
# Valid in ros2 launch, not implemented here: named so the error says so instead of "unknown".
KNOWN_UNSUPPORTED = {"timer", "log", "append_env", "for", "for_each", "set_parameter",
                     "set_parameters_from_file", "set_remap", "set_use_sim_time", "reset",
                     "node_container", "load_composable_node", "lifecycle_node", "ros_timer",
                     "shutdown", "set_ros_log_dir", "register_event_handler", "let_global"}


@dataclass
class Entity:
    """One checked action or sub-entity: `attrs` holds Templates, plain values or Entities."""

    kind: str
    attrs: dict[str, Any]
    where: str                      # "file.yaml: launch[2].node" for error messages
    children: list["Entity"] = field(default_factory=list)

    def error(self, msg: str) -> LaunchError:
        return LaunchError(f"{self.where}: {msg}")


def _type_error(where: str, key: str, value: Any, want: str) -> LaunchError:
    hint = ""
    if want == "a string" and isinstance(value, (bool, int, float)):
        hint = f" (the YAML frontend of ros2 launch needs a string here: write {key}: " \
               f"'{str(value).lower() if isinstance(value, bool) else value}')"
    if want == "a float" and isinstance(value, int) and not isinstance(value, bool):
        hint = f" (ros2 launch rejects an int here: write {key}: {float(value)})"
    return LaunchError(f"{where}: '{key}' must be {want}, got {type(value).__name__} "
                       f"{value!r}{hint}")


def _check_value(where: str, key: str, value: Any) -> Any:
    if isinstance(value, list):
        for item in value:
            if not isinstance(item, (str, int, float, bool)):
                raise LaunchError(f"{where}: '{key}' list items must be scalars, got {item!r}")
        return [parse_template(v) if isinstance(v, str) else v for v in value]
    if isinstance(value, str):
        return parse_template(value)
    if isinstance(value, (int, float, bool)):
        return value
    raise LaunchError(f"{where}: '{key}' must be a scalar or a list of scalars, got {value!r}")


def _convert(where: str, key: str, kind: Any, value: Any, file: Path) -> Any:
    try:
        if kind == S:
            if not isinstance(value, str):
                raise _type_error(where, key, value, "a string")
            return parse_template(value)
        if kind == T:
            if not isinstance(value, str):
                raise _type_error(where, key, value, "a string")
            return value
        if kind == B:
            if isinstance(value, bool):
                return value
            raise _type_error(where, key, value, "a YAML bool (true/false, unquoted)")
        if kind == F:
            if isinstance(value, float):
                return value
            raise _type_error(where, key, value, "a float")
        if kind == I:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            raise _type_error(where, key, value, "an int")
        if kind == V:
            return _check_value(where, key, value)
    except LaunchError as exc:
        if str(exc).startswith(where):
            raise
        raise LaunchError(f"{where}: '{key}': {exc}") from None
    sub = kind[1]
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise LaunchError(f"{where}: '{key}' must be a list of mappings")
    return [_entity(sub, v, f"{where}.{key}[{n}]", SUB[sub], SUB_REQUIRED[sub], file)
            for n, v in enumerate(value)]


def _entity(kind: str, body: Any, where: str, table: dict[str, Any], required: list[str],
            file: Path) -> Entity:
    if not isinstance(body, dict):
        raise LaunchError(f"{where}: expected a mapping of attributes, got {body!r}")
    unknown = sorted(set(body) - set(table))
    if unknown:
        hint = "; put the arguments in 'cmd', as ros2 launch expects" \
            if kind == "executable" and "args" in unknown else ""
        raise LaunchError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))} "
                          f"(allowed: {', '.join(sorted(table))}){hint}")
    missing = [k for k in required if k not in body]
    if missing:
        raise LaunchError(f"{where}: missing required key(s) {', '.join(map(repr, missing))}")
    if "if" in body and "unless" in body:
        raise LaunchError(f"{where}: 'if' and 'unless' cannot be used together")
    entity = Entity(kind, {}, where)
    for key, value in body.items():
        if table[key] == "children":
            entity.children = parse_actions(value, f"{where}.children", file)
        else:
            entity.attrs[key] = _convert(where, key, table[key], value, file)
    return entity


def parse_actions(items: Any, where: str, file: Path) -> list[Entity]:
    """A list of `- action: {...}` items -> checked entities."""
    if not isinstance(items, list):
        raise LaunchError(f"{where}: expected a list of actions, got {type(items).__name__}")
    actions = []
    for n, item in enumerate(items):
        here = f"{where}[{n}]"
        if not isinstance(item, dict) or len(item) != 1:
            raise LaunchError(f"{here}: each action must be a mapping with exactly one key "
                              f"(the action type), got {item!r}")
        kind, body = next(iter(item.items()))
        if kind in KNOWN_UNSUPPORTED:
            raise LaunchError(f"{here}: action '{kind}' is valid in ros2 launch but not "
                              "supported by coin-lio-suite-launch")
        if kind not in ACTIONS:
            raise LaunchError(f"{here}: unknown action '{kind}' (supported: "
                              f"{', '.join(sorted(ACTIONS))})")
        actions.append(_entity(kind, body, f"{here}.{kind}", ACTIONS[kind], REQUIRED[kind], file))
    return actions


def parse_launch_file(path: Path) -> list[Entity]:
    """Read and check one YAML launch file: the top level must be exactly `launch: [...]`."""
    if path.suffix == ".py" or path.name.endswith((".launch.xml", ".xml")):
        raise LaunchError(f"{path}: only YAML launch files are supported by this launcher")
    try:
        text = path.read_text()
    except OSError as exc:
        raise LaunchError(f"cannot read launch file {path}: {exc.strerror}") from None
    try:
        tree = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise LaunchError(f"{path}: invalid YAML: {exc}") from None
    if not isinstance(tree, dict) or list(tree) != ["launch"]:
        raise LaunchError(f"{path}: the top level must be a single 'launch:' key holding a "
                          "list of actions")
    return parse_actions(tree["launch"], f"{path}: launch", path)
