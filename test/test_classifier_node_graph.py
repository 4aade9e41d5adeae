"""classifier_node in a real graph: a tiny random CLIP + CoCoOp prompt learner (saved in the real
formats) served by the node process, called from this process: good requests, the bad-request
table (each refused with a reason, the node keeps serving), batching of concurrent calls, and the
lifecycle (inactive refuses, active serves). One node process for the whole module (~15 s)."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import yaml

rclpy = pytest.importorskip("rclpy")
pytest.importorskip("torch")
pytest.importorskip("transformers")
from coin_lio_suite.srv import ClassifyImage  # noqa: E402
from lifecycle_msgs.msg import Transition  # noqa: E402
from lifecycle_msgs.srv import ChangeState, GetState  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from learned_nodes.image_conversions import numpy_to_image  # noqa: E402
from suite_tools.testing import Graph  # noqa: E402

pytestmark = pytest.mark.graph
NAMES = ["t-shirt", "ankle boot", "cat", "robot"]
SERVICE = "/classifier_node/classify"


def _write_models(root: Path) -> tuple[Path, Path]:
    import torch

    from learned_nodes.cocoop.encoders import load_encoder
    from learned_nodes.cocoop.inference import build_model, default_config, save_prompt_learner
    from learned_nodes.cocoop.tiny_models import build_tiny_clip

    clip_dir = build_tiny_clip(root / "tiny_clip")
    enc = load_encoder(clip_dir)
    torch.manual_seed(0)
    model = build_model(enc, default_config(enc, "cocoop"))
    return clip_dir, save_prompt_learner(model, root / "tiny_cocoop")


def write_params(path: Path, encoder: Path, learner: Path | None, **extra) -> Path:
    """A params file for the tiny model (learner None: zero-shot prompts)."""
    params = {"model": {"encoder_path": str(encoder), "prompt_learner_path": str(learner or ""),
                        "threads": 1},
              "limits": {"max_image_pixels": 1_000_000, "max_class_names": 8, "max_batch": 4,
                         "max_wait_ms": 20.0, "request_timeout_s": 30.0},
              "class_names": [], **extra}
    path.write_text(yaml.safe_dump({"classifier_node": {"ros__parameters": params}}))
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The node process on an isolated domain + a client node in this process."""
    root = tmp_path_factory.mktemp("classifier")
    encoder, learner = _write_models(root)
    params = write_params(root / "params.yaml", encoder, learner)
    with Graph(root / "logs") as g:
        g.spawn("classifier", g.python_cmd("-m", "learned_nodes.classifier_node", "--ros-args",
                                           "--params-file", str(params)))
        g.use_in_this_process()
        rclpy.init(domain_id=g.domain_id)
        node = rclpy.create_node("classifier_test_client")
        client = node.create_client(ClassifyImage, SERVICE)
        try:
            if not client.wait_for_service(timeout_sec=60.0):
                pytest.fail("classifier service never appeared; node log:\n" + g.log("classifier")[-3000:])
            yield node, client, g
        finally:
            node.destroy_node()
            rclpy.try_shutdown()
            assert g.interrupt("classifier", timeout=15) in (0, -2), g.log("classifier")[-3000:]


def _wait(node, future, timeout=40.0):
    rclpy.spin_until_future_complete(node, future, timeout_sec=timeout)
    assert future.done(), f"no answer within {timeout} s"
    return future.result()


def classify(server, image, names=(), top_k=0):
    node, client, _ = server
    return _wait(node, client.call_async(ClassifyImage.Request(image=image, class_names=list(names),
                                                               top_k=top_k)))


def _rgb(h=48, w=64, seed=0):
    return numpy_to_image(np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8), "rgb8")


def _raw(h, w, encoding, step, data):
    return Image(height=h, width=w, encoding=encoding, step=step, data=bytes(data))


def test_serves_class_names_chosen_per_call(server):
    res = classify(server, _rgb(), NAMES, top_k=2)
    assert res.success, res.message
    assert len(res.labels) == 2 and set(res.labels) <= set(NAMES)
    assert res.scores[0] >= res.scores[1] > 0 and sum(res.scores) <= 1.0 + 1e-5
    assert res.inference_ms > 0
    res = classify(server, _rgb(), ["robot", "bag"], top_k=0)
    assert res.success and sorted(res.labels) == ["bag", "robot"]
    assert sum(res.scores) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("encoding", ["bgr8", "mono8", "mono16", "32FC1"])
