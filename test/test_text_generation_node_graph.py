"""text_generation_node in a real graph: a tiny random Llama (HF folder in tmp) served by the node
process, called from this process. The service answers; the action streams feedback whose
concatenation is the result text; a goal cancelled mid-generation ends CANCELED with its partial
text while a service call meanwhile gets "busy"; bad requests get success=false with the reason
(service) or an aborted goal with it (action); the node keeps answering. A second node given a
pickle checkpoint stays up, unconfigured, answering "node is not active (model failed to load ...)".
Conversions and the YAML mirror are checked without a graph."""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from pathlib import Path

import pytest
import yaml

rclpy = pytest.importorskip("rclpy")
torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
from action_msgs.msg import GoalStatus  # noqa: E402
from coin_lio_suite.action import GenerateText as GenerateAction  # noqa: E402
from coin_lio_suite.srv import GenerateText  # noqa: E402
from rclpy.action import ActionClient  # noqa: E402
from rclpy.qos import QoSProfile  # noqa: E402

from learned_nodes.llm.requests import GenerationResult  # noqa: E402
from learned_nodes.llm.tiny_models import make_tiny_lm  # noqa: E402
from learned_nodes.text_generation_node import fill_result, request_from_msg  # noqa: E402
from learned_nodes.text_generation_node_config import TextGenerationNodeConfig  # noqa: E402
from suite_tools.testing import Graph  # noqa: E402

pytestmark = pytest.mark.graph
GOOD, BROKEN = "text_generation_node", "text_generation_pickle"
LIMIT = 1500    # a cancelled goal would run ~2-3 s: ample time to cancel it mid-way


def write_params(path: Path, name: str, model: Path) -> Path:
    params = {"model_path": str(model), "threads": 1,
              "generation": {"max_prompt_tokens": 64, "default_max_new_tokens": 16,
                             "max_new_tokens_limit": LIMIT, "max_concurrent": 1, "max_waiting": 0},
              "limits": {"max_batch": 2}}
    path.write_text(yaml.safe_dump({name: {"ros__parameters": params}}))
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("textgen")
    good = make_tiny_lm(root / "tiny")
    broken = Path(shutil.copytree(good, root / "pickle"))
    (broken / "model.safetensors").rename(broken / "pytorch_model.bin")
    with Graph(root / "logs") as g:
        for name, model in ((GOOD, good), (BROKEN, broken)):
            g.spawn(name, g.python_cmd("-m", "learned_nodes.text_generation_node", "--ros-args", "-r",
                                       f"__node:={name}", "--params-file",
                                       str(write_params(root / f"{name}.yaml", name, model))))
        g.use_in_this_process()
        rclpy.init(domain_id=g.domain_id)
        node = rclpy.create_node("text_generation_test_client")
        services = {n: node.create_client(GenerateText, f"/{n}/generate") for n in (GOOD, BROKEN)}
        action = ActionClient(node, GenerateAction, f"/{GOOD}/generate",
                              feedback_sub_qos_profile=QoSProfile(depth=LIMIT + 16))
        try:
            for name, cli in services.items():
                if not cli.wait_for_service(timeout_sec=60.0):
                    pytest.fail(f"{name}/generate never appeared; log:\n" + g.log(name)[-3000:])
            assert action.wait_for_server(timeout_sec=30.0), g.log(GOOD)[-3000:]
            yield node, services, action, g
        finally:
            action.destroy()
            node.destroy_node()
            rclpy.try_shutdown()
            for name in (GOOD, BROKEN):                   # SIGINT both first: they stop in parallel
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(g.procs[name].pid, signal.SIGINT)
            for name in (GOOD, BROKEN):
                assert g.interrupt(name, timeout=15) in (0, -2), g.log(name)[-3000:]


