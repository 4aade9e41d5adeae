"""Executor benchmark of the model servers (issue #18): does the executor's thread pool starve the
batch worker of the GIL, as a thread pool once did in coin_lio_node (first scans 1-2 s)?

For each server variant, the node (shipped model and config) is started on its own graph and
loaded by closed-loop clients (1, 4, 16, 64 requests always in flight, 640x480 rgb8 images, from this
process); per request: round trip and the node's `inference_ms` (the wall time of the model call of
its batch, measured on the batch worker), batch size (requests answered with the same
`inference_ms`); per phase: the node process's CPU, its executor thread's (the main thread) and
that of every other process (interference). Reference: the same model in this process, no ROS, per
batch size. Starvation shows as model time inflating with in-flight requests / executor threads
beyond what the batch size explains, or as slow first requests. "first answer" includes the model
load (the service is advertised before autostart's configure). Each variant waits for two idle
cores first. Every variant runs the node through this module's wrapper (`_serve`, environment
BENCH_EXECUTOR_*), which may set, in the server process only (benchmark, not product): the
executor's thread count (ModelServerNode.executor_threads), `sys.setswitchinterval`, the image
conversions at once (conversion_slots); `shipped` changes nothing.

    python -m learned_nodes.bench_executor --out out/bench_executor
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from learned_nodes.bench_service import percentile

NODES = {"classifier": ("learned_nodes.classifier_node", "classifier_node", "classifier.yaml"),
         "backbone": ("learned_nodes.backbone_node", "backbone_node", "backbone.yaml")}
ENV_MODULE = "BENCH_EXECUTOR_MODULE"
KNOBS = ("threads", "switch", "slots")  # variant settings, BENCH_EXECUTOR_<KNOB> in the server


def _serve() -> None:
    """Server-process wrapper: apply the variant, then run the node module as `python -m` would."""
    import runpy
    import threading

    from learned_nodes.server.lifecycle_node import ModelServerNode

    knob = {k: os.environ.get(f"BENCH_EXECUTOR_{k.upper()}", "") for k in KNOBS}
    if knob["switch"]:
        sys.setswitchinterval(float(knob["switch"]))
    if knob["threads"]:
        ModelServerNode.executor_threads = property(lambda self: int(knob["threads"]))  # type: ignore
    if knob["slots"]:
        init = ModelServerNode.__init__

        def with_slots(self, *args, **kwargs) -> None:
            init(self, *args, **kwargs)
            self.conversion_slots = threading.BoundedSemaphore(int(knob["slots"]))
        ModelServerNode.__init__ = with_slots  # type: ignore[method-assign]
    runpy.run_module(os.environ[ENV_MODULE], run_name="__main__", alter_sys=True)


def parse_variant(spec: str) -> dict[str, Any]:
    """'shipped', 'threads=10' (executor threads), 'switch=0.001' (sys.setswitchinterval), 'slots=2'
    (image conversions at once), or several joined by '+'."""
    out: dict[str, Any] = {"name": spec, **{k: None for k in KNOBS}}
    for part in ([] if spec == "shipped" else spec.split("+")):
        key, _, value = part.partition("=")
        if key not in KNOBS:
            raise argparse.ArgumentTypeError(f"bad variant part '{part}'")
        out[key] = float(value) if key == "switch" else int(value)
    return out


def _cpu_s(pid: int, tid: int | None = None) -> float:
    """User + system CPU seconds of a process (or one of its threads) from /proc."""
    path = f"/proc/{pid}/task/{tid}/stat" if tid else f"/proc/{pid}/stat"
    fields = Path(path).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_busy_s() -> float:
    """CPU seconds all cores of the machine spent busy (not idle / iowait) since boot."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def _server_pid() -> int:
    """The wrapper process: the child of this process running this module."""
    for d in Path("/proc").iterdir():
        try:
            if d.name.isdigit() and int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == os.getpid() \
                    and b"bench_executor" in (d / "cmdline").read_bytes():
                return int(d.name)
        except (OSError, ValueError):
            continue
    raise RuntimeError("server process not found")


