"""launch/suite.launch.yaml under the REAL ROS 2 launch engine, as launch_pytest tests: the package
as `make setup` installs it (share/coin_lio_suite in the venv), included the way a robot's own
launch file would include it, with `namespace:=robot1` and a custom `odometry_config:=`.

Every node reaches its working state: the three lifecycle servers report `active` through their
get_state service, coin_lio_node holds the custom config's values (read back through its parameter
service) and publishes ~/odometry while a bag is played into it. At shutdown every process the
engine started has exited cleanly and none was respawned.

Needs pytest < 8.4 (launch_pytest of the Jazzy branch): test_real_launch_graph.py runs this file in
its own interpreter path (pytest 7.4.4 first on PYTHONPATH); the outer run does not collect it (its
name). By hand: `eval "$(python -m suite_tools.real_launch | grep ^export)"`, then
`PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 python -m pytest -p launch_pytest.plugin test/real_launch/suite_launch_pytest.py`
with ROS_DOMAIN_ID, ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST and the FastDDS profile set.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import launch
import launch_pytest
import pytest
import rclpy
from ament_index_python.packages import get_package_share_directory
from launch.actions import IncludeLaunchDescription, RegisterEventHandler, SetLaunchConfiguration
from launch.event_handlers import OnProcessExit, OnProcessStart
from launch.launch_description_sources import AnyLaunchDescriptionSource
from lifecycle_msgs.srv import GetState
from nav_msgs.msg import Odometry
from rcl_interfaces.srv import GetParameters
from rclpy.qos import QoSProfile, ReliabilityPolicy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))      # test/: the shared helpers
from real_launch_support import (CUSTOM_ODOMETRY, SERVER_PREFIX, SIGTERM_TIMEOUT_S,  # noqa: E402
                                 load_inputs, start_time, still_running)

NS = "/robot1"
SERVERS = ("classifier_node", "backbone_node", "text_generation_node")
NODES = ("coin_lio_node", *SERVERS)
STARTS: list[tuple[str, str, int, int | None]] = []  # (process name, executable, pid, start time)
EXITED: dict[str, int | None] = {}                   # process name -> return code


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, str]:
    return load_inputs(tmp_path_factory.mktemp("inputs"))


def _started(event, context) -> None:
    # the engine names a process after its command's first word: 'nice-2' for a model server
    # started with a 'nice' launch prefix, so the package executable comes from the command
    exe = next((Path(c).name for c in event.cmd if "/lib/coin_lio_suite/" in c), event.cmd[0])
    STARTS.append((event.action.name, exe, event.pid, start_time(event.pid)))


def _exited(event, context) -> None:
    EXITED[event.action.name] = event.returncode


@launch_pytest.fixture(scope="module")
def suite(inputs):
    """The installed suite.launch.yaml under /robot1, the text server on a tiny LM (fast)."""
    share = get_package_share_directory("coin_lio_suite")
    args = {"namespace": NS.strip("/"), "odometry_config": inputs["odometry_config"],
            "text_model_path": inputs["text_model"], "model_server_prefix": SERVER_PREFIX}
    return launch.LaunchDescription([
        SetLaunchConfiguration("sigterm_timeout", str(SIGTERM_TIMEOUT_S)),
        RegisterEventHandler(OnProcessStart(on_start=_started)),
        RegisterEventHandler(OnProcessExit(on_exit=_exited)),
        IncludeLaunchDescription(AnyLaunchDescriptionSource(f"{share}/launch/suite.launch.yaml"),
                                 launch_arguments=args.items()),
        launch_pytest.actions.ReadyToTest(),
    ])


@pytest.fixture(scope="module")
def probe():
    """(node, executor) of an rclpy context of its own (launch_ros has another)."""
    context = rclpy.Context()
    rclpy.init(context=context, signal_handler_options=rclpy.signals.SignalHandlerOptions.NO)
    node = rclpy.create_node("real_launch_probe", context=context)
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(node)
    yield node, executor
    executor.shutdown()
    node.destroy_node()
    rclpy.try_shutdown(context=context)


def _call(probe, srv_type, name: str, request, deadline: float):
    """One service call answered before `deadline` (time.monotonic()), else AssertionError."""
    node, executor = probe
    client = node.create_client(srv_type, name)
    try:
        assert client.wait_for_service(timeout_sec=max(0.1, deadline - time.monotonic())), f"no {name}"
        future = client.call_async(request)
        executor.spin_until_future_complete(future, timeout_sec=max(0.1, deadline - time.monotonic()))
        assert future.done() and future.result() is not None, f"{name} did not answer"
        return future.result()
    finally:
        node.destroy_client(client)


@pytest.mark.launch(fixture=suite)
def test_custom_odometry_config_applies_under_the_namespace(probe):
    names = list(CUSTOM_ODOMETRY)
    res = _call(probe, GetParameters, f"{NS}/coin_lio_node/get_parameters",
                GetParameters.Request(names=names), time.monotonic() + 60)
    got = {"path_every": res.values[0].integer_value, "imu_wait": res.values[1].double_value}
    assert got == CUSTOM_ODOMETRY, f"{got} != {CUSTOM_ODOMETRY} (the custom config did not apply)"


@pytest.mark.launch(fixture=suite)
def test_odometry_publishes_while_a_bag_plays(probe, inputs):
    node, executor = probe
    poses: list = []
    sub = node.create_subscription(Odometry, f"{NS}/coin_lio_node/odometry", poses.append,
                                   QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
    deadline = time.monotonic() + 30
    while node.count_publishers(f"{NS}/coin_lio_node/odometry") == 0 and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.1)
    player = subprocess.Popen([sys.executable, "-m", "suite_tools.bag_player", inputs["bag"],
                               "--wait-subscribers", "1", "--quiet"], env=os.environ,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while len(poses) < 5 and time.monotonic() < deadline and (player.poll() in (None, 0)):
            executor.spin_once(timeout_sec=0.1)
    finally:
        player.terminate()
        out = player.communicate(timeout=10)[0]
        node.destroy_subscription(sub)
    assert len(poses) >= 5, f"{len(poses)} poses on {NS}/coin_lio_node/odometry; player:\n{out[-2000:]}"
    assert poses[-1].header.frame_id == "odom"


@pytest.mark.launch(fixture=suite)
def test_lifecycle_servers_become_active(probe):
    deadline = time.monotonic() + 150            # three models load on a busy 2-core machine
    states = {}
    for name in SERVERS:
        while states.get(name) != "active" and time.monotonic() < deadline:
            res = _call(probe, GetState, f"{NS}/{name}/get_state", GetState.Request(), deadline)
            states[name] = res.current_state.label
            if states[name] != "active":
                probe[1].spin_once(timeout_sec=0.5)    # wait a little for the model to load
    assert all(states.get(name) == "active" for name in SERVERS), states
    node_names = {f"{ns.rstrip('/')}/{n}" for n, ns in probe[0].get_node_names_and_namespaces()}
    assert {f"{NS}/{n}" for n in NODES} <= node_names, node_names
    assert not EXITED, f"processes ended while the suite was up: {EXITED}"


@pytest.mark.launch(fixture=suite, shutdown=True)
def test_every_process_exits_cleanly_at_shutdown():
    # one start per node (a respawn would add one)
    assert sorted(exe for _, exe, _, _ in STARTS) == sorted(NODES), STARTS
    assert EXITED == {name: 0 for name, _, _, _ in STARTS}, EXITED
    assert still_running({pid: start for _, _, pid, start in STARTS}) == [], STARTS
