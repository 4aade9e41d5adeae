"""The resolved plan: one ProcessSpec per process, with its final command line and environment.

Built by launch_file.py, run by supervisor.py, printed by `--print`. Inline node parameters are
kept as data (InlineParams) and only written to a params YAML (`<node fqn or /**>:
ros__parameters:`) when the processes start, exactly as launch_ros does.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Union

import yaml


@dataclass(frozen=True)
class ParamsFile:
    """`param: - from: FILE`: passed as --params-file FILE."""

    path: str


@dataclass(frozen=True)
class InlineParams:
    """Parameters given as {name, value} entries, typed like launch_ros (5.0 stays a float)."""

    key: str                      # node fully-qualified name, or '/**' when not fully specified
    values: dict[str, Any]        # flat dotted names -> bool/int/float/str or uniform list

    def render(self) -> str:
        return yaml.safe_dump({self.key: {"ros__parameters": self.values}},
                              default_flow_style=False, sort_keys=False)


ParamSource = Union[ParamsFile, InlineParams]


@dataclass
class ProcessSpec:
    """Everything needed to start (and restart) one process of the graph."""

    label: str                                # output prefix and name in messages
    kind: str                                 # "node" or "process"
    cmd: list[str]                            # argv up to the node's name/namespace remaps
    params: list[ParamSource] = field(default_factory=list)
    remaps: list[tuple[str, str]] = field(default_factory=list)
    env_set: dict[str, str] = field(default_factory=dict)
    env_unset: list[str] = field(default_factory=list)
    cwd: str | None = None
    shell: bool = False
    output: str = "log"
    respawn: bool = False
    respawn_delay: float = 0.0
    respawn_max_retries: int = -1             # < 0: no limit
    sigterm_timeout: float | None = None      # SIGINT -> SIGTERM, None: the supervisor default
    sigkill_timeout: float | None = None      # SIGTERM -> SIGKILL
    shutdown_on_exit: bool = False            # on_exit: shutdown
    source: str = ""                          # where in which launch file it came from

    def params_file_names(self) -> list[str]:
        """File names for the inline parameter blocks, unique within one run."""
        return [f"{self.label}_params_{n}.yaml" for n, p in enumerate(self.params)
                if isinstance(p, InlineParams)]

    def argv(self, params_dir: Path | str) -> list[str]:
        """Full command line; inline params are referenced under `params_dir`."""
        names = iter(self.params_file_names())
        args = list(self.cmd)
        for source in self.params:
            path = source.path if isinstance(source, ParamsFile) else \
                str(Path(params_dir) / next(names))
            args += ["--params-file", path]
        for src, dst in self.remaps:
            args += ["-r", f"{src}:={dst}"]
        if self.shell:
            return ["/bin/sh", "-c", " ".join(args)]
        return args

    def write_params(self, params_dir: Path) -> None:
        """Write the inline parameter files that argv(params_dir) refers to."""
        names = iter(self.params_file_names())
        for source in self.params:
            if isinstance(source, InlineParams):
                (params_dir / next(names)).write_text(source.render())

    def environment(self, base: Mapping[str, str]) -> dict[str, str]:
        """The child's environment: `base` with this action's set_env/unset_env/env applied."""
        env = {k: v for k, v in base.items() if k not in self.env_unset}
        env.update(self.env_set)
        env.setdefault("PYTHONUNBUFFERED", "1")  # line-wise output from Python nodes
        return env


@dataclass
class LaunchPlan:
    """Result of loading a launch file: the processes plus what the file declared."""

    file: Path
    processes: list[ProcessSpec]
    declared_args: dict[str, str | None]      # name -> description
    configs: dict[str, str]                   # final top-level launch configurations

    def __iter__(self) -> Iterator[ProcessSpec]:
        return iter(self.processes)

    def __len__(self) -> int:
        return len(self.processes)

    def __getitem__(self, index: int) -> ProcessSpec:
        return self.processes[index]

    def by_label(self, label: str) -> ProcessSpec:
        for spec in self.processes:
            if spec.label == label:
                return spec
        raise KeyError(f"no process '{label}' in plan (have: "
                       f"{', '.join(p.label for p in self.processes)})")


def describe(plan: LaunchPlan, env_additions: Mapping[str, str] | None = None) -> str:
    """Human-readable plan for `--print`: commands, environment changes, parameter files."""
    lines = [f"# launch plan for {plan.file}: {len(plan)} process(es)"]
    for key, value in sorted((env_additions or {}).items()):
        lines.append(f"# env {key}={value}")
    for spec in plan:
        lines.append(f"[{spec.label}] ({spec.kind}, {spec.source})")
        lines.append(f"  cmd: {shlex.join(spec.argv('$PARAMS_DIR'))}")
        if spec.cwd:
            lines.append(f"  cwd: {spec.cwd}")
        for key, value in spec.env_set.items():
            lines.append(f"  env: {key}={value}")
        for key in spec.env_unset:
            lines.append(f"  env: unset {key}")
        if spec.respawn:
            retries = "unlimited" if spec.respawn_max_retries < 0 else spec.respawn_max_retries
            lines.append(f"  respawn: after {spec.respawn_delay} s, retries {retries}")
        names = iter(spec.params_file_names())
        for source in spec.params:
            if isinstance(source, InlineParams):
                lines.append(f"  $PARAMS_DIR/{next(names)}:")
                lines += ["    " + line for line in source.render().splitlines()]
    return "\n".join(lines)
