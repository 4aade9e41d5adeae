"""Launcher parsing and evaluation on launch files written to tmp_path: no process is started."""
from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from suite_tools.launcher import InlineParams, LaunchError, ParamsFile, load_launch_file
from suite_tools.launcher.cli import main as cli_main
from suite_tools.launcher.schema import parse_launch_file
from suite_tools.launcher.substitutions import Scope, evaluate, parse_template

REPO = Path(__file__).resolve().parents[1]
ECHO = "/bin/echo"


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def load(tmp_path: Path, body: str, args: dict | None = None, env: dict | None = None):
    path = write(tmp_path / "main.launch.yaml", "launch:\n" + textwrap.indent(
        textwrap.dedent(body), "  "))
    return load_launch_file(path, args or {}, env if env is not None else dict(os.environ))


def cmd_of(plan, label: str) -> list[str]:
    return plan.by_label(label).argv("/P")


def test_args_defaults_overrides_and_required(tmp_path):
    body = """
    - arg: {name: rate, default: "10.0"}
    - arg: {name: mode, default: a, choice: [{value: a}, {value: b}]}
    - arg: {name: out, description: where to write}
    - executable: {cmd: "/bin/echo $(var rate) $(var mode) $(var out)", name: e}
    """
    plan = load(tmp_path, body, {"out": "x y", "mode": "b"})
    assert cmd_of(plan, "e") == [ECHO, "10.0", "b", "x y"]  # a substitution result stays whole
    assert set(plan.declared_args) == {"rate", "mode", "out"}
    with pytest.raises(LaunchError, match=r"required launch argument 'out' \(where to write\)"):
        load(tmp_path, body)
    with pytest.raises(LaunchError, match="valid choices"):
        load(tmp_path, body, {"out": "o", "mode": "c"})


@pytest.mark.parametrize("text, expected", [
    ("$(var a)-$(env HOME_X fallback)", "A-fallback"),
    ("$(optenv NOT_SET_X)|$(env SET_X)", "|set"),
    ("$(var $(var which))", "A"),
    ("$(eval \"'$(var a)' == 'A' and 2 + 3 == 5\")", "True"),
    ("$(eval '1 if \"$(var a)\" in (\"A\", \"B\") else 0')", "1"),
    ("$(dirname)/x \\$(not a subst) it's", "/d/x $(not a subst) it's"),
    ("$(var missing 'de fault')", "de fault"),
])
def test_substitutions(text, expected):
    scope = Scope({"a": "A", "which": "a"}, {"SET_X": "set"}, Path("/d/f.launch.yaml"))
    assert evaluate(parse_template(text), scope) == expected


@pytest.mark.parametrize("bad", ["$(var a", "$(var  a)", "cost $5", "$(eval __import__('os'))",
                                 "$(eval (1).real)", "$(nope x)", "$(var undefined)"])
def test_substitution_errors(bad):
    scope = Scope({"a": "A"}, {}, Path("/d/f.yaml"))
    with pytest.raises(LaunchError):
        evaluate(parse_template(bad), scope)


def test_conditions(tmp_path):
    body = """
    - arg: {name: flag, default: "True"}
    - executable: {cmd: /bin/echo 1, name: a, if: $(var flag)}
    - executable: {cmd: /bin/echo 2, name: b, unless: $(var flag)}
    - executable: {cmd: /bin/echo 3, name: c, if: "0"}
    """
    assert [p.label for p in load(tmp_path, body)] == ["a"]
    assert [p.label for p in load(tmp_path, body, {"flag": "false"})] == ["b"]
    with pytest.raises(LaunchError, match="invalid condition expression 'yes'"):
        load(tmp_path, body, {"flag": "yes"})
    with pytest.raises(LaunchError, match="'if' and 'unless' cannot be used together"):
        load(tmp_path, "- executable: {cmd: /bin/echo, if: '1', unless: '1'}")


def test_include_args_dirname_and_leak(tmp_path):
    sub = tmp_path / "sub"
    sub.mkdir()
    write(sub / "inner.launch.yaml", """\
        launch:
          - arg: {name: who}
          - let: {name: from_inner, value: "$(var who)!"}
          - executable: {cmd: "/bin/echo $(dirname) $(var who)", name: inner}
        """)
    body = """
    - include:
        file: $(dirname)/sub/inner.launch.yaml
        arg: [{name: who, value: me}]
    - executable: {cmd: "/bin/echo $(var from_inner)", name: outer}
    """
    plan = load(tmp_path, body)
    assert cmd_of(plan, "inner") == [ECHO, str(sub), "me"]
    assert cmd_of(plan, "outer") == [ECHO, "me!"]  # includes are not scoped, as in launch
    with pytest.raises(LaunchError, match="requires argument 'who'"):
        load(tmp_path, "- include: {file: $(dirname)/sub/inner.launch.yaml}")


