"""Every interface of the suite crosses a process boundary: services, the action (feedback and
cancel), and the DegeneracyReport message."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
from coin_lio_suite.action import GenerateText as GenerateTextAction  # noqa: E402
from coin_lio_suite.msg import DegeneracyReport  # noqa: E402
from coin_lio_suite.srv import ClassifyImage, EmbedImage, GenerateText  # noqa: E402
from rclpy.action import ActionClient  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

SERVER = Path(__file__).parent / "nodes" / "interface_echo_server.py"


def _call(node, client, request, timeout=10.0, tries=3):
    """Call and wait; re-send when no answer came (DDS can drop the first response while the
    server's response writer is still matching the new client), at most `tries` times."""
    assert client.wait_for_service(timeout_sec=15.0), f"service {client.srv_name} not available"
    for _ in range(tries):
        future = client.call_async(request)
        rclpy.spin_until_future_complete(node, future, timeout_sec=timeout)
        if future.done():
            return future.result()
    assert future.done(), f"no answer from {client.srv_name} in {tries} tries of {timeout} s"


def _image(h=4, w=6):
    img = Image(height=h, width=w, encoding="rgb8", step=w * 3)
    img.data = bytes(np.arange(h * w * 3, dtype=np.uint8))
    return img


@pytest.fixture
def echo(graph, ros_context):
    graph.spawn("echo", graph.python_cmd(str(SERVER)))
    node = rclpy.create_node("interface_client")
    yield node
    node.destroy_node()


def test_classify_image_round_trip(echo):
    res = _call(echo, echo.create_client(ClassifyImage, "/echo/classify"),
                ClassifyImage.Request(image=_image(), class_names=["cat", "dog", "robot"], top_k=2))
    assert res.success and list(res.labels) == ["robot", "dog"]
    assert len(res.scores) == 2 and res.message == "6x4 rgb8 72B"
    assert res.inference_ms == pytest.approx(1.5)


def test_embed_image_round_trip(echo):
    res = _call(echo, echo.create_client(EmbedImage, "/echo/embed"), EmbedImage.Request(image=_image()))
    assert res.success and list(res.embedding) == [float(i) for i in range(8)]
    assert list(res.labels) == ["x"] and res.message == "rgb8"


def test_generate_text_service_round_trip(echo):
    req = GenerateText.Request(prompt="status of the robot", max_new_tokens=7, temperature=0.5,
                               top_p=0.25, seed=3)
    res = _call(echo, echo.create_client(GenerateText, "/echo/generate"), req)
    assert res.success and res.text == "STATUS OF THE ROBOT"
    assert (res.prompt_tokens, res.generated_tokens) == (4, 7)
    assert res.tokens_per_second == pytest.approx(3.75)


def _send_goal(node, client, prompt, timeout=10.0, tries=3):
    """(goal handle, its feedback list): send and wait for the acceptance, re-sent when no answer
    came, as _call does (DDS can drop the first goal response while the server's writer is still
    matching the new client). Each try has its own feedback list: a goal whose answer was lost
    may still run, and its feedback must not mix with the accepted goal's."""
    assert client.wait_for_server(timeout_sec=15.0), "action server not available"
    for _ in range(tries):
        feedback: list = []
        future = client.send_goal_async(GenerateTextAction.Goal(prompt=prompt, max_new_tokens=5),
                                        feedback_callback=lambda fb, out=feedback: out.append(fb.feedback))
        rclpy.spin_until_future_complete(node, future, timeout_sec=timeout)
        if future.done():
            break
    handle = future.result()
    assert handle is not None and handle.accepted, f"no goal answer in {tries} tries of {timeout} s"
    return handle, feedback


def test_generate_text_action_streams_feedback(echo):
    client = ActionClient(echo, GenerateTextAction, "/echo/generate_stream")
    handle, feedback = _send_goal(echo, client, "one two three four")
    result_future = handle.get_result_async()
    rclpy.spin_until_future_complete(echo, result_future, timeout_sec=10.0)
    result = result_future.result().result
    assert result.success and result.text == "one two three four" and result.generated_tokens == 4
    assert "".join(f.text_delta for f in feedback).split() == ["one", "two", "three", "four"]
    assert [f.generated_tokens for f in feedback] == [1, 2, 3, 4]


def test_generate_text_action_cancel(echo):
    client = ActionClient(echo, GenerateTextAction, "/echo/generate_stream")
    handle, feedback = _send_goal(echo, client, " ".join(["w"] * 200))
    deadline = time.monotonic() + 10
    while len(feedback) < 2 and time.monotonic() < deadline:
        rclpy.spin_once(echo, timeout_sec=0.1)
    cancel = handle.cancel_goal_async()
    rclpy.spin_until_future_complete(echo, cancel, timeout_sec=10.0)
    result_future = handle.get_result_async()
    rclpy.spin_until_future_complete(echo, result_future, timeout_sec=10.0)
    result = result_future.result().result
    assert not result.success and result.message == "canceled"
    assert 2 <= result.generated_tokens < 200


def test_degeneracy_report_message_round_trip(echo):
    received: list = []
    echo.create_subscription(DegeneracyReport, "/echo/report_out", received.append, 10)
    pub = echo.create_publisher(DegeneracyReport, "/echo/report_in", 10)
    msg = DegeneracyReport(num_geometric_residuals=41, num_photometric_residuals=5, processing_time_ms=12.5)
    msg.eigenvalues = np.arange(6, dtype=float)
    msg.weak = [True, False, False, False, False, False]
    deadline = time.monotonic() + 20
    while not received and time.monotonic() < deadline:
        if pub.get_subscription_count():
            pub.publish(msg)
        rclpy.spin_once(echo, timeout_sec=0.2)
    assert received, "no DegeneracyReport came back"
    out = received[0]
    assert out.num_geometric_residuals == 42 and out.num_photometric_residuals == 5
    assert list(out.eigenvalues) == list(range(6)) and list(out.weak)[:2] == [True, False]
