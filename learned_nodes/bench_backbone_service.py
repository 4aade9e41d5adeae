"""Service benchmark: latency of a 640x480 rgb8 EmbedImage call from another process against
backbone_node serving the shipped DAFT checkpoint (config/backbone.yaml); then the same calls
8 at a time (batched by the node).

    python -m learned_nodes.bench_backbone_service --out out/bench_backbone --threads 1
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from learned_nodes.bench_service import latency_table, measure
from learned_nodes.service_client import ClassifyClient

SERVICE = "/backbone_node/embed"


class EmbedClient(ClassifyClient):
    """Blocking EmbedImage calls (the ClassifyClient machinery with the EmbedImage type)."""

    def __init__(self, service: str = SERVICE, node_name: str = "embed_client") -> None:
        import rclpy
        from coin_lio_suite.srv import EmbedImage

        self._rclpy, self._srv = rclpy, EmbedImage
        self.node = rclpy.create_node(node_name)
        self.client = self.node.create_client(EmbedImage, service)

    def request(self, image, names=(), top_k: int = 0, encoding: str = "rgb8"):
        from learned_nodes.image_conversions import numpy_to_image

        return self._srv.Request(image=numpy_to_image(image, encoding))


def main(argv: list[str] | None = None) -> int:
    import os

    import rclpy

    from suite_tools.ros_env import source_root
    from suite_tools.testing import Graph

    p = argparse.ArgumentParser(prog="backbone-bench-service", description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=Path("out/bench_backbone"))
    p.add_argument("--calls", type=int, default=50)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--threads", type=int, default=0, help="model.threads of the node (0: config's)")
    p.add_argument("--params-file", default=str(source_root() / "config" / "backbone.yaml"))
    a = p.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    params = yaml.safe_load(Path(a.params_file).read_text())
    if a.threads > 0:
        params["backbone_node"]["ros__parameters"]["model"]["threads"] = a.threads
    params_file = a.out / "params.yaml"
    params_file.write_text(yaml.safe_dump(params))
    ckpt = params["backbone_node"]["ros__parameters"]["model"]["checkpoint_path"]
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (480, 640, 3), dtype=np.uint8) for _ in range(a.concurrency)]
    t0 = time.monotonic()
    with Graph(a.out / "logs") as g:
        g.spawn("backbone_node", [sys.executable, "-m", "learned_nodes.backbone_node", "--ros-args",
                                  "--params-file", str(params_file)])
        os.environ.update({k: g.env[k] for k in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE",
                                                  "FASTDDS_DEFAULT_PROFILES_FILE", "RMW_IMPLEMENTATION")})
        rclpy.init(domain_id=g.domain_id)
        client = EmbedClient()
        try:
            if not client.wait(90.0):
                raise RuntimeError("backbone_node did not come up:\n" + g.log("backbone_node")[-3000:])
            reqs = [client.request(img) for img in images]
            r = measure(client, reqs, a.warmup, a.calls, a.rounds, t0)
        finally:
            client.close()
            rclpy.try_shutdown()
    r.update({"image": "640x480 rgb8", "checkpoint": ckpt, "threads": a.threads})
    lines = latency_table(
        "backbone_node service latency (EmbedImage, 640x480 rgb8, other process)",
        f"Checkpoint: {ckpt} (node threads: {a.threads or 'config'}). {a.calls} sequential calls after "
        f"{a.warmup} warm-up calls; then {a.rounds} rounds of {a.concurrency} in flight.", r)
    (a.out / "latency.md").write_text("\n".join(lines) + "\n")
    (a.out / "latency.json").write_text(json.dumps(r, indent=2) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