def test_groups_namespaces_and_env(tmp_path):
    node = "{exec: /bin/echo, name: n%d}"
    body = f"""
    - set_env: {{name: LAUNCH_X, value: outer}}
    - group:
        children:
          - push-ros-namespace: {{namespace: robot}}
          - let: {{name: inner_only, value: "1"}}
          - set_env: {{name: LAUNCH_X, value: inner}}
          - node: {node % 1}
          - group:
              scoped: false
              children:
                - push_ros_namespace: {{namespace: sensors/}}
          - node: {{exec: /bin/echo, name: n2, namespace: lidar}}
          - node: {{exec: /bin/echo, name: n3, namespace: /abs}}
    - node: {node % 4}
    - executable: {{cmd: "/bin/echo $(optenv LAUNCH_X) $(var inner_only 'gone')", name: e}}
    """
    plan = load(tmp_path, body)
    ns = {p.label: [a for a in p.cmd if a.startswith("__ns:=")] for p in plan}
    assert ns == {"n1": ["__ns:=/robot"], "n2": ["__ns:=/robot/sensors/lidar"],
                  "n3": ["__ns:=/abs"], "n4": [], "e": []}
    assert plan.by_label("n1").env_set["LAUNCH_X"] == "inner"
    assert cmd_of(plan, "e") == [ECHO, "outer", "gone"]
    assert cmd_of(plan, "n1") == [ECHO, "--ros-args", "-r", "__node:=n1", "-r", "__ns:=/robot"]


def test_node_params_typing_and_command_line(tmp_path):
    params = write(tmp_path / "p.yaml", "/**:\n  ros__parameters: {a: 1}\n")
    body = f"""
    - let: {{name: f, value: "5.0"}}
    - node:
        exec: /bin/echo
        name: talker
        namespace: ns
        args: "--verbose 'two words'"
        ros_args: --log-level debug
        param:
          - {{name: as_float, value: 5.0}}
          - {{name: as_int, value: 5}}
          - {{name: quoted, value: "5"}}
          - {{name: subst, value: $(var f)}}
          - {{name: mixed, value: [1, 2.5]}}
          - {{name: group, param: [{{name: inner, value: true}}]}}
          - {{from: {params}}}
          - {{name: last, value: x}}
        remap: [{{from: chatter, to: /chatter}}]
    """
    spec = load(tmp_path, body).by_label("talker")
    assert spec.argv("/P") == [
        ECHO, "--verbose", "two words", "--ros-args", "--log-level", "debug", "--ros-args",
        "-r", "__node:=talker", "-r", "__ns:=/ns", "--params-file", "/P/talker_params_0.yaml",
        "--params-file", str(params), "--params-file", "/P/talker_params_2.yaml",
        "-r", "chatter:=/chatter"]
    first, from_file, last = spec.params
    assert isinstance(from_file, ParamsFile) and isinstance(last, InlineParams)
    rendered = yaml.safe_load(first.render())
    assert rendered == {"/ns/talker": {"ros__parameters": {
        "as_float": 5.0, "as_int": 5, "quoted": "5", "subst": 5.0, "mixed": [1.0, 2.5],
        "group.inner": True}}}
    assert "as_float: 5.0" in first.render()  # floats stay floats on the wire
    with pytest.raises(LaunchError, match="one type"):
        load(tmp_path, "- node: {exec: /bin/echo, param: [{name: p, value: [1, a]}]}")


def test_package_executable_resolution(tmp_path):
    prefix = tmp_path / "prefix"
    (prefix / "share/ament_index/resource_index/packages").mkdir(parents=True)
    (prefix / "share/ament_index/resource_index/packages/fake_pkg").touch()
    lib = prefix / "lib" / "fake_pkg"
    lib.mkdir(parents=True)
    write(lib / "py_node", "#!/usr/bin/env python3\nprint('hi')\n").chmod(0o755)
    env = {**os.environ, "AMENT_PREFIX_PATH": str(prefix)}
    body = """
    - node: {pkg: fake_pkg, exec: py_node, name: a}
    - executable: {cmd: "$(find-pkg-share fake_pkg) $(find-pkg-prefix fake_pkg)", name: b,
                   shell: true}
    """
    plan = load(tmp_path, body, env=env)
    assert plan.by_label("a").cmd[:2] == [sys.executable, str(lib / "py_node")]
    assert plan.by_label("b").argv("/P")[-1] == f"{prefix}/share/fake_pkg {prefix}"
    with pytest.raises(LaunchError, match=r"executable 'nope'.*looked at: .*lib/fake_pkg/nope"
                                          r".*available: py_node"):
        load(tmp_path, "- node: {pkg: fake_pkg, exec: nope}", env=env)
    with pytest.raises(LaunchError, match="package 'other_pkg' not found"):
        load(tmp_path, "- node: {pkg: other_pkg, exec: x}", env=env)