def reference_ms(node: str, params: dict, image: np.ndarray, names: list[str], batches: list[int],
                 reps: int) -> dict[int, float]:
    """Median model time of the node's model in this process (no ROS, no other threads) at `batches`,
    interpolated to every batch size up to the largest."""
    from suite_tools.param_files import node_section

    m = node_section(params, NODES[node][1])["model"]
    if node == "classifier":
        from learned_nodes.cocoop.inference import PromptClassifier

        clf = PromptClassifier.from_paths(m["encoder_path"], m.get("prompt_learner_path") or None,
                                          "cpu", m.get("threads", 0))
        run = lambda b: clf.classify_many([image] * b, [names] * b)[1]  # noqa: E731
    else:
        from learned_nodes.daft.serve import TunedServer

        srv = TunedServer.load(m["checkpoint_path"], "cpu", m.get("threads", 0), m.get("to_grey", True))
        run = lambda b: srv.embed_many([srv.preprocess(image)] * b)[1]  # noqa: E731
    run(1)
    at = {b: float(np.median([run(b) for _ in range(reps)])) for b in batches}
    return {b: float(np.interp(b, list(at), list(at.values()))) for b in range(1, max(batches) + 1)}


def load_phase(client, cli, requests: list, clients: int, seconds: float, pid: int,
               ref: dict[int, float]) -> dict[str, Any]:
    """`clients` requests always in flight for `seconds`; per-request and CPU figures; `ref`: the
    model time alone by batch size."""
    import rclpy

    rtt, model, failed, first = [], [], 0, []
    pending: dict[Any, float] = {}
    sent = 0

    def send() -> None:
        nonlocal sent
        pending[cli.call_async(requests[sent % len(requests)])] = time.perf_counter()
        sent += 1

    cpu0, main0, own0, all0 = _cpu_s(pid), _cpu_s(pid, pid), time.process_time(), _machine_busy_s()
    t0 = time.perf_counter()
    for _ in range(clients):
        send()
    while pending:
        rclpy.spin_once(client.node, timeout_sec=0.01)
        now = time.perf_counter()
        for fut in [f for f in pending if f.done()]:
            ms = (now - pending.pop(fut)) * 1000.0
            res = fut.result()
            if len(first) < clients:
                first.append(ms)
            if res.success:
                rtt.append(ms)
                model.append(res.inference_ms)
            else:
                failed += 1
            if now - t0 < seconds:
                send()
        if now - t0 > seconds + 60.0:
            raise TimeoutError(f"{len(pending)} requests unanswered 60 s after the phase")
    wall = time.perf_counter() - t0
    node_cpu, own_cpu = _cpu_s(pid) - cpu0, time.process_time() - own0
    counts = {v: model.count(v) for v in set(model)}
    batch = [counts[v] for v in model]
    return {"clients": clients, "answered": len(rtt), "failed": failed, "sent": sent, "wall_s": wall,
            "rps": len(rtt) / wall, "first_max_ms": max(first),
            **{f"rtt_p{q}_ms": percentile(rtt, q) for q in (50, 95, 99)},
            **{f"model_p{q}_ms": percentile(model, q) for q in (50, 95, 99)},
            "batch_mean": float(np.mean(batch)), "batch_max": max(batch),
            "model_ms_by_batch": {b: float(np.median([m for m, k in zip(model, batch) if k == b]))
                                  for b in sorted(set(batch))},
            "model_over_alone_same_batch_p50": percentile([m / ref[k] for m, k in zip(model, batch)], 50),
            "node_cpu_pct": 100.0 * node_cpu / wall,
            "executor_thread_cpu_pct": 100.0 * (_cpu_s(pid, pid) - main0) / wall,
            "client_cpu_pct": 100.0 * own_cpu / wall,
            "other_cpu_pct": 100.0 * (_machine_busy_s() - all0 - node_cpu - own_cpu) / wall}


def run_variant(node: str, variant: dict, params_file: Path, out: Path, make_reqs, clients: list[int],
                seconds: float, ref: dict[int, float]) -> dict[str, Any]:
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    from learned_nodes.service_client import ClassifyClient, EmbedClient, server_graph
    from suite_tools.testing import wait_for_quiet_cpu

    module, node_name, _ = NODES[node]
    idle = wait_for_quiet_cpu(1.8, 120.0)  # both cores idle before each variant, if it comes
    env = {ENV_MODULE: module, **{f"BENCH_EXECUTOR_{k.upper()}": str(variant[k] or "") for k in KNOBS}}
    os.environ.update(env)
    t0 = time.monotonic()
    try:
        with server_graph("learned_nodes.bench_executor", node_name, params_file,
                          out / "logs" / f"{node}_{variant['name']}",
                          ClassifyClient if node == "classifier" else EmbedClient) as client:
            # a request history as deep as the requests in flight (rclpy's 10 would drop some)
            cli = client.node.create_client(client._srv, client.client.srv_name,
                                            qos_profile=QoSProfile(depth=256, reliability=ReliabilityPolicy.RELIABLE))
            cli.wait_for_service(timeout_sec=30.0)
            reqs = make_reqs(client)
            _, first_ms = client.call(reqs[0], timeout=120.0)
            startup = time.monotonic() - t0
            pid = _server_pid()
            phases = [load_phase(client, cli, reqs, n, seconds, pid, ref) for n in clients]
    finally:
        for k in env:
            os.environ.pop(k, None)
    return {"node": node, "variant": variant, "idle_cores_before": idle, "startup_s": startup,
            "first_call_ms": first_ms, "phases": phases}


