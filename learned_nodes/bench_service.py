"""Service benchmark: latency of a 640x480 rgb8 ClassifyImage call with 10 class names, from
another process, against classifier_node serving the shipped CoCoOp model; then the same calls
8 at a time (batched by the node).

    python -m learned_nodes.bench_service --out out/bench_classifier
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def percentile(values, q) -> float:
    """The q-th percentile of `values` as a float."""
    return float(np.percentile(np.asarray(values), q))


def measure(client, requests: list, warmup: int, calls: int, rounds: int, t_start: float) -> dict:
    """Warm-up, `calls` sequential calls, then `rounds` of all `requests` in flight at once, through a
    ClassifyClient-like client (call / call_many); round-trip and model times in ms."""
    up = 0.0
    for i in range(warmup):
        res, _ = client.call(requests[i % len(requests)])
        if not res.success:
            raise SystemExit(f"warm-up call failed: {res.message}")
        if i == 0:
            up = time.monotonic() - t_start
    rtt, model_ms = [], []
    for i in range(calls):
        res, ms = client.call(requests[i % len(requests)])
        assert res.success, res.message
        rtt.append(ms)
        model_ms.append(res.inference_ms)
    walls = []
    for _ in range(rounds):
        out, wall = client.call_many(requests)
        assert all(r.success for r in out)
        walls.append(wall)
    return {"calls": calls, "p50_ms": percentile(rtt, 50), "p95_ms": percentile(rtt, 95),
            "model_p50_ms": percentile(model_ms, 50),
            "sequential_rps": 1000.0 / float(np.mean(rtt)), "concurrent": len(requests),
            "concurrent_rps": len(requests) * rounds / (sum(walls) / 1000.0), "startup_s": up}


def latency_table(title: str, note: str, r: dict) -> list[str]:
    """The markdown report of `measure`'s result."""
    return [f"# {title}", "", note, "", "| metric | value |", "| --- | --- |",
            f"| round trip p50 | {r['p50_ms']:.1f} ms |", f"| round trip p95 | {r['p95_ms']:.1f} ms |",
            f"| model time p50 (node's inference_ms) | {r['model_p50_ms']:.1f} ms |",
            f"| sequential throughput | {r['sequential_rps']:.2f} req/s |",
            f"| {r['concurrent']} in flight (batched) | {r['concurrent_rps']:.2f} req/s |",
            f"| process start until the first answer | {r['startup_s']:.1f} s |"]


def main(argv: list[str] | None = None) -> int:
    from learned_nodes.cocoop.data import FASHION_MNIST_CLASSES
    from learned_nodes.service_client import classifier_graph
    from suite_tools.ros_env import source_root

    p = argparse.ArgumentParser(prog="classifier-bench-service", description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=Path("out/bench_classifier"))
    p.add_argument("--calls", type=int, default=50)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--params-file", default=str(source_root() / "config" / "classifier.yaml"))
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    names = list(FASHION_MNIST_CLASSES)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (480, 640, 3), dtype=np.uint8) for _ in range(args.concurrency)]
    t0 = time.monotonic()
    with classifier_graph(args.params_file, args.out / "logs") as client:
        reqs = [client.request(img, names, top_k=3) for img in images]
        result = measure(client, reqs, args.warmup, args.calls, args.rounds, t0)
    result.update({"image": "640x480 rgb8", "class_names": len(names)})
    lines = latency_table(
        "classifier_node service latency (ClassifyImage, 640x480 rgb8, 10 class names, other process)",
        f"Shipped model: config/classifier.yaml (aligned encoder + CoCoOp). {args.calls} sequential calls "
        f"after {args.warmup} warm-up calls; then {args.rounds} rounds of {args.concurrency} calls in flight.",
        result)
    (args.out / "latency.md").write_text("\n".join(lines) + "\n")
    (args.out / "latency.json").write_text(json.dumps(result, indent=2))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