def _wait(node, future, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not future.done() and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
    assert future.done(), f"no answer within {timeout} s"
    return future.result()


def call(server, name=GOOD, **fields):
    node, services, _, _ = server
    return _wait(node, services[name].call_async(GenerateText.Request(**fields)))


def send_goal(server, **fields):
    node, _, action, _ = server
    deltas: list = []
    fut = action.send_goal_async(GenerateAction.Goal(**fields),
                                 feedback_callback=lambda m: deltas.append(m.feedback))
    handle = _wait(node, fut)
    assert handle.accepted
    return handle, deltas


TERMINAL = (GoalStatus.STATUS_SUCCEEDED, GoalStatus.STATUS_CANCELED, GoalStatus.STATUS_ABORTED)


def finish(server, handle, deltas, timeout=30.0):
    """The goal's result, asked for once the goal is terminal and its feedback has drained:
    rclpy's ActionClient drops feedback that arrives after it has delivered the result."""
    node = server[0]
    deadline = time.monotonic() + timeout
    while handle.status not in TERMINAL and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.02)
    assert handle.status in TERMINAL, f"goal not finished within {timeout} s"
    n, quiet = -1, 0.0
    while quiet < 0.3:
        t0 = time.monotonic()
        rclpy.spin_once(node, timeout_sec=0.02)
        quiet = 0.0 if len(deltas) != n else quiet + time.monotonic() - t0
        n = len(deltas)
    return _wait(node, handle.get_result_async())


def test_service_answers_deterministically(server):
    res = call(server, prompt="Hello robot", max_new_tokens=12)
    assert res.success and res.message == "" and res.text, res.message
    assert res.generated_tokens == 12 and res.prompt_tokens > 3 and res.tokens_per_second > 0
    assert call(server, prompt="Hello robot", max_new_tokens=12).text == res.text
    a = call(server, prompt="Hello robot", max_new_tokens=12, temperature=1.3, top_p=0.9, seed=4)
    assert a.success and a.text == call(server, prompt="Hello robot", max_new_tokens=12,
                                        temperature=1.3, top_p=0.9, seed=4).text
    assert call(server, prompt="Hello robot").generated_tokens == 16          # the node's default


def test_action_streams_feedback_that_concatenates_to_the_result(server):
    handle, deltas = send_goal(server, prompt="Caf\u00e9 robots", max_new_tokens=40, temperature=1.5,
                               seed=2)
    wrapped = finish(server, handle, deltas)
    res = wrapped.result
    assert wrapped.status == GoalStatus.STATUS_SUCCEEDED and res.success and res.generated_tokens == 40
    assert "".join(d.text_delta for d in deltas) == res.text
    counts = [d.generated_tokens for d in deltas]
    assert len(deltas) >= 10 and counts == sorted(counts) and counts[-1] == 40
    same = call(server, prompt="Caf\u00e9 robots", max_new_tokens=40, temperature=1.5, seed=2)
    assert same.text == res.text                                              # service == action


def test_cancel_mid_generation_ends_canceled_and_busy_meanwhile(server):
    node = server[0]
    handle, deltas = send_goal(server, prompt="Hello robot", max_new_tokens=LIMIT)
    deadline = time.monotonic() + 20
    while not deltas and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.01)
    assert deltas, "no feedback before the goal ended"
    busy = call(server, prompt="Hello", max_new_tokens=4)                     # max_concurrent 1
    assert not busy.success and "busy" in busy.message
    _wait(node, handle.cancel_goal_async())
    wrapped = finish(server, handle, deltas)
    res = wrapped.result
    assert wrapped.status == GoalStatus.STATUS_CANCELED, (wrapped.status, res.message)
    assert not res.success and "canceled after" in res.message
    assert 0 < res.generated_tokens < LIMIT and "".join(d.text_delta for d in deltas) == res.text
    assert call(server, prompt="Hello robot", max_new_tokens=5).success       # healthy afterwards