@pytest.mark.parametrize("body, message", [
    ("- nodes: {exec: x}", "unknown action 'nodes'"),
    ("- timer: {period: '1.0'}", "valid in ros2 launch but not supported"),
    ("- node: {exec: /bin/echo, nmae: x}", r"main.launch.yaml: launch\[0\].node: unknown key"),
    ("- node: {exec: /bin/echo, respawn: true}", "write respawn: 'true'"),
    ("- node: {exec: /bin/echo, respawn_delay: 1}", "write respawn_delay: 1.0"),
    ("- arg: {name: a, default: 5}", "needs a string"),
    ("- executable: {cmd: /bin/echo, args: x}", "unknown key.*'args'.*put the arguments in 'cmd'"),
    ("- node: {exec: /bin/echo, param: [{name: p, vale: 1}]}", r"param\[0\]: unknown key"),
    ("- include: {file: nowhere.launch.yaml}", "included file not found"),
    ("- node: {exec: /bin/echo, name: 'bad-name'}", "invalid node name"),
    ("- node: {exec: /bin/echo, param: [{from: /etc/hostname, allow_substs: true}]}",
     "not supported"),
])
def test_clear_errors(tmp_path, body, message):
    with pytest.raises(LaunchError, match=message):
        load(tmp_path, body)


def test_cli_print_and_errors(tmp_path, capsys):
    path = write(tmp_path / "x.launch.yaml", """\
        launch:
          - arg: {name: word, description: what to say}
          - executable: {cmd: /bin/echo $(var word), name: say}
        """)
    assert cli_main([str(path), "word:=hi", "--print"]) == 0
    assert "cmd: /bin/echo hi" in capsys.readouterr().out
    assert cli_main([str(path)]) == 2
    assert "required launch argument 'word'" in capsys.readouterr().err
    assert cli_main([str(path), "-s"]) == 0
    assert "'word':" in capsys.readouterr().out


def test_cli_package_and_file_name(tmp_path, capsys, monkeypatch):
    """`coin-lio-suite-launch PKG FILE` finds FILE under the package's share dir."""
    share = tmp_path / "share" / "fake_pkg" / "launch"
    share.mkdir(parents=True)
    (tmp_path / "share/ament_index/resource_index/packages").mkdir(parents=True)
    (tmp_path / "share/ament_index/resource_index/packages/fake_pkg").touch()
    write(share / "demo.launch.yaml", "launch:\n  - executable: {cmd: /bin/echo $(dirname)}\n")
    monkeypatch.setenv("AMENT_PREFIX_PATH", str(tmp_path))
    assert cli_main(["fake_pkg", "demo.launch.yaml", "--print", "unused:=1"]) == 0
    captured = capsys.readouterr()
    assert f"cmd: /bin/echo {share}" in captured.out
    assert "argument 'unused' is not declared" in captured.err


LAUNCH_FILES = sorted((REPO / "launch").glob("*.yaml")) + sorted((REPO / "test/launch").glob(
    "*.yaml"))


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_repository_launch_files_are_well_formed(path):
    assert parse_launch_file(path) is not None


def test_launch_prefix_is_split_after_substitution(tmp_path):
    """As launch's ExecuteLocal: `launch-prefix: $(var p)` with p = 'nice -n 10' gives three words;
    an empty prefix gives none."""
    body = """
    - arg: {name: p, default: "nice -n 10"}
    - node: {exec: /bin/echo, name: a, launch-prefix: "$(var p)"}
    - node: {exec: /bin/echo, name: b, launch-prefix: ""}
    """
    plan = load(tmp_path, body)
    assert cmd_of(plan, "a")[:4] == ["nice", "-n", "10", ECHO]
    assert cmd_of(plan, "b")[0] == ECHO


def test_suite_namespace_reaches_every_node():
    """`namespace:=robot1` puts every node of the suite under /robot1 (one robot's suite); the
    sensor topics stay as configured (absolute by default)."""
    from suite_tools.ros_env import ensure_ament_prefix

    env = dict(os.environ)
    ensure_ament_prefix(env)
    plan = load_launch_file(REPO / "launch/suite.launch.yaml", {"namespace": "robot1"}, env)
    ns = {p.label: [a for a in p.argv("/P") if a.startswith("__ns:=")] for p in plan}
    assert set(ns) == {"coin_lio_node", "classifier_node", "backbone_node", "text_generation_node"}
    assert all(v == ["__ns:=/robot1"] for v in ns.values()), ns
    plain = load_launch_file(REPO / "launch/suite.launch.yaml", {}, env)
    assert all([a for a in p.argv("/P") if a.startswith("__ns:=")] in ([], ["__ns:=/"]) for p in plain)
