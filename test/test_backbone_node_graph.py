"""backbone_node in a real graph: a tiny tuned checkpoint (TunedClassifier on the seeded tiny CNN,
saved with save_tuned) served by the node process, called from this process: embeddings (unit norm,
feature-dim long) + top-k digit labels, the bad-request table (each refused with a reason, the node
keeps serving), concurrent calls, and checkpoints refused at configure (pickle, truncated, wrong
shape) with the node still up answering "node is not active", and the SHIPPED checkpoint
(config/backbone.yaml as it is: EfficientNet-Lite0 DAFT-tuned on MNIST, fp16) labelling real MNIST
test digits sent as 640x480 rgb8. One graph for the module: the good node, the three refusing nodes
and the shipped one (renamed with __node:=) start together."""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

rclpy = pytest.importorskip("rclpy")
torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")
from coin_lio_suite.srv import EmbedImage  # noqa: E402
from lifecycle_msgs.srv import GetState  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from learned_nodes.image_conversions import numpy_to_image  # noqa: E402
from suite_tools.testing import Graph  # noqa: E402
from suite_tools.param_files import node_section  # noqa: E402

pytestmark = pytest.mark.graph
GOOD = "backbone_node"
BROKEN = {"pickle": ("backbone_pickle", "is a pickle"),
          "truncated": ("backbone_truncated", "truncated"),
          "wrong shape": ("backbone_wrong_shape", "wrong shapes")}
FEATURE_DIM, IMAGE_SIZE, TOP_K = 16, 32, 3
SHIPPED = "backbone_shipped"
REPO = Path(__file__).resolve().parents[1]


