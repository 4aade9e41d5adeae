"""Service benchmark: latency of a 640x480 rgb8 EmbedImage call from another process against
backbone_node serving the shipped DAFT checkpoint (config/backbone.yaml); then the same calls
8 at a time (batched by the node).

    python -m learned_nodes.bench_backbone_service --out out/bench_backbone --threads 1
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import yaml

from learned_nodes.bench_service import latency_table, measure
from learned_nodes.service_client import EmbedClient, server_graph
from suite_tools.param_files import node_section


def main(argv: list[str] | None = None) -> int:
    from suite_tools.ros_env import source_root

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
        node_section(params, "backbone_node")["model"]["threads"] = a.threads
    params_file = a.out / "params.yaml"
    params_file.write_text(yaml.safe_dump(params))
    ckpt = node_section(params, "backbone_node")["model"]["checkpoint_path"]
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (480, 640, 3), dtype=np.uint8) for _ in range(a.concurrency)]
    t0 = time.monotonic()
    with server_graph("learned_nodes.backbone_node", "backbone_node", params_file, a.out / "logs",
                      EmbedClient) as client:
        reqs = [client.request(img) for img in images]
        r = measure(client, reqs, a.warmup, a.calls, a.rounds, t0)
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
