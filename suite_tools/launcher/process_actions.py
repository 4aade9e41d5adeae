"""`node` and `executable` entities -> ProcessSpec, with launch_ros's command line and typing.

Node command line, as launch_ros builds it:
  EXE [args] [--ros-args ros_args] --ros-args [-r __node:=NAME] [-r __ns:=/NS]
      [--params-file FILE ...] [-r from:=to ...]
Parameter values follow launch_ros: YAML scalars/lists keep their type, a string without
substitutions stays a string, a string with substitutions is read as YAML after substitution.
"""
from __future__ import annotations

import re
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

from suite_tools import param_files
from suite_tools.launcher import package_index
from suite_tools.launcher.errors import LaunchError
from suite_tools.launcher.plan import InlineParams, ParamsFile, ParamSource, ProcessSpec
from suite_tools.launcher.schema import Entity
from suite_tools.launcher.substitutions import (Scope, Template, evaluate, has_substitutions,
                                                resolve)
from suite_tools.param_files import fully_qualified_name

_NODE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NAMESPACE = re.compile(r"^/([A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*)?$")


def prefix_namespace(base: str | None, ns: str | None) -> str | None:
    """launch_ros.utilities.prefix_namespace: relative `ns` goes under `base`."""
    if base is None and ns is None:
        return None
    if ns is None:
        combined = base
    elif not base or ns.startswith("/"):
        combined = ns
    else:
        combined = ("" if base == "/" else base) + "/" + ns
    assert combined is not None
    return combined if combined == "/" else combined.rstrip("/")


def absolute_namespace(ns: str | None) -> str | None:
    """launch_ros.utilities.make_namespace_absolute."""
    if ns is None or ns.startswith("/"):
        return ns
    return "/" + ns


def split_cmdline(template: Template, scope: Scope) -> list[str]:
    """ExecuteProcess._parse_cmdline: split literal text like a shell, keep each substitution's
    result whole (a path with spaces stays one argument)."""
    result: list[str] = []
    arg: list[str] = []
    for part in template:
        if not isinstance(part, str):
            arg.append(resolve(part, scope))
            continue
        try:
            tokens = shlex.split(part)
        except ValueError as exc:
            raise LaunchError(f"cannot split command line text {part!r}: {exc}") from None
        if not tokens:
            if arg:
                result.append("".join(arg))
            arg = []
            continue
        if part[0].isspace() and arg:
            result.append("".join(arg))
            arg = []
        arg.append(tokens[0])
        if len(tokens) > 1:
            result.append("".join(arg))
            result.extend(tokens[1:-1])
            arg = [tokens[-1]]
        if part[-1].isspace():
            result.append("".join(arg))
            arg = []
    if arg:
        result.append("".join(arg))
    return result


def _yaml_typed(name: str, text: str) -> Any:
    """A substituted string read with YAML rules; must give a scalar or a uniform list."""
    if text == "":
        return ""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        raise LaunchError(f"parameter '{name}': value {text!r} is not valid YAML") from None
    if isinstance(value, list):
        return _uniform(name, value)
    if not isinstance(value, (bool, int, float, str)):
        raise LaunchError(f"parameter '{name}': value {text!r} is a {type(value).__name__}; "
                          "allowed are bool, int, float, str and uniform lists of them")
    return value


def _uniform(name: str, items: list[Any]) -> list[Any]:
    kinds = {type(v) for v in items}
    if kinds <= {int, float} and float in kinds:
        return [float(v) for v in items]
    if len(kinds) > 1 or not kinds <= {bool, int, float, str}:
        raise LaunchError(f"parameter '{name}': list items must all have one type "
                          f"(bool, int, float or str), got {items!r}")
    return items


def param_value(name: str, raw: Any, scope: Scope) -> Any:
    """Final typed value of one inline parameter."""
    if isinstance(raw, tuple):  # a parsed string template
        if not has_substitutions(raw):
            return evaluate(raw, scope)
        return _yaml_typed(name, evaluate(raw, scope))
    if isinstance(raw, list):
        items = [param_value(name, v, scope) for v in raw]
        return _uniform(name, items)
    return raw


