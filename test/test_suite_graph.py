"""The whole suite on one graph, as users run it: launch/suite.launch.yaml brings up odometry and
every model server (the text server on a tiny random LM so the test stays fast), and the Python
client example of docs/model_servers.md runs against it unchanged -- the code users copy must work."""
from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

rclpy = pytest.importorskip("rclpy")
pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[1]
LAUNCHER = str(Path(sys.executable).parent / "coin-lio-suite-launch")
SERVERS = {"classifier_node": "/classifier_node/classify", "backbone_node": "/backbone_node/embed",
           "text_generation_node": "/text_generation_node/generate"}


def readme_client_example() -> str:
    """The python block of the section 'Calling the suite from your own node' (docs/model_servers.md)."""
    text = (ROOT / "docs" / "model_servers.md").read_text()
    section = text.split("## Calling the suite from your own node", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_suite_launch_serves_everything_and_the_readme_client_example_runs(graph, ros_context, tmp_path):
    from learned_nodes.llm.tiny_models import make_tiny_lm

    tiny = make_tiny_lm(tmp_path / "tiny_lm")
    graph.spawn("suite", [LAUNCHER, str(ROOT / "launch" / "suite.launch.yaml"),
                          "enable_backbone:=true", "enable_text_generation:=true",
                          f"text_model_path:={tiny}", "model_server_prefix:="])
    node = rclpy.create_node("suite_probe")
    deadline = time.monotonic() + 90
    log = ""
    while time.monotonic() < deadline:        # every server says it is active (models loaded)
        log = graph.log("suite")
        if all(re.search(rf"\[{name}\].*active: serving", log) for name in SERVERS):
            break
        time.sleep(0.5)
    assert all(re.search(rf"\[{name}\].*active: serving", log) for name in SERVERS), log[-3000:]
    assert node.count_subscribers("/ouster/points") >= 1           # coin_lio_node is up too
    script = tmp_path / "readme_example.py"
    script.write_text(readme_client_example())
    run = subprocess.run([sys.executable, str(script)], env=graph.env, capture_output=True, text=True,
                         timeout=180)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-3000:] + graph.log("suite")[-2000:]
    # classify, embed, generate (service), generate (action): each prints its success first
    assert len(re.findall(r"^True ", out, re.M)) == 4 and "Traceback" not in out, out[-2000:]
    assert graph.procs["suite"].poll() is None
    assert graph.interrupt("suite") == 0
    node.destroy_node()
