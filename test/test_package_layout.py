"""The package is what colcon, ros2 run and pip expect, and the import rules hold:
coin_lio and learned_nodes never import each other, torch only under learned_nodes; nodes have the
ros2/demos shape (the Node class at module level, its config in a `<node module>_config.py` that
imports without rclpy)."""
from __future__ import annotations

import ast
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _setup_entry_points() -> dict[str, str]:
    tree = ast.parse((ROOT / "setup.py").read_text())
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and node.targets[0].id in ("NODES", "TOOLS"):
            for elt in node.value.elts:
                name, target = elt.value.split("=")
                out[name.strip()] = target.strip()
    return out


def _cmake_executables() -> dict[str, str]:
    text = (ROOT / "CMakeLists.txt").read_text()
    block = re.search(r"set\(SUITE_EXECUTABLES(.*?)\)", text, re.S).group(1)
    return dict(entry.split("=") for entry in re.findall(r'"([^"]+)"', block))


def test_package_xml_is_format_3_ament_cmake():
    root = ET.parse(ROOT / "package.xml").getroot()
    assert root.get("format") == "3" and root.findtext("name") == "coin_lio_suite"
    assert root.find("export/build_type").text == "ament_cmake"
    assert root.find("member_of_group").text == "rosidl_interface_packages"


def test_every_cmake_executable_is_a_console_script_with_the_same_target():
    scripts = _setup_entry_points()
    for exe, target in _cmake_executables().items():
        assert scripts.get(exe) == target, f"{exe}: CMake says {target}, setup.py {scripts.get(exe)}"


def test_every_entry_point_resolves():
    import importlib

    for name, target in _setup_entry_points().items():
        module, func = target.split(":")
        if module.startswith(("learned_nodes",)) and importlib.util.find_spec("torch") is None:
            continue
        assert callable(getattr(importlib.import_module(module), func)), name


def test_interfaces_listed_in_cmake_exist():
    text = (ROOT / "CMakeLists.txt").read_text()
    for rel in re.findall(r'"((?:msg|srv|action)/\w+\.(?:msg|srv|action))"', text):
        assert (ROOT / rel).exists(), rel
    assert {p.name for p in (ROOT / "srv").glob("*.srv")} == {"ClassifyImage.srv", "EmbedImage.srv",
                                                               "GenerateText.srv"}


def _imports(package: str) -> set[str]:
    found = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package, forbidden", [
    ("coin_lio", {"learned_nodes", "torch", "transformers", "safetensors"}),
    ("learned_nodes", {"coin_lio"}),
    ("suite_tools", {"torch", "learned_nodes", "transformers", "coin_lio"}),   # the shared base
    ("suite_apps", {"torch", "transformers"}),
])
def test_import_rules_in_source(package, forbidden):
    assert not (_imports(package) & forbidden), f"{package} imports {_imports(package) & forbidden}"


def _module_imports(path: Path) -> set[str]:
    """Full dotted names of the modules a file imports (absolute imports)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_real_sensor_code_does_not_depend_on_the_simulator():
    """coin_lio.sim renders what coin_lio.io models; never the other way (and nothing else
    outside the simulator and the evaluation reaches into it)."""
    for path in (ROOT / "coin_lio").rglob("*.py"):
        rel = path.relative_to(ROOT / "coin_lio").parts
        if rel[0] in ("sim", "eval"):
            continue
        bad = {m for m in _module_imports(path) if m == "coin_lio.sim" or m.startswith("coin_lio.sim.")}
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_import_coin_lio_loads_neither_torch_nor_rclpy():
    code = ("import sys, coin_lio, coin_lio.io.scan, coin_lio.config, suite_tools.pointcloud2; "
            "bad = [m for m in ('torch', 'rclpy', 'learned_nodes') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr


def test_loading_the_odometry_config_needs_no_opencv():
    code = ("import sys; from coin_lio.node_config import load_node_config; "
            f"load_node_config({str(ROOT / 'config' / 'coin_lio.yaml')!r}); "
            "bad = [m for m in ('cv2', 'torch', 'rclpy') if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr


NODE_PACKAGES = ("coin_lio", "learned_nodes", "suite_tools", "suite_apps")
NODE_BASES = {"Node", "LifecycleNode", "ModelServerNode"}


def _base_name(expr: ast.expr) -> str:
    """'Node' for Node, rclpy.node.Node and Generic-style ModelServerNode[Cfg]."""
    if isinstance(expr, ast.Subscript):
        expr = expr.value
    if isinstance(expr, ast.Attribute):
        return expr.attr
    return expr.id if isinstance(expr, ast.Name) else ""


def _is_node_class(cls: ast.ClassDef, node_bases: set[str]) -> bool:
    return any(_base_name(b) in node_bases for b in cls.bases)


def _node_classes_in_functions(tree: ast.AST, node_bases: set[str]) -> list[tuple[str, int]]:
    """(name, line) of every class deriving (by base name) from a node class that a function body
    defines (the `_make_node()` factory shape)."""
    found = set()
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found |= {(c.name, c.lineno) for c in ast.walk(fn)
                      if isinstance(c, ast.ClassDef) and _is_node_class(c, node_bases)}
    return sorted(found)


def _parsed_sources() -> dict[Path, ast.AST]:
    return {path: ast.parse(path.read_text()) for package in NODE_PACKAGES
            for path in sorted((ROOT / package).rglob("*.py"))}


def _all_node_bases(trees) -> set[str]:
    """NODE_BASES and every class of the tree that derives from one of them (a subclass of a
    subclass counts too)."""
    bases = set(NODE_BASES)
    while True:
        more = {c.name for tree in trees for c in ast.walk(tree)
                if isinstance(c, ast.ClassDef) and _is_node_class(c, bases)} - bases
        if not more:
            return bases
        bases |= more


def test_the_node_finder_sees_a_factory_class():
    snippet = ("def _make_node():\n    from rclpy.node import Node\n\n"
               "    class Monitor(rclpy.node.Node):\n        pass\n\n"
               "    class Server(ModelServerNode[Cfg]):\n        pass\n    return Monitor()\n\n"
               "class AtModuleLevel(Node):\n    pass\n")
    assert _node_classes_in_functions(ast.parse(snippet), NODE_BASES) == [("Monitor", 4), ("Server", 7)]


def test_node_classes_are_defined_at_module_level():
    """ros2/demos shape: a node class lives at module level (importable, subclassable, visible to
    tools), never inside a factory function; the module imports rclpy at its top."""
    trees = _parsed_sources()
    bases = _all_node_bases(trees.values())
    bad = [f"{path.relative_to(ROOT)}:{line} class {name}"
           for path, tree in trees.items() for name, line in _node_classes_in_functions(tree, bases)]
    assert not bad, "node classes defined inside a function:\n" + "\n".join(bad)


def _node_modules() -> list[str]:
    """The modules of the node executables (setup.py NODES) that define a node class."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    nodes = next(n for n in ast.walk(tree) if isinstance(n, ast.Assign) and n.targets[0].id == "NODES")
    modules = [elt.value.split("=")[1].split(":")[0].strip() for elt in nodes.value.elts]
    out = []
    for module in modules:
        source = ast.parse((ROOT / (module.replace(".", "/") + ".py")).read_text())
        if any(isinstance(c, ast.ClassDef) and _is_node_class(c, NODE_BASES) for c in ast.walk(source)):
            out.append(module)
    return out