def _flatten_params(entries: list[Entity], scope: Scope, prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for e in entries:
        if "from" in e.attrs:
            raise e.error("'from' cannot be nested inside a parameter group")
        if "name" not in e.attrs:
            raise e.error("a param needs 'name' (with 'value' or nested 'param') or 'from'")
        name = prefix + evaluate(e.attrs["name"], scope)
        if ("value" in e.attrs) == ("param" in e.attrs):
            raise e.error(f"param '{name}' needs exactly one of 'value' or nested 'param'")
        if "value" in e.attrs:
            out[name] = param_value(name, e.attrs["value"], scope)
        else:
            out.update(_flatten_params(e.attrs["param"], scope, name + "."))
    return out


def node_params(entries: list[Entity], scope: Scope, key: str) -> list[ParamSource]:
    """Ordered params sources; consecutive inline entries share one file (last one wins)."""
    sources: list[ParamSource] = []
    for e in entries:
        if "from" in e.attrs:
            if "name" in e.attrs:
                raise e.error("'name' and 'from' are mutually exclusive")
            if e.attrs.get("allow_substs") is True:
                raise e.error("'allow_substs: true' is not supported by this launcher")
            path = Path(evaluate(e.attrs["from"], scope)).expanduser().absolute()
            if not path.is_file():
                raise e.error(f"parameter file not found: {path}")
            sources.append(ParamsFile(str(path)))
            continue
        if "allow_substs" in e.attrs:
            raise e.error("'allow_substs' only goes with 'from'")
        values = _flatten_params([e], scope, "")
        if sources and isinstance(sources[-1], InlineParams):
            sources[-1].values.update(values)
        else:
            sources.append(InlineParams(key, values))
    return sources


def warn_unmatched_params_files(sources: list[ParamSource], fqn: str) -> list[str]:
    """Warn (stderr) for each params file with no entry that applies to node `fqn`: ROS would
    pass it and silently use none of its values (e.g. a `name:` key under a namespace)."""
    warnings = []
    for source in sources:
        if not isinstance(source, ParamsFile):
            continue
        try:
            data = param_files.load(source.path)
        except (param_files.ParamFileError, OSError, yaml.YAMLError) as exc:
            raise LaunchError(f"parameter file {source.path}: {exc}") from None
        if not any(param_files.key_matches(str(key), fqn) for key in data):
            warnings.append(f"[launcher] warning: no entry of parameter file {source.path} applies to node "
                            f"{fqn} (keys: {', '.join(map(str, data)) or 'none'}): ROS will ignore the file; "
                            f"key it '/**/{fqn.rsplit('/', 1)[-1]}:' to apply in every namespace")
    for w in warnings:
        print(w, file=sys.stderr, flush=True)
    return warnings


def _as_bool(entity: Entity, key: str, scope: Scope, default: bool) -> bool:
    raw = entity.attrs.get(key)
    if raw is None:
        return default
    if isinstance(raw, bool):
        return raw
    text = evaluate(raw, scope).strip()
    value = yaml.safe_load({"1": "true", "0": "false"}.get(text, text) or "''")
    if not isinstance(value, bool):
        raise entity.error(f"'{key}' must be true or false, got {text!r}")
    return value


def _common(entity: Entity, scope: Scope, base_env: dict[str, str], label: str,
            kind: str, cmd: list[str]) -> ProcessSpec:
    """Fields shared by node and executable: env, cwd, respawn, timeouts, prefix."""
    attrs = entity.attrs
    # launch's ExecuteLocal: the prefix is substituted first, then split like a shell line
    prefix = shlex.split(evaluate(attrs["launch-prefix"], scope)) if "launch-prefix" in attrs else []
    env_set = {k: v for k, v in scope.environ.items() if base_env.get(k) != v}
    for e in attrs.get("env", []):
        env_set[evaluate(e.attrs["name"], scope)] = evaluate(e.attrs["value"], scope)
    on_exit = evaluate(attrs["on_exit"], scope) if "on_exit" in attrs else None
    if on_exit not in (None, "shutdown"):
        raise entity.error(f"on_exit must be 'shutdown', got {on_exit!r}")
    delay = attrs.get("respawn_delay", 0.0)
    if delay < 0:
        raise entity.error("respawn_delay must be >= 0")
    return ProcessSpec(
        label=label, kind=kind, cmd=prefix + cmd,
        env_set=env_set, env_unset=sorted(set(base_env) - set(scope.environ)),
        cwd=evaluate(attrs["cwd"], scope) if "cwd" in attrs else None,
        shell=_as_bool(entity, "shell", scope, False),
        output=evaluate(attrs["output"], scope) if "output" in attrs else "log",
        respawn=_as_bool(entity, "respawn", scope, False), respawn_delay=delay,
        respawn_max_retries=attrs.get("respawn_max_retries", -1),
        sigterm_timeout=attrs.get("sigterm_timeout"), sigkill_timeout=attrs.get("sigkill_timeout"),
        shutdown_on_exit=on_exit == "shutdown", source=entity.where)


def _program(path_text: str, scope: Scope) -> list[str]:
    """A command's first word: a path, or a name found on the launch environment's PATH."""
    if "/" not in path_text:
        found = shutil.which(path_text, path=scope.environ.get("PATH"))
        if found is None:
            raise LaunchError(f"'{path_text}' not found on PATH")
        return [found]
    path = Path(path_text).expanduser()
    if not path.is_file():
        raise LaunchError(f"executable not found: {path}")
    return package_index.command_for(path)


def build_node(entity: Entity, scope: Scope, base_env: dict[str, str]) -> ProcessSpec:
    """A `node` action in the current scope -> its ProcessSpec."""
    a = entity.attrs
    exe = evaluate(a["exec"], scope)
    try:
        if "pkg" in a:
            path = package_index.find_executable(evaluate(a["pkg"], scope), exe, scope.environ)
            cmd = package_index.command_for(path)
        else:
            cmd = _program(exe, scope)
    except LaunchError as exc:
        raise entity.error(str(exc)) from None
    name = evaluate(a["name"], scope) if "name" in a else None
    if name is not None and not _NODE_NAME.match(name):
        raise entity.error(f"invalid node name {name!r}")
    own_ns = evaluate(a["namespace"], scope) if "namespace" in a else None
    ns = absolute_namespace(prefix_namespace(scope.configs.get("ros_namespace"), own_ns))
    if ns is not None and not _NAMESPACE.match(ns):
        raise entity.error(f"invalid namespace {ns!r}")
    cmd += split_cmdline(a["args"], scope) if "args" in a else []
    if "ros_args" in a:
        cmd += ["--ros-args", *split_cmdline(a["ros_args"], scope)]
    cmd.append("--ros-args")
    cmd += ["-r", f"__node:={name}"] if name is not None else []
    cmd += ["-r", f"__ns:={ns}"] if ns is not None else []
    fqn = (ns.rstrip("/") + "/" + name) if name is not None and ns is not None else "/**"
    label = name or (evaluate(a["exec_name"], scope) if "exec_name" in a else Path(exe).name)
    spec = _common(entity, scope, base_env, label, "node", cmd)
    spec.params = node_params(a.get("param", []), scope, fqn)
    if name is not None:
        warn_unmatched_params_files(spec.params, fully_qualified_name(name, ns or ""))
    spec.remaps = [(evaluate(r.attrs["from"], scope), evaluate(r.attrs["to"], scope))
                   for r in a.get("remap", [])]
    return spec


def build_executable(entity: Entity, scope: Scope, base_env: dict[str, str]) -> ProcessSpec:
    """An `executable` action in the current scope -> its ProcessSpec."""
    argv = split_cmdline(entity.attrs["cmd"], scope)
    if not argv:
        raise entity.error("'cmd' is empty")
    shell = _as_bool(entity, "shell", scope, False)
    try:
        cmd = argv if shell else _program(argv[0], scope) + argv[1:]
    except LaunchError as exc:
        raise entity.error(str(exc)) from None
    label = evaluate(entity.attrs["name"], scope) if "name" in entity.attrs else Path(argv[0]).name
    return _common(entity, scope, base_env, label, "process", cmd)
