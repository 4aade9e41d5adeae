"""Bursts of 200 simultaneous requests lose nothing: classifier_node (~/classify) and
text_generation_node (~/generate service and the action's goal service), tiny models, one process
each. Every request gets an answer within the stated time: a result, "queue full" / "busy", or a
timeout answer. Before the fix (service history depth 10, max_batch + 2 executor threads) 190 of
200 classify requests, 188 generate calls and 189 goals were never answered. Also through the
graph: the hostile requests of issue 19 get success=false with the reason.

The clients use a request history >= their burst (rclpy's default of 10 would drop the client's
own unsent requests: a client-side limit, stated in docs/model_servers.md)."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import yaml

rclpy = pytest.importorskip("rclpy")
pytest.importorskip("torch")
pytest.importorskip("transformers")
from action_msgs.msg import GoalStatus  # noqa: E402
from coin_lio_suite.action import GenerateText as GenerateAction  # noqa: E402
from coin_lio_suite.srv import ClassifyImage, GenerateText  # noqa: E402
from rclpy.action import ActionClient  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from learned_nodes.image_conversions import numpy_to_image  # noqa: E402
from learned_nodes.llm.tiny_models import make_tiny_lm  # noqa: E402
from suite_tools.testing import Graph, spin_until  # noqa: E402
from test_classifier_node_graph import _write_models  # noqa: E402

pytestmark = pytest.mark.graph
BURST = 200
ANSWER_WITHIN_S = 45.0      # every answer of a burst, on 2 shared cores (request_timeout_s is 20)
CLS, GEN = "classifier_node", "text_generation_node"
RETENTION_S = 5            # text generation's result_retention_s (rclpy's fixed default was 10)
QOS = QoSProfile(depth=BURST + 56, reliability=ReliabilityPolicy.RELIABLE)


def _params(root: Path) -> dict[str, Path]:
    encoder, learner = _write_models(root)
    lm = make_tiny_lm(root / "tiny_lm")
    cls = {"model": {"encoder_path": str(encoder), "prompt_learner_path": str(learner), "threads": 1},
           "limits": {"max_batch": 4, "max_queue": 16, "request_timeout_s": 20.0, "max_wait_ms": 5.0}}
    gen = {"model_path": str(lm), "threads": 1, "result_retention_s": RETENTION_S,
           "generation": {"max_prompt_tokens": 64, "default_max_new_tokens": 4, "max_concurrent": 1,
                          "max_waiting": 2, "queue_timeout_s": 20.0},
           "limits": {"max_batch": 3}}
    out = {}
    for name, params in ((CLS, cls), (GEN, gen)):
        out[name] = root / f"{name}.yaml"
        out[name].write_text(yaml.safe_dump({name: {"ros__parameters": params}}))
    return out


@pytest.fixture(scope="module")
def graph_client(tmp_path_factory):
    root = tmp_path_factory.mktemp("burst")
    params = _params(root)
    with Graph(root / "logs") as g:
        for name, module in ((CLS, "learned_nodes.classifier_node"), (GEN, "learned_nodes.text_generation_node")):
            g.spawn(name, g.python_cmd("-m", module, "--ros-args", "--params-file", str(params[name])))
        g.use_in_this_process()
        rclpy.init(domain_id=g.domain_id)
        node = rclpy.create_node("burst_test_client")
        classify = node.create_client(ClassifyImage, f"/{CLS}/classify", qos_profile=QOS)
        generate = node.create_client(GenerateText, f"/{GEN}/generate", qos_profile=QOS)
        action = ActionClient(node, GenerateAction, f"/{GEN}/generate", goal_service_qos_profile=QOS,
                              result_service_qos_profile=QOS, cancel_service_qos_profile=QOS)
        try:
            for name, cli in ((CLS, classify), (GEN, generate)):
                assert cli.wait_for_service(timeout_sec=90.0), g.log(name)[-3000:]
            assert action.wait_for_server(timeout_sec=30.0), g.log(GEN)[-3000:]
            yield node, classify, generate, action, g
        finally:
            action.destroy()
            node.destroy_node()
            rclpy.try_shutdown()
            for name in (CLS, GEN):
                assert g.interrupt(name, timeout=20) in (0, -2), g.log(name)[-3000:]


def _spin_all(node, futures: list, timeout: float) -> float:
    """Spin until every future is done or `timeout` passes; returns the seconds it took."""
    t0 = time.monotonic()
    while not all(f.done() for f in futures) and time.monotonic() - t0 < timeout:
        rclpy.spin_once(node, timeout_sec=0.05)
    return time.monotonic() - t0


def _one(node, client, request, timeout: float = 20.0):
    future = client.call_async(request)
    _spin_all(node, [future], timeout)
    assert future.done(), f"no answer within {timeout} s"
    return future.result()


def test_hostile_requests_answered_with_a_reason_and_serving_continues(graph_client):
    """Through the graph: the issue's 1 x 100000 image, the full float32 range, invisible and
    case-duplicate class names, a temperature of 1e-45."""
    node, classify, generate, _, _ = graph_client
    wide = Image(height=1, width=100_000, encoding="rgb8", step=300_000, data=bytes(300_000))
    small = numpy_to_image(np.zeros((8, 8, 3), np.uint8), "rgb8")   # the first call of a client is slow
    assert _one(node, classify, ClassifyImage.Request(image=small, class_names=["cat", "robot"]), 40.0).success
    t0 = time.monotonic()
    res = _one(node, classify, ClassifyImage.Request(image=wide, class_names=["cat", "robot"]), 5.0)
    print(f"1 x 100000 rgb8 answered in {time.monotonic() - t0:.3f} s: {res.message}")
    assert not res.success and "aspect ratio of 100000.0; the limit is 64" in res.message
    extreme = numpy_to_image(np.array([[-3e38, 3e38], [0.0, 1.0]], np.float32), "32FC1")
    for names, ok, reason in ((["cat", "robot"], True, ""), (["cat", "\u200b\ufeff"], False, "no visible character"),
                              (["Cat", "cat"], False, "appears twice")):
        res = _one(node, classify, ClassifyImage.Request(image=extreme, class_names=names))
        assert res.success == ok and reason in res.message, res.message
        assert not ok or (len(res.scores) == 2 and np.isfinite(res.scores).all())
    res = _one(node, generate, GenerateText.Request(prompt="Hello robot", max_new_tokens=4, temperature=1e-45))
    assert not res.success and "too small to give a valid distribution" in res.message, res.message
    assert _one(node, generate, GenerateText.Request(prompt="Hello robot", max_new_tokens=4)).success


def test_classify_burst_every_request_answered(graph_client):
    node, classify, _, _, g = graph_client
    image = numpy_to_image(np.random.default_rng(0).integers(0, 255, (32, 40, 3), dtype=np.uint8), "rgb8")
    futures = [classify.call_async(ClassifyImage.Request(image=image, class_names=["cat", "robot"]))
               for _ in range(BURST)]
    took = _spin_all(node, futures, ANSWER_WITHIN_S)
    answers = [f.result() for f in futures if f.done()]
    lost = BURST - len(answers)
    served = sum(a.success for a in answers)
    full = sum("already waiting" in a.message for a in answers)
    timed_out = sum("timed out" in a.message or "no result within" in a.message for a in answers)
    print(f"classify burst: answered {len(answers)}/{BURST}, lost {lost}, served {served}, "
          f"queue full {full}, timeout answers {timed_out}, {took:.1f} s")
    assert lost == 0, f"{lost} of {BURST} never answered; log:\n" + g.log(CLS)[-2000:]
    assert served >= 4 and served + full + timed_out == BURST, [a.message for a in answers if not a.success][:5]


def test_generate_service_and_goal_bursts_every_request_answered(graph_client):
    node, _, generate, action, g = graph_client
    calls = [generate.call_async(GenerateText.Request(prompt="Hello robot", max_new_tokens=4))
             for _ in range(BURST)]
    goals = [action.send_goal_async(GenerateAction.Goal(prompt="Hello robot", max_new_tokens=4))
             for _ in range(BURST)]
    results: list = [None] * BURST      # each result asked for as soon as its goal is answered

    def ask_result(i: int, fut) -> None:
        if fut.result().accepted:
            results[i] = fut.result().get_result_async()

    for i, fut in enumerate(goals):
        fut.add_done_callback(lambda f, i=i: ask_result(i, f))
    took = _spin_all(node, calls + goals, ANSWER_WITHIN_S)
    answered_calls = [f.result() for f in calls if f.done()]
    handles = [f.result() for f in goals if f.done()]
    # rclpy runs a future's done callbacks as executor tasks, at a later spin: a goal answered in
    # the last spin above may not have asked for its result yet, so wait for the requests too
    accepted = sum(h.accepted for h in handles)

    def all_results_in() -> bool:
        asked = [r for r in results if r is not None]
        return len(asked) == accepted and all(r.done() for r in asked)
    t0 = time.monotonic()
    spin_until(node, all_results_in, ANSWER_WITHIN_S - took)
    took += time.monotonic() - t0
    results = [r for r in results if r is not None]
    finished = [f.result() for f in results if f.done()]
    busy = sum("busy" in r.result.message for r in finished)
    print(f"generate burst: service answered {len(answered_calls)}/{BURST} "
          f"({sum(a.success for a in answered_calls)} generated); goals answered {len(handles)}/{BURST}, "
          f"accepted {len(results)}, results {len(finished)} ({busy} busy), {took:.1f} s")
    assert len(answered_calls) == BURST, g.log(GEN)[-2000:]
    assert all(a.success or "busy" in a.message for a in answered_calls), \
        [a.message for a in answered_calls if not a.success][:5]
    assert len(handles) == BURST and len(results) == BURST, g.log(GEN)[-2000:]
    assert len(finished) == BURST, f"{BURST - len(finished)} goal results never came"
    assert all(r.status in (GoalStatus.STATUS_SUCCEEDED, GoalStatus.STATUS_ABORTED) for r in finished)
    assert all(r.status == GoalStatus.STATUS_SUCCEEDED or "busy" in r.result.message for r in finished)
    assert sum(r.status == GoalStatus.STATUS_SUCCEEDED for r in finished) >= 1


def test_finished_goal_result_is_kept_for_the_retention_time_then_dropped(graph_client):
    """Asked for again and again after the goal ended: the result is there for about
    result_retention_s, then STATUS_UNKNOWN (waited for by condition, bounded)."""
    node, _, _, action, g = graph_client
    sent = action.send_goal_async(GenerateAction.Goal(prompt="Hello robot", max_new_tokens=2))
    _spin_all(node, [sent], 30.0)
    handle = sent.result()
    first = handle.get_result_async()
    _spin_all(node, [first], 30.0)
    assert first.done() and first.result().status == GoalStatus.STATUS_SUCCEEDED, g.log(GEN)[-2000:]
    ended = time.monotonic()
    status = GoalStatus.STATUS_SUCCEEDED
    while status != GoalStatus.STATUS_UNKNOWN and time.monotonic() - ended < RETENTION_S + 15.0:
        again = handle.get_result_async()
        _spin_all(node, [again], 10.0)
        assert again.done(), "a result request was never answered"
        status = again.result().status
        if status != GoalStatus.STATUS_UNKNOWN:
            pace = time.monotonic() + 0.25
            while time.monotonic() < pace:                  # ask ~4 times a second, spinning meanwhile
                rclpy.spin_once(node, timeout_sec=0.05)
    kept = time.monotonic() - ended
    assert status == GoalStatus.STATUS_UNKNOWN, f"result still kept after {kept:.1f} s"
    assert RETENTION_S - 1.0 <= kept <= RETENTION_S + 10.0, f"result kept {kept:.1f} s, configured {RETENTION_S} s"
