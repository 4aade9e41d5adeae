"""Every launch file of the suite (launch/ and test/launch/) loads in the REAL ROS 2 launch engine
(upstream launch + launch_ros, Jazzy; suite_tools.real_launch), as `ros2 launch --print` and
`ros2 launch --show-args` load it: each top-level entity becomes the upstream action it should be,
and every declared argument is listed with its description and default.

Skipped, with the reason, where ../shared/ros2-launch is absent; the engine is built once per
checkout into .cache/ (about a minute the first time).
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from real_launch_support import REPO, engine_or_skip

pytestmark = pytest.mark.graph      # spawns processes (the engine), though no DDS graph
FILES = sorted((REPO / "launch").glob("*.yaml")) + sorted((REPO / "test" / "launch").glob("*.yaml"))
TOP = re.compile(r"^[├└]── (.*)$", re.M)   # the top-level lines of print_a_launch_file's tree


@pytest.fixture(scope="module")
def engine(pytestconfig):
    return engine_or_skip(pytestconfig)


def _ros2_launch(engine, *args: str, tmp_path: Path) -> str:
    env = engine.env()
    env["ROS_LOG_DIR"] = str(tmp_path / "ros_log")
    run = subprocess.run(engine.launch_cmd(*args), env=env, capture_output=True, text=True, timeout=60)
    out = run.stdout + run.stderr
    assert run.returncode == 0 and "Traceback" not in out, out[-4000:]
    return run.stdout


def _expected_action(kind: str, body: dict) -> str:
    """The start of the line upstream's LaunchIntrospector prints for a YAML entity."""
    if kind == "node" and "pkg" in body:
        return f"ExecuteProcess(cmd=[ExecInPkg(pkg='{body['pkg']}', exec='{body['exec']}')"
    return {"arg": "Action('<launch.actions.declare_launch_argument.DeclareLaunchArgument ",
            "include": "Action('<launch.actions.include_launch_description.IncludeLaunchDescription ",
            "group": "Action('<launch.actions.group_action.GroupAction ",
            "node": "ExecuteProcess(cmd=[", "executable": "ExecuteProcess(cmd=["}[kind]


def _entities(path: Path) -> list[tuple[str, dict]]:
    items = yaml.safe_load(path.read_text())["launch"]
    return [next(iter(item.items())) for item in items]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_launch_file_parses_into_the_upstream_actions(engine, path, tmp_path):
    out = _ros2_launch(engine, "--print", str(path), tmp_path=tmp_path)
    assert "<launch.launch_description.LaunchDescription object" in out, out
    top = TOP.findall(out)
    entities = _entities(path)
    assert len(top) == len(entities), out
    for line, (kind, body) in zip(top, entities):
        assert line.startswith(_expected_action(kind, body)), f"{kind} {body} printed as {line}"


def _declared_args(path: Path) -> list[dict]:
    """The arguments `ros2 launch --show-args` lists: the file's own, then those of the files it
    includes (first declaration of each name wins), in order."""
    found: list[dict] = []
    for kind, body in _entities(path):
        if kind == "arg":
            found.append(body)
        elif kind == "include":
            found += _declared_args(Path(body["file"].replace("$(find-pkg-share coin_lio_suite)", str(REPO))))
    names: set[str] = set()
    return [a for a in found if not (a["name"] in names or names.add(a["name"]))]


ARG_FILES = [p for p in FILES if _declared_args(p)]


@pytest.mark.parametrize("path", ARG_FILES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_launch_file_arguments_as_ros2_launch_shows_them(engine, path, tmp_path):
    out = _ros2_launch(engine, "--show-args", str(path), tmp_path=tmp_path)
    args = _declared_args(path)
    assert re.findall(r"^    '(\w+)':$", out, re.M) == [a["name"] for a in args], out
    for arg in args:
        block = f"    '{arg['name']}':\n        {arg.get('description', 'no description given')}\n"
        default = arg.get("default")
        if default is not None and "$(" not in str(default):      # a literal default, shown as is
            block += f"        (default: '{default}')\n"
        assert block in out, f"expected\n{block}in\n{out}"
        if default is None:                                          # required: no default shown
            assert not out.split(block, 1)[1].lstrip().startswith("(default"), out
