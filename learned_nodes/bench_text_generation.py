"""Service benchmark: latency of GenerateText calls (32 new tokens, greedy) from another process
against text_generation_node serving the real SmolLM2-135M-Instruct (dense, float32 from the GGUF),
torch limited to `--threads` intra-op threads. Prints and writes p50/p95 latency and tokens/s.

    python -m learned_nodes.bench_text_generation --out out/bench_text_generation --threads 1
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import yaml

PROMPT = "Write a long, detailed story about a small robot exploring a dark tunnel with its lidar."


def main(argv: list[str] | None = None) -> int:
    import rclpy
    from coin_lio_suite.srv import GenerateText

    from suite_tools.testing import Graph

    p = argparse.ArgumentParser(prog="text-generation-bench", description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=Path("out/bench_text_generation"))
    p.add_argument("--model", default="", help="model_path ('' = the default SmolLM2 GGUF)")
    p.add_argument("--calls", type=int, default=20)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--new-tokens", type=int, default=32)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    params = {"threads": args.threads, "generation": {"max_concurrent": 1}}
    if args.model:
        params["model_path"] = args.model
    pfile = args.out / "params.yaml"
    pfile.write_text(yaml.safe_dump({"text_generation_node": {"ros__parameters": params}}))
    t0 = time.monotonic()
    with Graph(args.out / "logs") as g:
        g.spawn("text_generation_node", [sys.executable, "-m", "learned_nodes.text_generation_node",
                                         "--ros-args", "--params-file", str(pfile)])
        os.environ.update({k: g.env[k] for k in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE",
                                                  "FASTDDS_DEFAULT_PROFILES_FILE", "RMW_IMPLEMENTATION")})
        rclpy.init(domain_id=g.domain_id)
        node = rclpy.create_node("text_generation_bench")
        cli = node.create_client(GenerateText, "/text_generation_node/generate")
        try:
            if not cli.wait_for_service(timeout_sec=120.0):
                raise SystemExit("node did not come up:\n" + g.log("text_generation_node")[-3000:])

            def call():
                t = time.perf_counter()
                fut = cli.call_async(GenerateText.Request(prompt=PROMPT, max_new_tokens=args.new_tokens,
                                                          temperature=0.0, seed=0))
                rclpy.spin_until_future_complete(node, fut, timeout_sec=300.0)
                res = fut.result()
                if res is None or not res.success:
                    raise SystemExit(f"call failed: {res and res.message}\n"
                                     + g.log("text_generation_node")[-2000:])
                return res, (time.perf_counter() - t) * 1000.0

            first, _ = call()          # waits for configure (model load) to finish
            up_s = time.monotonic() - t0
            for _ in range(args.warmup - 1):
                call()
            runs = [call() for _ in range(args.calls)]
        finally:
            node.destroy_node()
            rclpy.try_shutdown()
    ms = np.array([r[1] for r in runs])
    toks = np.array([r[0].generated_tokens for r in runs])
    summary = {"model": args.model or "SmolLM2-135M-Instruct (Q4_1 GGUF -> float32)",
               "threads": args.threads, "calls": args.calls, "new_tokens": int(toks.mean()),
               "prompt_tokens": int(first.prompt_tokens), "startup_to_first_answer_s": round(up_s, 1),
               "latency_ms_p50": round(float(np.percentile(ms, 50)), 1),
               "latency_ms_p95": round(float(np.percentile(ms, 95)), 1),
               "tokens_per_s_end_to_end": round(float(toks.sum() / (ms.sum() / 1000.0)), 1),
               "tokens_per_s_node": round(float(np.mean([r[0].tokens_per_second for r in runs])), 1),
               "text": first.text}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
