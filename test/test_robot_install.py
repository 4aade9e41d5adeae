"""On a robot, the documented install steps install everything the executables import.

The slow test follows the robot steps (README "On a robot", docs/robot.md) in a fresh folder
(scripts/robot_install_check.sh: the ROS 2 wheels stand in for the ROS install, pip for rosdep's
python3-* keys; then the robot's own commands: scripts/robot_deps.sh, a plain colcon build,
`source install/setup.bash`) and starts every executable of lib/coin_lio_suite there until it
shows its help or reaches its working log line. The fast tests check the one-line message for a
missing dependency and the pins.
"""
from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from suite_tools.dependencies import NEEDS

ROOT = Path(__file__).resolve().parents[1]
BLOCKER = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split('.')[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, Block())
"""


def _requirements(name: str) -> dict[str, str]:
    out = {}
    for line in (ROOT / "requirements" / name).read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            pkg, _, version = line.partition("==")
            assert version, f"{name}: '{line}' is not pinned"
            out[pkg.lower().replace("_", "-")] = version
    return out


def test_robot_requirements_are_pinned_to_the_tested_versions_and_cover_every_need():
    tested = _requirements("constraints.txt")
    robot = {**_requirements("robot.txt"), **_requirements("robot-model-files.txt")}
    for pkg, version in robot.items():
        assert tested.get(pkg) == version, f"{pkg}=={version} but the suite is tested with {tested.get(pkg)}"
    providers = importlib.metadata.packages_distributions()
    for exe, modules in NEEDS.items():
        for module in modules:
            dists = {d.lower().replace("_", "-") for d in providers.get(module, [])}
            assert dists & set(robot), f"{exe} imports {module}: no requirements/robot*.txt line installs it"


@pytest.mark.parametrize("exe", sorted(e for e in NEEDS if e != "coin_lio_node"))
def test_missing_dependency_is_one_clear_line(exe):
    code = BLOCKER.format(blocked={"torch", "transformers"}) + \
        f"from learned_nodes.{exe} import main\nsys.exit(main([]))\n"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr[-2000:]
    (line,) = res.stderr.strip().splitlines()
    assert line.startswith(f"{exe} needs torch") and "missing here" in line and "robot_deps.sh" in line


@pytest.mark.parametrize("exe, module", [("bag_player", "rosbags"), ("coin_lio_node", "numba")])
def test_wrapper_turns_an_import_failure_into_one_line(exe, module):
    wrapper = next((Path(p) / "lib/coin_lio_suite" / exe
                    for p in os.environ.get("AMENT_PREFIX_PATH", sys.prefix).split(os.pathsep)
                    if (Path(p) / "lib/coin_lio_suite" / exe).exists()), None)
    if wrapper is None:
        pytest.skip("the package is not built (make setup)")
    code = BLOCKER.format(blocked={module}) + f"exec(open({str(wrapper)!r}).read())\n"
    res = subprocess.run([sys.executable, "-c", code, "--help"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr[-2000:]
    (line,) = res.stderr.strip().splitlines()
    assert line.startswith(f"{exe}: No module named '{module}'") and "robot_deps.sh" in line


# executable -> (arguments, the line that shows it works, a plain exit expected instead of SIGINT)
EXPECT = {
    "coin_lio_node": ([], r"coin_lio: /ouster/points \+ /ouster/imu", False),
    "classifier_node": ([], r"active: serving", False),
    "backbone_node": ([], r"active: serving", False),
    "text_generation_node": ([], r"active: serving", False),
    "topic_monitor": (["--ros-args", "-p", "topics:=['/chatter:std_msgs/msg/String']"], r"monitoring", False),
    # in a namespace of its own: it starts and reports, without talking to the servers above
    "suite_client": (["--ros-args", "-r", "__ns:=/alone", "-p", "listen_s:=0.5", "-p", "wait_s:=0.5"],
                     r"\[suite_client\] odometry:", True),
    "bag_player": (["--help"], r"usage: ", True),
}


ROBOT_INSTALL_GB = 2.5     # measured: the ROS stand-in 0.6 GB + the workspace venv with CPU torch 1.7 GB


def _pip_settings() -> dict[str, str]:
    """This machine's pip settings (package mirror, the local CPU torch wheel) for the clean shell:
    its PIP_* variables and, as PIP_CONFIG_FILE, the user's pip.conf the clean HOME would hide. A
    robot gets the CPU torch from robot.txt's index line instead; without the local wheel pip
    takes the CUDA build from the mirror (+3.4 GB of nvidia/triton wheels)."""
    env = {k: v for k, v in os.environ.items() if k.startswith("PIP_")}
    for conf in (Path.home() / ".config/pip/pip.conf", Path.home() / ".pip/pip.conf"):
        if "PIP_CONFIG_FILE" not in env and conf.exists():
            env["PIP_CONFIG_FILE"] = str(conf)
    env["PIP_NO_CACHE_DIR"] = "1"
    return env


@pytest.mark.slow
@pytest.mark.graph
def test_documented_robot_steps_install_everything_the_executables_import(tmp_path):
    from suite_tools.ros_env import DomainLease

    work = tmp_path / "robot"
    free_gb = shutil.disk_usage(tmp_path).free / 2**30
    if free_gb < ROBOT_INSTALL_GB + 1:
        pytest.skip(f"the robot install takes ~{ROBOT_INSTALL_GB} GB; {tmp_path} has {free_gb:.1f} GB free")
    clean = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8", **_pip_settings()}
    t0 = time.monotonic()
    res = subprocess.run(["bash", str(ROOT / "scripts/robot_install_check.sh"), str(work)], env=clean,
                         capture_output=True, text=True, timeout=1200)
    print(res.stdout, f"install: {time.monotonic() - t0:.0f} s")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    lib = work / "ws/install/coin_lio_suite/lib/coin_lio_suite"
    assert sorted(p.name for p in lib.iterdir()) == sorted(EXPECT)
    assert not any(p.is_symlink() for p in lib.iterdir())            # the plain (copying) build
    with DomainLease() as lease:
        env_cmd = (f"source {work}/env.sh && export ROS_DOMAIN_ID={lease.domain_id} "
                   "ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST && exec \"$0\" \"$@\"")
        procs = {}
        for exe, (args, _, _) in EXPECT.items():
            log = open(tmp_path / f"{exe}.log", "wb")
            procs[exe] = subprocess.Popen(["bash", "-c", env_cmd, str(lib / exe), *args], env=clean,
                                          stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            pending = dict(EXPECT)
            deadline = time.monotonic() + 300
            while pending and time.monotonic() < deadline:
                for exe in list(pending):
                    text = (tmp_path / f"{exe}.log").read_text(errors="replace")
                    if re.search(pending[exe][1], text):
                        del pending[exe]
                    elif procs[exe].poll() is not None and not pending[exe][2]:
                        pytest.fail(f"{exe} exited {procs[exe].returncode}:\n{text[-3000:]}")
                time.sleep(0.5)
            assert not pending, {exe: (tmp_path / f"{exe}.log").read_text()[-1500:] for exe in pending}
        finally:
            for exe, proc in procs.items():
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGINT)
            for exe, proc in procs.items():
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    pytest.fail(f"{exe} did not end on SIGINT")
        for exe, proc in procs.items():
            assert proc.returncode == 0, f"{exe}: exit {proc.returncode}\n" + \
                (tmp_path / f"{exe}.log").read_text(errors="replace")[-2000:]
        print(f"robot install check: {time.monotonic() - t0:.0f} s in all")
