"""Load and soak of the whole suite on one graph (issue: behaviour under load and faults).

  python -m suite_tools.stress --duration 60 --clients 8            # `make stress`
  python -m suite_tools.stress --duration 1800 --clients 2          # `make soak` (30 min)

Brings up launch/suite.launch.yaml (odometry + classifier), plays a simulated tunnel bag in a loop
into coin_lio_node (every loop jumps time back: the odometry must reset cleanly), runs N concurrent
classifier clients, samples the RSS of every node, and prints: requests, failures, p50/p95/p99
latency; poses and dropped scans; RSS after warm-up and at the end (growth %). Bounded in time,
localhost only.
"""
from __future__ import annotations

import argparse
import array
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from suite_tools.demo import odometry_params, simulate
from suite_tools.ros_env import DomainLease, apply_local_graph_env, local_graph_env, source_root


class _Client:
    """One classifier client as a small state machine on the main thread's spin loop: always one
    request in flight; records (success, seconds, message) per request."""

    def __init__(self, cli, request, results: list) -> None:
        self.cli, self.request, self.results = cli, request, results
        self.future, self.t0 = None, 0.0

    def step(self) -> None:
        now = time.perf_counter()
        if self.future is not None:
            if self.future.done():
                res = self.future.result()
                self.results.append((bool(res and res.success), now - self.t0, "" if res is None else res.message))
                self.future = None
            elif now - self.t0 > 15.0:
                self.results.append((False, now - self.t0, "timeout"))
                self.future = None
        if self.future is None:
            self.t0 = now
            self.future = self.cli.call_async(self.request)


def main(argv: list[str] | None = None) -> int:
    import psutil
    import rclpy
    from coin_lio_suite.msg import DegeneracyReport
    from sensor_msgs.msg import Image

    from suite_tools.launcher import Supervisor, load_launch_file

    p = argparse.ArgumentParser(prog="suite-stress", description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=60.0)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--out", type=Path, default=Path("out/stress"))
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    seq = simulate(Path("out/demo"), "tunnel", 10.0, 0)
    params = odometry_params(seq, args.out)
    rng = np.random.default_rng(0)
    image = Image(height=480, width=640, encoding="rgb8", step=640 * 3)
    image.data = array.array("B", rng.integers(0, 255, 480 * 640 * 3, dtype=np.uint8).tobytes())
    names = ["robot", "person", "door", "stairs", "box", "chair", "cable", "helmet", "ladder", "cart"]
    with DomainLease() as lease:
        env = local_graph_env(lease.domain_id)
        apply_local_graph_env(lease.domain_id)
        plan = load_launch_file(source_root() / "launch" / "suite.launch.yaml",
                                {"odometry_config": str(params)}, env)
        rclpy.init(domain_id=lease.domain_id)
        node = rclpy.create_node("suite_stress")
        degen: list = []
        node.create_subscription(DegeneracyReport, "/coin_lio_node/degeneracy", degen.append, 100)
        # every entity exists before the executor spins (entities added while another thread
        # waits in the executor are not seen until it wakes up)
        from coin_lio_suite.srv import ClassifyImage

        clis = [node.create_client(ClassifyImage, "/classifier_node/classify") for _ in range(args.clients)]
        results: list = []
        rss: dict[str, list] = {}
        with Supervisor(plan, env) as sup:
            if not clis[0].wait_for_service(timeout_sec=60):
                print("[stress] the classifier service never appeared", file=sys.stderr)
            time.sleep(3.0)                                  # model loaded
            player = subprocess.Popen([sys.executable, "-m", "suite_tools.bag_player", str(seq / "bag"),
                                       "--loop", "--wait-subscribers", "1"], env=env)
            request = ClassifyImage.Request(image=image, class_names=names, top_k=3)
            clients = [_Client(cli, request, results) for cli in clis]
            t_end = time.monotonic() + args.duration
            next_sample = 0.0
            while time.monotonic() < t_end:
                for c in clients:
                    c.step()
                rclpy.spin_once(node, timeout_sec=0.02)
                if time.monotonic() >= next_sample:
                    next_sample = time.monotonic() + 5.0
                    for st in sup.poll():
                        if st.pid and st.state == "running":
                            try:
                                rss.setdefault(st.label, []).append(
                                    psutil.Process(st.pid).memory_info().rss / 2**20)
                            except psutil.NoSuchProcess:
                                pass
            player.terminate()
            player.wait(10)
            alive = [st.label for st in sup.poll() if st.state == "running"]
            sup.shutdown("stress done")
        node.destroy_node()
        rclpy.try_shutdown()
    ok_lat = np.array([r[1] for r in results if r[0]]) * 1e3
    failed = [r for r in results if not r[0]]
    print(f"\n[stress] {args.duration:.0f} s, {args.clients} concurrent classifier clients, looped tunnel bag")
    if len(ok_lat):
        print(f"[stress] classify: {len(results)} requests, {len(failed)} failed, "
              f"{len(ok_lat) / args.duration:.1f} answers/s; latency p50 {np.percentile(ok_lat, 50):.0f} ms, "
              f"p95 {np.percentile(ok_lat, 95):.0f} ms, p99 {np.percentile(ok_lat, 99):.0f} ms")
    for r in failed[:3]:
        print(f"[stress]   failure: {r[2]}")
    if degen:
        photo = np.mean([d.num_photometric_residuals > 0 for d in degen]) * 100
        print(f"[stress] odometry: {len(degen)} scans processed ({len(degen) / args.duration:.1f}/s of 10/s played), "
              f"dropped by the lag policy: {degen[-1].num_dropped_scans}, photometric part active in {photo:.0f} % "
              f"of the scans, processing median {np.median([d.processing_time_ms for d in degen]):.0f} ms")
    for label, v in rss.items():
        warm = v[max(1, len(v) // 5):] or v
        print(f"[stress] RSS {label}: {warm[0]:.0f} MB after warm-up -> {warm[-1]:.0f} MB "
              f"({(warm[-1] - warm[0]) / warm[0] * 100:+.1f} %), max {max(v):.0f} MB")
    ok = not failed and set(alive) == {st.label for st in plan}
    print(f"[stress] {'ok' if ok else 'FAILED'}: every node alive at the end: {sorted(alive)}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