def test_other_encodings_are_served(server, encoding):
    rng = np.random.default_rng(1)
    arr = {"bgr8": rng.integers(0, 255, (20, 30, 3), dtype=np.uint8),
           "mono8": rng.integers(0, 255, (20, 30), dtype=np.uint8),
           "mono16": rng.integers(0, 65535, (20, 30), dtype=np.uint16),
           "32FC1": rng.random((20, 30), dtype=np.float32)}[encoding]
    res = classify(server, numpy_to_image(arr, encoding), NAMES, top_k=1)
    assert res.success, res.message


def _nan_image():
    arr = np.ones((8, 8), np.float32)
    arr[3, 3] = np.nan
    return numpy_to_image(arr, "32FC1")


BAD_REQUESTS = {
    "wrong encoding": (lambda: _raw(4, 4, "yuv422", 8, b"\x00" * 32), NAMES, "unsupported encoding"),
    "zero-size image": (lambda: _raw(0, 0, "rgb8", 0, b""), NAMES, "zero size"),
    "huge image": (lambda: _raw(1001, 1000, "mono8", 1000, np.zeros(1001 * 1000, np.uint8)), NAMES,
                   "exceeds the limit"),
    "step/data mismatch": (lambda: _raw(4, 4, "rgb8", 12, b"\x00" * 40), NAMES, "expected height x step"),
    "step too small": (lambda: _raw(4, 4, "rgb8", 10, b"\x00" * 40), NAMES, "smaller than width"),
    "empty class list, none configured": (_rgb, [], "no class names"),
    "over-long class list": (_rgb, [f"class {i}" for i in range(9)], "9 class names exceed the limit of 8"),
    "empty class name": (_rgb, ["cat", ""], "is empty"),
    "over-long class name": (_rgb, ["cat", "x" * 101], "101 characters"),
    "duplicate class name": (_rgb, ["cat", "cat"], "appears twice"),
    "NaN in 32FC1": (_nan_image, NAMES, "NaN"),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_request_is_refused_with_a_reason_and_the_node_keeps_serving(server, case):
    make_image, names, reason = BAD_REQUESTS[case]
    res = classify(server, make_image(), names)
    assert not res.success and reason in res.message, res.message
    assert not res.labels
    assert classify(server, _rgb(), NAMES).success


def test_top_k_larger_than_the_class_list_is_fine(server):
    res = classify(server, _rgb(), ["cat", "robot", "bag"], top_k=50)
    assert res.success and len(res.labels) == 3


def test_concurrent_requests_are_all_answered(server):
    node, client, _ = server
    futures = [client.call_async(ClassifyImage.Request(image=_rgb(seed=i), class_names=NAMES, top_k=1))
               for i in range(8)]
    deadline = time.monotonic() + 60
    while not all(f.done() for f in futures) and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.1)
    assert all(f.done() and f.result().success for f in futures)


def _transition(node, transition_id):
    cli = node.create_client(ChangeState, "/classifier_node/change_state")
    assert cli.wait_for_service(timeout_sec=20.0)
    res = _wait(node, cli.call_async(ChangeState.Request(transition=Transition(id=transition_id))))
    node.destroy_client(cli)
    return res.success


def _state(node):
    cli = node.create_client(GetState, "/classifier_node/get_state")
    assert cli.wait_for_service(timeout_sec=20.0)
    label = _wait(node, cli.call_async(GetState.Request())).current_state.label
    node.destroy_client(cli)
    return label


def test_lifecycle_inactive_refuses_active_serves(server):
    node = server[0]
    assert _state(node) == "active"
    assert _transition(node, Transition.TRANSITION_DEACTIVATE) and _state(node) == "inactive"
    res = classify(server, _rgb(), NAMES)
    assert not res.success and "node is not active" in res.message
    assert _transition(node, Transition.TRANSITION_CLEANUP) and _state(node) == "unconfigured"
    assert _transition(node, Transition.TRANSITION_CONFIGURE) and _state(node) == "inactive"
    assert _transition(node, Transition.TRANSITION_ACTIVATE) and _state(node) == "active"
    assert classify(server, _rgb(), NAMES).success