BAD = {
    "empty prompt": ({"prompt": ""}, "prompt is empty"),
    "too many new tokens": ({"prompt": "hi", "max_new_tokens": LIMIT + 1}, f"limit of {LIMIT}"),
    "long prompt": ({"prompt": "robot " * 100}, "tokens; the limit is 64"),
    "invalid UTF-8 (arrives as U+FFFD)": ({"prompt": "ok \ufffd"}, "not valid UTF-8"),
    "negative temperature": ({"prompt": "hi", "temperature": -1.0}, "temperature must be"),
    "top_p above 1": ({"prompt": "hi", "top_p": 2.0}, "top_p must be"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_requests_are_refused_and_the_node_keeps_serving(server, case):
    fields, reason = BAD[case]
    res = call(server, **fields)
    assert not res.success and reason in res.message and res.text == "", res.message
    handle, deltas = send_goal(server, **fields)
    wrapped = finish(server, handle, deltas)
    assert wrapped.status == GoalStatus.STATUS_ABORTED and reason in wrapped.result.message
    assert not deltas
    assert call(server, prompt="Hello robot", max_new_tokens=3).success


def test_pickle_checkpoint_is_refused_at_configure_and_the_node_answers_not_active(server):
    res = call(server, BROKEN, prompt="Hello robot")
    assert not res.success and "node is not active" in res.message, res.message
    assert "model failed to load" in res.message and "refusing to unpickle" in res.message
    assert not call(server, BROKEN, prompt="").success                       # still answers
    assert "refusing to unpickle" in server[3].log(BROKEN)


def _transition(server, transition_id):
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState

    node = server[0]
    cli = node.create_client(ChangeState, f"/{GOOD}/change_state")
    assert cli.wait_for_service(timeout_sec=10.0)
    ok = _wait(node, cli.call_async(ChangeState.Request(transition=Transition(id=transition_id)))).success
    node.destroy_client(cli)
    return ok


def test_deactivate_stops_a_running_goal_and_activate_serves_again(server):
    from lifecycle_msgs.msg import Transition

    node = server[0]
    handle, deltas = send_goal(server, prompt="Hello robot", max_new_tokens=LIMIT)
    deadline = time.monotonic() + 20
    while not deltas and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.01)
    assert _transition(server, Transition.TRANSITION_DEACTIVATE)
    wrapped = finish(server, handle, deltas)
    assert wrapped.status == GoalStatus.STATUS_ABORTED and "deactivated" in wrapped.result.message
    assert wrapped.result.text == "".join(d.text_delta for d in deltas)
    res = call(server, prompt="Hello robot", max_new_tokens=3)
    assert not res.success and "node is not active" in res.message
    assert _transition(server, Transition.TRANSITION_ACTIVATE)
    assert call(server, prompt="Hello robot", max_new_tokens=3).success


def test_message_conversions_without_a_graph():
    req = request_from_msg(GenerateText.Request(prompt="hi", max_new_tokens=3, temperature=0.5,
                                                top_p=0.9, seed=7))
    assert (req.prompt, req.max_new_tokens, req.seed) == ("hi", 3, 7)
    assert req.temperature == pytest.approx(0.5) and req.top_p == pytest.approx(0.9)
    goal = request_from_msg(GenerateAction.Goal(prompt="x", seed=-1))
    assert goal.seed == -1 and goal.max_new_tokens == 0
    out = fill_result(GenerateAction.Result(), GenerationResult(True, "", "abc", 4, 2, 10.5))
    assert (out.success, out.text, out.prompt_tokens, out.generated_tokens) == (True, "abc", 4, 2)


def test_config_yaml_mirrors_the_node_config():
    from suite_tools.config_params import build, flatten, load_node_params

    repo = Path(__file__).resolve().parents[1]
    cfg = build(TextGenerationNodeConfig,
                load_node_params(repo / "config" / "text_generation.yaml", "text_generation_node"))
    assert set(flatten(cfg)) == set(flatten(TextGenerationNodeConfig()))
    assert cfg == TextGenerationNodeConfig()
    with pytest.raises(ValueError, match="max_batch"):
        build(TextGenerationNodeConfig, {"limits": {"max_batch": 1}, "generation": {"max_concurrent": 2}})
