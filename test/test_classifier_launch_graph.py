"""launch/classifier.launch.yaml brought up by the suite's launcher (as `ros2 launch` would), with a
tiny random CLIP model; the service answers a call from this process. With autostart:=false the
node waits unconfigured and says so; a model that does not load leaves it unconfigured, saying why."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
pytest.importorskip("transformers")
from coin_lio_suite.srv import ClassifyImage  # noqa: E402

from learned_nodes.image_conversions import numpy_to_image  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
LAUNCHER = shutil.which("coin-lio-suite-launch", path=str(Path(sys.executable).parent))


@pytest.mark.skipif(LAUNCHER is None, reason="coin-lio-suite-launch is not installed (make setup)")
@pytest.mark.parametrize("case", ["autostart", "no autostart", "model missing"])
def test_launch_file_serves_classify(graph, ros_context, tmp_path, case):
    from test_classifier_node_graph import write_params

    from learned_nodes.cocoop.tiny_models import build_tiny_clip

    model = tmp_path / "missing" if case == "model missing" else build_tiny_clip(tmp_path / "clip")
    params = write_params(tmp_path / "params.yaml", model, None)
    autostart = "false" if case == "no autostart" else "true"
    graph.spawn("launch", [LAUNCHER, str(REPO / "launch" / "classifier.launch.yaml"),
                           f"params_file:={params}", f"autostart:={autostart}",
                           "--domain-id", str(graph.domain_id)])
    node = rclpy.create_node("launch_test_client")
    try:
        client = node.create_client(ClassifyImage, "/classifier_node/classify")
        assert client.wait_for_service(timeout_sec=60.0), graph.log("launch")[-3000:]
        img = numpy_to_image(np.full((24, 32, 3), 128, np.uint8), "rgb8")
        future = client.call_async(ClassifyImage.Request(image=img, class_names=["cat", "robot"], top_k=1))
        rclpy.spin_until_future_complete(node, future, timeout_sec=60.0)
        res = future.result()
        assert res is not None, graph.log("launch")[-3000:]
        if case == "autostart":
            assert res.success and res.labels[0] in ("cat", "robot"), res.message
        elif case == "no autostart":
            assert not res.success and res.message == "node is not active"
        else:
            assert not res.success and "node is not active (model failed to load:" in res.message
            assert "missing" in res.message
    finally:
        node.destroy_node()
    assert graph.interrupt("launch", timeout=20) == 0, graph.log("launch")[-3000:]
