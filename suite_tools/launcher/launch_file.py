"""Evaluate a YAML launch file into a LaunchPlan: arguments, conditions, includes, groups.

Semantics follow `ros2 launch` (launch + launch_ros frontends):
- `arg` without default must be given (command line `name:=value` or the including file);
  command-line values win over defaults.
- `include` is not scoped: its `arg` values (and anything the included file sets) stay set
  afterwards, as in launch; `$(dirname)` inside the included file is that file's directory.
- `group` is scoped by default (launch configurations, pushed namespace and environment are
  restored after it); `forwarding: false` starts the group from only its `keep` entries.
- `push-ros-namespace` sets the `ros_namespace` launch configuration, like launch_ros.
Pure apart from reading launch files and looking up packages: nothing is started or written.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from suite_tools.launcher.errors import LaunchError
from suite_tools.launcher.plan import LaunchPlan, ProcessSpec
from suite_tools.launcher.process_actions import (absolute_namespace, build_executable,
                                                  build_node, prefix_namespace)
from suite_tools.launcher.schema import Entity, parse_launch_file
from suite_tools.launcher.substitutions import Scope, evaluate, evaluate_condition

_MAX_INCLUDE_DEPTH = 32


class _Evaluator:
    """Walks entities in order, mutating one Scope the way launch's context is mutated."""

    def __init__(self, base_env: dict[str, str]) -> None:
        self.base_env = base_env
        self.processes: list[ProcessSpec] = []
        self.declared: dict[str, str | None] = {}
        self.depth = 0

    def run_file(self, path: Path, scope: Scope) -> None:
        if self.depth >= _MAX_INCLUDE_DEPTH:
            raise LaunchError(f"{path}: includes nested deeper than {_MAX_INCLUDE_DEPTH} "
                              "(an include cycle?)")
        entities = parse_launch_file(path)
        outer_file, scope.file = scope.file, path
        self.depth += 1
        try:
            self.run(entities, scope, top_level=self.depth == 1)
        finally:
            self.depth -= 1
            scope.file = outer_file

    def run(self, entities: list[Entity], scope: Scope, top_level: bool = False) -> None:
        for entity in entities:
            try:
                if not self.condition_holds(entity, scope):
                    continue
                getattr(self, "do_" + entity.kind.replace("-", "_"))(entity, scope, top_level)
            except LaunchError as exc:
                if str(exc).startswith(str(scope.file)):
                    raise
                raise entity.error(str(exc)) from None

    @staticmethod
    def condition_holds(entity: Entity, scope: Scope) -> bool:
        if "if" in entity.attrs:
            return evaluate_condition(evaluate(entity.attrs["if"], scope))
        if "unless" in entity.attrs:
            return not evaluate_condition(evaluate(entity.attrs["unless"], scope))
        return True

    def do_arg(self, entity: Entity, scope: Scope, top_level: bool) -> None:
        name, description = entity.attrs["name"], entity.attrs.get("description")
        if top_level:
            self.declared.setdefault(name, description)
        if name not in scope.configs:
            if "default" not in entity.attrs:
                hint = f" ({description})" if description else ""
                raise entity.error(f"required launch argument '{name}'{hint} was not provided; "
                                   f"pass {name}:=VALUE")
            scope.configs[name] = evaluate(entity.attrs["default"], scope)
        choices = [c.attrs["value"] for c in entity.attrs.get("choice", [])]
        if choices and scope.configs[name] not in choices:
            raise entity.error(f"argument '{name}' is {scope.configs[name]!r}, valid choices "
                               f"are: {', '.join(choices)}")

    def do_let(self, entity: Entity, scope: Scope, top_level: bool) -> None:
        name = evaluate(entity.attrs["name"], scope)
        scope.configs[name] = evaluate(entity.attrs["value"], scope)

    def do_set_env(self, entity: Entity, scope: Scope, top_level: bool) -> None:
        scope.environ[evaluate(entity.attrs["name"], scope)] = evaluate(entity.attrs["value"],
                                                                        scope)

    def do_unset_env(self, entity: Entity, scope: Scope, top_level: bool) -> None:
        scope.environ.pop(evaluate(entity.attrs["name"], scope), None)

    def do_push_ros_namespace(self, entity: Entity, scope: Scope, top_level: bool) -> None:
        pushed = evaluate(entity.attrs["namespace"], scope)
        namespace = absolute_namespace(prefix_namespace(scope.configs.get("ros_namespace"),
                                                        pushed))
        assert namespace is not None
        scope.configs["ros_namespace"] = namespace

    def do_node(self, entity: Entity, scope: Scope, top_level: bool) -> None:
        self.processes.append(build_node(entity, scope, self.base_env))

    def do_executable(self, entity: Entity, scope: Scope, top_level: bool) -> None:
        self.processes.append(build_executable(entity, scope, self.base_env))

    def do_include(self, entity: Entity, scope: Scope, top_level: bool) -> None:
        path = Path(evaluate(entity.attrs["file"], scope)).expanduser()
        path = path if path.is_absolute() else Path.cwd() / path
        if not path.is_file():
            raise entity.error(f"included file not found: {path} (relative paths are taken "
                               "from the working directory, as in ros2 launch; use "
                               "$(dirname)/... for a file next to this one)")
        given = [(evaluate(a.attrs["name"], scope), evaluate(a.attrs["value"], scope))
                 for a in entity.attrs.get("arg", [])]
        names = [n for n, _ in given]
        for inner in parse_launch_file(path):  # launch's best-effort required-argument check
            if inner.kind == "arg" and "default" not in inner.attrs and \
                    not {"if", "unless"} & set(inner.attrs) and inner.attrs["name"] not in names:
                raise entity.error(f"included file {path} requires argument "
                                   f"'{inner.attrs['name']}', given: [{', '.join(names)}]")
        scope.configs.update(given)
        self.run_file(path, scope)

    def do_group(self, entity: Entity, scope: Scope, top_level: bool) -> None:
        scoped = entity.attrs.get("scoped", True)
        forwarding = entity.attrs.get("forwarding", True)
        saved = (dict(scope.configs), dict(scope.environ))
        if not forwarding:
            keep = {evaluate(k.attrs["name"], scope): evaluate(k.attrs["value"], scope)
                    for k in entity.attrs.get("keep", [])}
            scope.configs.clear()
            scope.configs.update(keep)
            scope.environ.clear()
            scope.environ.update(self.base_env)
        try:
            self.run(entity.children, scope)
        finally:
            if scoped:
                scope.configs.clear()
                scope.configs.update(saved[0])
                scope.environ.clear()
                scope.environ.update(saved[1])


def _unique_labels(processes: list[ProcessSpec]) -> None:
    """Two processes with the same name get -2, -3... so output prefixes stay unambiguous."""
    seen: dict[str, int] = {}
    for spec in processes:
        count = seen.get(spec.label, 0) + 1
        seen[spec.label] = count
        if count > 1:
            spec.label = f"{spec.label}-{count}"


def load_launch_file(path: str | os.PathLike[str], args: Mapping[str, str] | None = None,
                     env: Mapping[str, str] | None = None) -> LaunchPlan:
    """Evaluate the launch file at `path` with launch arguments `args` into a LaunchPlan.

    `env` is the environment the graph will run in (default: this process's); `$(env ...)`,
    package lookups (AMENT_PREFIX_PATH) and the processes' environment derive from it.
    """
    file = Path(path).expanduser().absolute()
    base_env = dict(os.environ if env is None else env)
    scope = Scope(configs={k: str(v) for k, v in (args or {}).items()},
                  environ=dict(base_env), file=file)
    evaluator = _Evaluator(base_env)
    evaluator.run_file(file, scope)
    _unique_labels(evaluator.processes)
    return LaunchPlan(file=file, processes=evaluator.processes,
                      declared_args=evaluator.declared, configs=dict(scope.configs))