def write_checkpoints(root: Path) -> dict[str, Path]:
    """The good checkpoint and three broken copies of it."""
    from learned_nodes.daft.backbones import TunedClassifier, build_backbone
    from learned_nodes.daft.checkpoint import save_tuned

    model = TunedClassifier(build_backbone("tiny", pretrained=False, seed=0), 10)
    good = save_tuned(root / "good", model, "tiny", IMAGE_SIZE, {"method": "test"})
    paths = {"good": good}
    for case in BROKEN:
        paths[case] = shutil.copytree(good, root / case.replace(" ", "_"))
    weights = "model.safetensors"
    torch.save(model.state_dict(), paths["pickle"] / weights)               # a torch.save zip pickle
    data = (good / weights).read_bytes()
    (paths["truncated"] / weights).write_bytes(data[: len(data) // 2])
    other = TunedClassifier(build_backbone("tiny", pretrained=False), 7)      # head 7 x 16, not 10 x 16
    save_tuned(paths["wrong shape"], other, "tiny", IMAGE_SIZE)
    cfg = (good / "config.json").read_text()
    (paths["wrong shape"] / "config.json").write_text(cfg)                   # config says 10 classes
    return paths


def write_params(path: Path, node_name: str, checkpoint: Path) -> Path:
    params = {"model": {"checkpoint_path": str(checkpoint), "threads": 1},
              "limits": {"max_image_pixels": 1_000_000, "max_batch": 4, "max_wait_ms": 20.0,
                         "request_timeout_s": 30.0},
              "top_k": TOP_K}
    path.write_text(yaml.safe_dump({node_name: {"ros__parameters": params}}))
    return path


def write_shipped_params(path: Path) -> Path:
    """config/backbone.yaml unchanged (the shipped checkpoint) but for the node name and 1 thread."""
    doc = yaml.safe_load((REPO / "config" / "backbone.yaml").read_text())
    params = node_section(doc, "backbone_node")
    params["model"]["threads"] = 1
    path.write_text(yaml.safe_dump({SHIPPED: {"ros__parameters": params}}))
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The five node processes on an isolated domain + a client node in this process."""
    root = tmp_path_factory.mktemp("backbone")
    ckpts = write_checkpoints(root)
    with Graph(root / "logs") as g:
        names = [(GOOD, "good")] + [(name, case) for case, (name, _) in BROKEN.items()]
        for name, case in names:
            params = write_params(root / f"{name}.yaml", name, ckpts[case])
            g.spawn(name, g.python_cmd("-m", "learned_nodes.backbone_node", "--ros-args",
                                       "-r", f"__node:={name}", "--params-file", str(params)))
        g.spawn(SHIPPED, g.python_cmd("-m", "learned_nodes.backbone_node", "--ros-args", "-r",
                                      f"__node:={SHIPPED}", "--params-file",
                                      str(write_shipped_params(root / "shipped.yaml"))))
        names.append((SHIPPED, "shipped"))
        g.use_in_this_process()
        rclpy.init(domain_id=g.domain_id)
        node = rclpy.create_node("backbone_test_client")
        clients = {name: node.create_client(EmbedImage, f"/{name}/embed") for name, _ in names}
        try:
            for name, cli in clients.items():
                if not cli.wait_for_service(timeout_sec=60.0):
                    pytest.fail(f"{name}/embed never appeared; node log:\n" + g.log(name)[-3000:])
            yield node, clients, g
        finally:
            node.destroy_node()
            rclpy.try_shutdown()
            for name, _ in names:
                assert g.interrupt(name, timeout=15) in (0, -2), g.log(name)[-3000:]


def _wait(node, future, timeout=40.0):
    rclpy.spin_until_future_complete(node, future, timeout_sec=timeout)
    assert future.done(), f"no answer within {timeout} s"
    return future.result()


def embed(server, image, name=GOOD):
    node, clients, _ = server
    return _wait(node, clients[name].call_async(EmbedImage.Request(image=image)))


def _rgb(h=48, w=64, seed=0):
    return numpy_to_image(np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8), "rgb8")


def _raw(h, w, encoding, step, data):
    return Image(height=h, width=w, encoding=encoding, step=step, data=bytes(data))


def _check_good(res):
    assert res.success, res.message
    emb = np.asarray(res.embedding)
    assert emb.shape == (FEATURE_DIM,) and np.linalg.norm(emb) == pytest.approx(1.0, abs=1e-4)
    assert len(res.labels) == TOP_K and set(res.labels) <= {str(i) for i in range(10)}
    assert len(set(res.labels)) == TOP_K
    assert list(res.scores) == sorted(res.scores, reverse=True) and 0 < sum(res.scores) <= 1.0 + 1e-5
    assert res.inference_ms > 0


def test_embeds_an_image_from_another_process(server):
    res = embed(server, _rgb())
    _check_good(res)
    again = embed(server, _rgb())
    np.testing.assert_allclose(again.embedding, res.embedding, atol=1e-5)   # deterministic (eval mode)
    other = embed(server, _rgb(seed=3))
    assert not np.allclose(other.embedding, res.embedding, atol=1e-4)


def test_grey_image_matches_its_rgb_copy(server):
    grey = np.random.default_rng(2).integers(0, 255, (28, 28), dtype=np.uint8)
    a = embed(server, numpy_to_image(grey, "mono8"))
    b = embed(server, numpy_to_image(np.repeat(grey[..., None], 3, axis=2), "rgb8"))
    _check_good(a)
    np.testing.assert_allclose(a.embedding, b.embedding, atol=1e-3)
    assert a.labels == b.labels


@pytest.mark.parametrize("encoding", ["bgr8", "mono16", "32FC1"])
def test_other_encodings_are_served(server, encoding):
    rng = np.random.default_rng(1)
    arr = {"bgr8": rng.integers(0, 255, (20, 30, 3), dtype=np.uint8),
           "mono16": rng.integers(0, 65535, (20, 30), dtype=np.uint16),
           "32FC1": rng.random((20, 30), dtype=np.float32)}[encoding]
    _check_good(embed(server, numpy_to_image(arr, encoding)))


def _nan_image():
    arr = np.ones((8, 8), np.float32)
    arr[3, 3] = np.nan
    return numpy_to_image(arr, "32FC1")


BAD_REQUESTS = {
    "wrong encoding": (lambda: _raw(4, 4, "yuv422", 8, b"\x00" * 32), "unsupported encoding"),
    "zero-size image": (lambda: _raw(0, 0, "rgb8", 0, b""), "zero size"),
    "huge image": (lambda: _raw(1001, 1000, "mono8", 1000, np.zeros(1001 * 1000, np.uint8)),
                   "exceeds the limit"),
    "step/data mismatch": (lambda: _raw(4, 4, "rgb8", 12, b"\x00" * 40), "expected height x step"),
    "step too small": (lambda: _raw(4, 4, "rgb8", 10, b"\x00" * 40), "smaller than width"),
    "NaN in 32FC1": (_nan_image, "NaN"),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_request_is_refused_with_a_reason_and_the_node_keeps_serving(server, case):
    make_image, reason = BAD_REQUESTS[case]
    res = embed(server, make_image())
    assert not res.success and reason in res.message, res.message
    assert not res.embedding and not res.labels and not res.scores
    _check_good(embed(server, _rgb()))


def test_concurrent_requests_are_all_answered(server):
    node, clients, _ = server
    futures = [clients[GOOD].call_async(EmbedImage.Request(image=_rgb(seed=i))) for i in range(8)]
    deadline = time.monotonic() + 60
    while not all(f.done() for f in futures) and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.1)
    assert all(f.done() for f in futures)
    for f in futures:
        _check_good(f.result())


def test_shipped_checkpoint_labels_real_digits_sent_as_640x480_rgb(server):
    """The default config serves MNIST digit labels: 10 test digits (none seen in training),
    upscaled to 640x480 rgb8 like a camera frame."""
    import cv2

    from learned_nodes.daft.data import load_mnist

    _, _, test_x, test_y = load_mnist()
    hits = 0
    for img, label in zip(test_x[:10], test_y[:10]):
        rgb = np.repeat(cv2.resize(img, (640, 480), interpolation=cv2.INTER_LINEAR)[..., None], 3, 2)
        res = embed(server, numpy_to_image(rgb, "rgb8"), SHIPPED)
        assert res.success, res.message
        assert len(res.embedding) == 1280 and len(res.labels) == 5
        assert set(res.labels) <= {str(i) for i in range(10)}
        hits += res.labels[0] == str(label)
    assert hits >= 8, f"{hits}/10 digits right"
    bad = embed(server, _raw(0, 0, "rgb8", 0, b""), SHIPPED)
    assert not bad.success and "zero size" in bad.message


def _state(node, name):
    cli = node.create_client(GetState, f"/{name}/get_state")
    assert cli.wait_for_service(timeout_sec=20.0)
    label = _wait(node, cli.call_async(GetState.Request())).current_state.label
    node.destroy_client(cli)
    return label


@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_checkpoint_is_refused_at_configure_and_the_node_answers_not_active(server, case):
    name, reason = BROKEN[case]
    res = embed(server, _rgb(), name)
    assert not res.success and "node is not active" in res.message and reason in res.message, res.message
    assert "model failed to load" in res.message
    assert not res.embedding
    assert _state(server[0], name) == "unconfigured"
    assert reason in server[2].log(name)          # logged too
    bad = embed(server, _raw(0, 0, "rgb8", 0, b""), name)   # bad requests still get their own reason
    assert not bad.success and "zero size" in bad.message


def test_config_yaml_mirrors_the_node_config():
    from suite_tools.config_params import build, flatten, load_node_params

    from learned_nodes.backbone_node_config import BackboneNodeConfig

    repo = Path(__file__).resolve().parents[1]
    cfg = build(BackboneNodeConfig, load_node_params(repo / "config" / "backbone.yaml", "backbone_node"))
    assert set(flatten(cfg)) == set(flatten(BackboneNodeConfig()))
    assert cfg == BackboneNodeConfig()   # the YAML states the defaults