def test_every_node_module_is_found():
    assert set(_node_modules()) == {"coin_lio.node", "learned_nodes.classifier_node", "learned_nodes.backbone_node",
                                    "learned_nodes.text_generation_node", "suite_tools.topic_monitor"}


@pytest.mark.parametrize("node_module", _node_modules())
def test_each_node_config_module_imports_without_rclpy(node_module):
    """Offline tools and tests read a node's config (and its params YAML) without ROS: the node's
    `<module>_config` holds its config dataclasses and imports neither rclpy nor torch."""
    config_module = node_module + "_config"
    assert (ROOT / (config_module.replace(".", "/") + ".py")).is_file(), f"{node_module}: no {config_module}"
    code = (f"import sys, dataclasses, {config_module} as m; "
            "configs = [v for v in vars(m).values() if dataclasses.is_dataclass(v) and v.__module__ == m.__name__]; "
            "assert configs, 'no config dataclass'; [c() for c in configs]; "
            "bad = [x for x in ('rclpy', 'torch') if x in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert res.returncode == 0, f"{config_module}: " + res.stdout + res.stderr


def _installed_executable(name: str) -> Path | None:
    import os

    for prefix in os.environ.get("AMENT_PREFIX_PATH", sys.prefix).split(os.pathsep):
        path = Path(prefix) / "lib" / "coin_lio_suite" / name
        if path.exists() or path.is_symlink():
            return path
    return None


def test_installed_executables_run_as_the_real_launch_engine_starts_them():
    """ros2 launch / ros2 run start lib/coin_lio_suite/<exe> only if it is an executable file
    (a --symlink-install build installs symlinks: the generated file's own mode counts), and
    start it by its shebang: that Python must have the package, with no environment activated."""
    import os

    for exe in _cmake_executables():
        path = _installed_executable(exe)
        if path is None:
            pytest.skip("the package is not built into AMENT_PREFIX_PATH (run make setup)")
        assert os.access(path, os.X_OK), f"{path} is not executable (mode {path.stat().st_mode:o})"
        interpreter = path.read_text().splitlines()[0][2:].strip()
        assert os.access(interpreter, os.X_OK), f"{exe}: shebang interpreter {interpreter} missing"
    # no venv on PATH, no VIRTUAL_ENV: the shebang alone must find the package
    clean = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp"), "ROS_DOMAIN_ID": "232",
             "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    res = subprocess.run([str(_installed_executable("bag_player")), "--help"], env=clean,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "usage:" in res.stdout, res.stderr[-2000:]


def test_tf2_msgs_is_the_upstream_type():
    """/tf consumers on a robot must accept our TFMessage: the stand-in that setup builds (or a
    real tf2_msgs) has upstream's type hash (rosbags' Kilted type store has upstream's)."""
    import os

    pytest.importorskip("tf2_msgs.msg", reason="tf2_msgs is not built (run make setup)")
    from rosbags.typesys import Stores, get_typestore

    import tf2_msgs

    share = [Path(p) / "share/tf2_msgs/msg/TFMessage.json"
             for p in os.environ.get("AMENT_PREFIX_PATH", sys.prefix).split(os.pathsep)]
    desc = next((p for p in share if p.exists()), None)
    assert desc is not None, f"no TFMessage type description next to {tf2_msgs.__file__}"
    expected = get_typestore(Stores.ROS2_KILTED).hash_rihs01("tf2_msgs/msg/TFMessage")
    assert f'"hash_string": "{expected}"' in desc.read_text()