def table(results: list[dict]) -> list[str]:
    """The markdown table: one row per node, variant and client count."""
    lines = ["| node | variant | clients | req/s | round trip p50 / p95 / p99 ms | model p50 / p95 / p99 ms "
             "| mean batch | model / alone (batch 1) | model / alone (same batch, p50) | node CPU % "
             "(executor thread) | other CPU % | first answer |", "| --- " * 12 + "|"]
    for r in results:
        alone = r["phases"][0]["model_p50_ms"] if r["phases"][0]["clients"] == 1 else float("nan")
        for p in r["phases"]:
            lines.append(
                f"| {r['node']} | {r['variant']['name']} | {p['clients']} | {p['rps']:.1f} "
                f"| {p['rtt_p50_ms']:.0f} / {p['rtt_p95_ms']:.0f} / {p['rtt_p99_ms']:.0f} "
                f"| {p['model_p50_ms']:.0f} / {p['model_p95_ms']:.0f} / {p['model_p99_ms']:.0f} "
                f"| {p['batch_mean']:.1f} | {p['model_p50_ms'] / alone:.2f} "
                f"| {p['model_over_alone_same_batch_p50']:.2f} "
                f"| {p['node_cpu_pct']:.0f} ({p['executor_thread_cpu_pct']:.0f}) | {p['other_cpu_pct']:.0f} | "
                + (f"{r['first_call_ms']:.0f} ms, start {r['startup_s']:.0f} s |" if p is r["phases"][0] else "|"))
    return lines


def main(argv: list[str] | None = None) -> int:
    if os.environ.get(ENV_MODULE):
        _serve()
        return 0
    import yaml

    from learned_nodes.cocoop.data import FASHION_MNIST_CLASSES
    from suite_tools.param_files import node_section
    from suite_tools.ros_env import source_root
    from suite_tools.testing import wait_for_quiet_cpu

    p = argparse.ArgumentParser(prog="bench-executor", description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=Path("out/bench_executor"))
    p.add_argument("--nodes", nargs="+", choices=sorted(NODES), default=["classifier", "backbone"])
    p.add_argument("--variants", nargs="+", type=parse_variant,
                   default=[parse_variant(s) for s in ("shipped", "threads=10", "switch=0.001", "switch=0.02")])
    p.add_argument("--clients", nargs="+", type=int, default=[1, 4, 16, 64])
    p.add_argument("--seconds", type=float, default=15.0, help="per load phase")
    a = p.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    t_run = time.monotonic()
    names = list(FASHION_MNIST_CLASSES)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (480, 640, 3), dtype=np.uint8) for _ in range(16)]
    results, ref = [], {}
    for node in a.nodes:
        params_file = source_root() / "config" / NODES[node][2]
        params = yaml.safe_load(params_file.read_text())
        max_batch = node_section(params, NODES[node][1])["limits"]["max_batch"]
        wait_for_quiet_cpu(1.8, 120.0)
        ref[node] = reference_ms(node, params, images[0], names, sorted({1, 2, 4, max_batch}), 5)
        make = ((lambda c: [c.request(im, names, top_k=3) for im in images]) if node == "classifier"
                else (lambda c: [c.request(im) for im in images]))
        for variant in a.variants:
            results.append(run_variant(node, variant, params_file, a.out, make, a.clients, a.seconds, ref[node]))
            print(f"{node} {variant['name']}: done", flush=True)
    minutes = (time.monotonic() - t_run) / 60.0
    alone = json.dumps({n: {b: round(v, 1) for b, v in r.items()} for n, r in ref.items()})
    lines = ["# Model servers: executor variants under closed-loop load", "",
             f"{a.seconds:.0f} s per phase, 640x480 rgb8, shipped configs; model alone in-process (ms by "
             f"batch): {alone}; run time {minutes:.1f} min.", "", *table(results)]
    (a.out / "executor.md").write_text("\n".join(lines) + "\n")
    (a.out / "executor.json").write_text(json.dumps({"reference_ms": ref, "results": results,
                                                     "run_minutes": minutes}, indent=2) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
