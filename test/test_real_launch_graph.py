"""The suite started by the REAL ROS 2 launch engine from the package as `make setup` installs it
(`ros2 launch coin_lio_suite <file> name:=value ...`, through ../shared/ros2-launch/ros2_launch.py):

- coin_lio.launch.yaml with `config:=<custom yaml>`: the node holds the custom values (read back
  through its parameter service) and publishes odometry from a played bag;
- suite.launch.yaml with `enable_classifier:=false enable_backbone:=false`: exactly coin_lio_node
  and text_generation_node start, the text server reaches `active`;
- in both, SIGINT to the engine alone ends every process it started, each cleanly, engine exit 0;
- the launch_pytest tests of real_launch/suite_launch_pytest.py (namespace + custom config, every
  node working, clean shutdown) pass in their own interpreter path (pytest 7.4.4).

Skipped, with the reason, where ../shared/ros2-launch is absent.
"""
from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

rclpy = pytest.importorskip("rclpy")
from lifecycle_msgs.srv import GetState  # noqa: E402
from nav_msgs.msg import Odometry  # noqa: E402
from rcl_interfaces.srv import GetParameters  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402

from real_launch_support import (CUSTOM_ODOMETRY, INPUTS_ENV, REPO, SERVER_PREFIX,  # noqa: E402
                                 SIGTERM_TIMEOUT_S, build_inputs, cmdline, descendants, engine_or_skip, still_running)
from suite_tools.testing import spin_until  # noqa: E402

pytestmark = pytest.mark.graph
INNER = REPO / "test" / "real_launch" / "suite_launch_pytest.py"


@pytest.fixture(scope="module")
def engine(pytestconfig):
    return engine_or_skip(pytestconfig)


@pytest.fixture(scope="module")
def inputs(engine, tmp_path_factory) -> dict[str, str]:
    return build_inputs(tmp_path_factory.mktemp("real_launch_inputs"))


@pytest.fixture
def real_graph(ros_context, graph, engine, tmp_path):
    """The isolated graph (own domain, localhost, FastDDS profile) with the engine's paths."""
    graph.env.update(engine.env(graph.env), ROS_LOG_DIR=str(tmp_path / "ros_log"))
    return graph


def _call(node, srv_type, name: str, request, timeout: float):
    client = node.create_client(srv_type, name)
    assert client.wait_for_service(timeout_sec=timeout), f"{name} never appeared"
    future = client.call_async(request)
    rclpy.spin_until_future_complete(node, future, timeout_sec=timeout)
    assert future.result() is not None, f"{name} did not answer in {timeout} s"
    node.destroy_client(client)
    return future.result()


def _package_children(engine_pid: int) -> dict[str, tuple[int, int]]:
    """{executable: (pid, start time)} of the engine's children that run a package executable."""
    found = {}
    for pid, start in descendants(engine_pid).items():
        exe = next((Path(w).name for w in cmdline(pid).split() if "/lib/coin_lio_suite/" in w), None)
        if exe:
            found[exe] = (pid, start)
    return found


def _sigint_ends_everything(graph, name: str, expected: set[str]) -> None:
    """SIGINT to the engine process alone (not its group): every descendant ends, each node
    'finished cleanly', the engine exits 0."""
    proc = graph.procs[name]
    children = _package_children(proc.pid)
    assert set(children) == expected, f"{children}\n{graph.log(name)[-3000:]}"
    everything = descendants(proc.pid)
    os.kill(proc.pid, signal.SIGINT)
    assert graph.wait(name, timeout=SIGTERM_TIMEOUT_S + 20) == 0, graph.log(name)[-3000:]
    left = still_running(everything)
    assert left == [], f"still running after the engine exited: {[cmdline(p) for p in left]}"
    log = graph.log(name)
    assert log.count("process has finished cleanly") == len(expected) and "process has died" not in log, \
        log[-3000:]


def test_coin_lio_launch_applies_a_custom_config_and_publishes_odometry(engine, inputs, real_graph):
    node = rclpy.create_node("real_launch_probe")
    poses: list = []
    node.create_subscription(Odometry, "/coin_lio_node/odometry", poses.append,
                             QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
    real_graph.spawn("engine", engine.launch_cmd("coin_lio_suite", "coin_lio.launch.yaml",
                                                 f"config:={inputs['odometry_config']}",
                                                 f"sigterm_timeout:={SIGTERM_TIMEOUT_S}"))
    res = _call(node, GetParameters, "/coin_lio_node/get_parameters",
                GetParameters.Request(names=list(CUSTOM_ODOMETRY)), timeout=60)
    got = {"path_every": res.values[0].integer_value, "imu_wait": res.values[1].double_value}
    assert got == CUSTOM_ODOMETRY, real_graph.log("engine")[-3000:]
    assert spin_until(node, lambda: node.count_publishers("/coin_lio_node/odometry") > 0, 30)
    real_graph.spawn("player", real_graph.python_cmd("-m", "suite_tools.bag_player", inputs["bag"],
                                                     "--wait-subscribers", "1", "--quiet"))
    assert spin_until(node, lambda: len(poses) >= 5, 60), \
        f"{len(poses)} poses\n{real_graph.log('engine')[-3000:]}\n{real_graph.log('player')[-1000:]}"
    real_graph.interrupt("player")
    _sigint_ends_everything(real_graph, "engine", {"coin_lio_node"})
    node.destroy_node()


def test_suite_launch_enable_flags_and_sigint(engine, inputs, real_graph):
    node = rclpy.create_node("real_launch_probe")
    real_graph.spawn("engine", engine.launch_cmd(
        "coin_lio_suite", "suite.launch.yaml", "enable_classifier:=false", "enable_backbone:=false",
        f"text_model_path:={inputs['text_model']}", f"model_server_prefix:={SERVER_PREFIX}",
        f"sigterm_timeout:={SIGTERM_TIMEOUT_S}"))
    deadline = time.monotonic() + 120
    state = ""
    while state != "active" and time.monotonic() < deadline:
        state = _call(node, GetState, "/text_generation_node/get_state", GetState.Request(),
                      timeout=max(1.0, deadline - time.monotonic())).current_state.label
        if state != "active":
            rclpy.spin_once(node, timeout_sec=0.5)    # the model is loading: ask again shortly
    assert state == "active", real_graph.log("engine")[-3000:]
    _sigint_ends_everything(real_graph, "engine", {"coin_lio_node", "text_generation_node"})
    node.destroy_node()


def test_suite_launch_pytest_tests_pass_in_their_own_interpreter(engine, inputs, real_graph, tmp_path):
    inputs_file = tmp_path / "inputs.json"
    inputs_file.write_text(json.dumps(inputs))
    real_graph.env.update({INPUTS_ENV: str(inputs_file), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"})
    real_graph.spawn("inner", engine.pytest_cmd(str(INNER), "-v", "-p", "no:cacheprovider",
                                                "--basetemp", str(tmp_path / "inner")), cwd=REPO)
    rc = real_graph.wait("inner", timeout=400)
    out = real_graph.log("inner")
    print(out)                                       # shown by pytest when this test fails
    assert rc == 0, out[-6000:]
    assert "pytest-7.4.4" in out and "4 passed" in out, out[-3000:]
