"""Load and soak of the whole suite on one graph (issue: behaviour under load and faults).

  python -m suite_apps.stress --duration 60 --clients 8            # `make stress`
  python -m suite_apps.stress --duration 1800 --clients 2          # `make soak` (30 min)
  python -m suite_apps.stress --duration 60 --clients 0            # odometry alone: the baseline
  python -m suite_apps.stress --duration 60 --clients 16 --services classify embed   # `make stress-32`

Brings up launch/suite.launch.yaml (odometry + every model server that `--services` names), plays a
simulated tunnel bag in a loop into coin_lio_node (every loop jumps time back: the odometry must
reset cleanly), runs N concurrent clients per model service, samples the RSS and CPU of every
node, and prints per service: answered / sent, lost (sent, never answered: after the load every
request in flight gets up to the client timeout to be answered), success=false answers,
p50/p95/p99 latency; for the odometry: scans
processed per second of the 10 Hz bag, dropped scans, processing time; RSS before the load, after
warm-up and at the end (growth %) and CPU share of every node. Exit 1 when a request was lost, a
request failed or a node died. Bounded in time, localhost only.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from suite_apps.demo import odometry_params, simulate, wait_until_active
from suite_tools.ros_env import DomainLease, apply_local_graph_env, local_graph_env, source_root
from suite_tools.image_msgs import numpy_to_image


@dataclass(frozen=True)
class ServiceLoad:
    """One model service under load: the launch argument that starts its server, where it answers,
    and the request every client sends."""

    enable_arg: str
    service: str
    make_request: Callable[[], tuple[type, Any]]     # -> (srv type, request)


def _image():
    """A 640x480 rgb8 noise image (seeded)."""
    return numpy_to_image(np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8), "rgb8")


def _classify():
    from coin_lio_suite.srv import ClassifyImage

    names = ["robot", "person", "door", "stairs", "box", "chair", "cable", "helmet", "ladder", "cart"]
    return ClassifyImage, ClassifyImage.Request(image=_image(), class_names=names, top_k=3)


def _embed():
    from coin_lio_suite.srv import EmbedImage

    return EmbedImage, EmbedImage.Request(image=_image())


def _generate():
    from coin_lio_suite.srv import GenerateText

    return GenerateText, GenerateText.Request(
        prompt="Write one sentence on the robot's status: 12 m travelled in a tunnel.",
        max_new_tokens=16, temperature=0.0, top_p=1.0, seed=0)


SERVICES = {
    "classify": ServiceLoad("enable_classifier", "/classifier_node/classify", _classify),
    "embed": ServiceLoad("enable_backbone", "/backbone_node/embed", _embed),
    "generate": ServiceLoad("enable_text_generation", "/text_generation_node/generate", _generate),
}


LOST = "no answer (lost request)"


class _Client:
    """One client as a small state machine on the main thread's spin loop: always one request in
    flight (none after `stop()`); records (answered, success, seconds, message) per request."""

    def __init__(self, cli, request, results: list, timeout: float = 60.0) -> None:
        self.cli, self.request, self.results, self.timeout = cli, request, results, timeout
        self.future, self.t0, self.sent, self.stopped = None, 0.0, 0, False

    @property
    def idle(self) -> bool:
        return self.future is None

    def stop(self) -> None:
        self.stopped = True

    def step(self) -> None:
        now = time.perf_counter()
        if self.future is not None:
            if self.future.done():
                res = self.future.result()
                self.results.append((res is not None, bool(res and res.success), now - self.t0,
                                     "" if res is None else res.message))
                self.future = None
            elif now - self.t0 > self.timeout:
                self.results.append((False, False, now - self.t0, LOST))
                self.future = None
        if self.future is None and not self.stopped:
            self.t0 = now
            self.sent += 1
            self.future = self.cli.call_async(self.request)


class _Sampler:
    """RSS (MB) and cumulative CPU seconds of every running node, sampled every few seconds."""

    def __init__(self) -> None:
        self.before: dict[str, float] = {}                        # RSS (MB) before the load
        self.rss: dict[str, list[float]] = {}
        self.cpu: dict[str, list[tuple[float, float]]] = {}       # (wall s, cpu s)

    def sample(self, statuses) -> None:
        import psutil

        for st in statuses:
            if not (st.pid and st.state == "running"):
                continue
            try:
                proc = psutil.Process(st.pid)
                self.rss.setdefault(st.label, []).append(proc.memory_info().rss / 2**20)
                t = proc.cpu_times()
                self.cpu.setdefault(st.label, []).append((time.monotonic(), t.user + t.system))
            except psutil.NoSuchProcess:
                pass

    def report(self) -> list[str]:
        lines = []
        for label, v in self.rss.items():
            warm = v[max(1, len(v) // 5):] or v
            c = self.cpu[label][max(1, len(v) // 5):] or self.cpu[label]
            share = (c[-1][1] - c[0][1]) / max(1e-9, c[-1][0] - c[0][0]) * 100 if len(c) > 1 else float("nan")
            before = self.before.get(label, v[0])
            lines.append(f"[stress] {label}: RSS {before:.0f} MB before the load -> {v[-1]:.0f} MB after "
                         f"({(v[-1] - before) / before * 100:+.1f} %); {warm[0]:.0f} MB after warm-up -> "
                         f"{warm[-1]:.0f} MB "
                         f"({(warm[-1] - warm[0]) / warm[0] * 100:+.1f} %), max {max(v):.0f} MB; "
                         f"CPU {share:.0f} % of one core")
        return lines


def _latency_line(name: str, results: list, sent: int, duration: float, clients: int) -> list[str]:
    """results: (answered, success, seconds, message) per request."""
    answered = [r for r in results if r[0]]
    ok_lat = np.array([r[2] for r in answered if r[1]]) * 1e3
    failed = [r for r in answered if not r[1]]
    line = (f"[stress] {name} ({clients} clients): answered {len(answered)}/{sent} sent, "
            f"lost {sent - len(answered)}, {len(failed)} success=false")
    if len(ok_lat):
        line += (f", {len(ok_lat) / duration:.1f} answers/s; latency p50 {np.percentile(ok_lat, 50):.0f} ms, "
                 f"p95 {np.percentile(ok_lat, 95):.0f} ms, p99 {np.percentile(ok_lat, 99):.0f} ms")
    kinds = sorted({r[3] for r in results if not r[1]})
    return [line] + [f"[stress]   failure: {k}" for k in kinds[:3]]


def main(argv: list[str] | None = None) -> int:
    import rclpy
    from coin_lio_suite.msg import DegeneracyReport

    from suite_tools.launcher import Supervisor, load_launch_file

    p = argparse.ArgumentParser(prog="suite-stress", description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=60.0)
    p.add_argument("--clients", type=int, default=8, help="concurrent clients per service (0: none)")
    p.add_argument("--services", nargs="*", choices=sorted(SERVICES), default=sorted(SERVICES))
    p.add_argument("--model-server-prefix", default=None,
                   help="launch prefix of the model servers (default: the suite's 'nice -n 10')")
    p.add_argument("--out", type=Path, default=Path("out/stress"))
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    seq = simulate(Path("out/demo"), "tunnel", 10.0, 0)
    launch_args = {"odometry_config": str(odometry_params(seq, args.out))}
    launch_args.update({s.enable_arg: "false" for s in SERVICES.values()})
    launch_args.update({SERVICES[n].enable_arg: "true" for n in args.services})
    if args.model_server_prefix is not None:
        launch_args["model_server_prefix"] = args.model_server_prefix
    with DomainLease() as lease:
        env = local_graph_env(lease.domain_id)
        apply_local_graph_env(lease.domain_id)
        plan = load_launch_file(source_root() / "launch" / "suite.launch.yaml", launch_args, env)
        rclpy.init(domain_id=lease.domain_id)
        node = rclpy.create_node("suite_stress")
        degen: list = []
        node.create_subscription(DegeneracyReport, "/coin_lio_node/degeneracy", degen.append, 100)
        # every entity exists before the executor spins (entities added while another thread
        # waits in the executor are not seen until it wakes up)
        loads = {}
        for name in args.services:
            srv_type, request = SERVICES[name].make_request()
            clis = [node.create_client(srv_type, SERVICES[name].service) for _ in range(max(1, args.clients))]
            loads[name] = (clis, request, [])
        sampler = _Sampler()
        with Supervisor(plan, env) as sup:
            servers = [SERVICES[n].service.split("/")[1] for n in loads]
            late = wait_until_active(node, servers, 180.0)   # every model loaded before the clock starts
            if late:
                print(f"[stress] not active after 180 s: {late}", file=sys.stderr)
            player = subprocess.Popen([sys.executable, "-m", "suite_tools.bag_player", str(seq / "bag"),
                                       "--loop", "--wait-subscribers", "1"], env=env)
            sampler.sample(sup.poll())
            sampler.before = {k: v[-1] for k, v in sampler.rss.items()}
            clients = [_Client(cli, request, results) for clis, request, results in loads.values()
                       for cli in clis[:args.clients]]
            sent = {name: [] for name in loads}
            for name, (clis, _, _) in loads.items():
                sent[name] = [c for c in clients if c.cli in clis]
            t_end = time.monotonic() + args.duration
            next_sample = 0.0
            while time.monotonic() < t_end:
                for c in clients:
                    c.step()
                rclpy.spin_once(node, timeout_sec=0.02)
                if time.monotonic() >= next_sample:
                    next_sample = time.monotonic() + 5.0
                    sampler.sample(sup.poll())
            for c in clients:                                  # the requests in flight: answered or lost
                c.stop()
            while not all(c.idle for c in clients):
                for c in clients:
                    c.step()
                rclpy.spin_once(node, timeout_sec=0.02)
            sampler.sample(sup.poll())
            player.terminate()
            player.wait(10)
            alive = [st.label for st in sup.poll() if st.state == "running"]
            sup.shutdown("stress done")
        node.destroy_node()
        rclpy.try_shutdown()
    print(f"\n[stress] {args.duration:.0f} s, looped 10 Hz tunnel bag, services {args.services}, "
          f"{args.clients} concurrent clients each")
    failed_any = False
    for name, (_, _, results) in loads.items():
        if args.clients:
            n_sent = sum(c.sent for c in sent[name])
            print("\n".join(_latency_line(name, results, n_sent, args.duration, args.clients)))
            failed_any |= any(not r[1] for r in results) or len(results) != n_sent
    if degen:
        photo = np.mean([d.num_photometric_residuals > 0 for d in degen]) * 100
        ms = np.array([d.processing_time_ms for d in degen])
        print(f"[stress] odometry: {len(degen)} scans processed ({len(degen) / args.duration:.1f}/s of 10/s "
              f"played), dropped by the lag policy: {degen[-1].num_dropped_scans}, photometric part active "
              f"in {photo:.0f} % of the scans, processing median {np.median(ms):.0f} ms, "
              f"p95 {np.percentile(ms, 95):.0f} ms")
    print("\n".join(sampler.report()))
    dead = sorted({st.label for st in plan} - set(alive))
    ok = not failed_any and not dead
    why = [w for w, bad in (("a request failed or was lost", failed_any), (f"dead at the end: {dead}", dead)) if bad]
    print(f"[stress] {'ok' if ok else 'FAILED: ' + '; '.join(why)} (alive at the end: {sorted(alive)})")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
