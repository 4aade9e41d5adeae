"""`make demo`: the suite end to end on this machine, no robot needed.

1. simulate a short LiDAR + IMU sequence (the `tunnel` scene, Ouster OS-0-128 layout),
2. bring up launch/bag_monitor.launch.yaml with the suite's launcher on an isolated DDS domain
   (the same file `ros2 launch` runs on a robot): the bag player feeds the graph,
3. print what arrived, compared with what the bag holds, and exit 0 only if nothing was lost.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from suite_tools.ros_env import DomainLease, local_graph_env, source_root


def simulate(out: Path, scene: str, duration: float, seed: int) -> Path:
    from coin_lio.sim.sequence import SequenceConfig, generate_sequence

    seq = out / f"{scene}_{int(duration)}s_seed{seed}"
    if (seq / "sequence.json").exists():
        print(f"[demo] reusing simulated sequence {seq}")
        return seq
    print(f"[demo] simulating '{scene}' for {duration:.0f} s -> {seq}")
    generate_sequence(SequenceConfig(scene=scene, duration=duration, seed=seed), seq, progress=True)
    return seq


def run_graph(bag: Path, report: Path, timeout: float) -> int:
    from suite_tools.launcher import Supervisor, load_launch_file

    launch_file = source_root() / "launch" / "bag_monitor.launch.yaml"
    with DomainLease() as lease:
        env = local_graph_env(lease.domain_id)
        print(f"[demo] launching {launch_file.name} on ROS_DOMAIN_ID={lease.domain_id}")
        plan = load_launch_file(launch_file, {"bag": str(bag), "report_path": str(report)}, env)
        with Supervisor(plan, env) as sup:
            code = sup.wait(timeout=timeout)
            if code is None:
                print(f"[demo] graph still running after {timeout:.0f} s: stopping it", file=sys.stderr)
                sup.shutdown("demo timeout")
                return 1
            return code


def report_arrivals(bag: Path, report: Path) -> bool:
    from suite_tools.bag_io import bag_topics
    from suite_tools.topic_stats import format_summary, read_report

    got = read_report(report)
    print("\n[demo] what arrived:")
    print(format_summary(list(got.values())))
    ok = True
    for topic, (msgtype, count) in sorted(bag_topics(bag).items()):
        n = len(got[topic].recv_ns) if topic in got else 0
        print(f"[demo] {topic:<20} bag {count:5d}  received {n:5d}  {'ok' if n == count else 'LOST'}")
        ok &= n == count
    return ok


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="coin-lio-suite-demo", description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=Path("out/demo"))
    p.add_argument("--scene", default="tunnel")
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=120.0, help="bound of the graph run (s)")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    seq = simulate(args.out, args.scene, args.duration, args.seed)
    report = args.out / "arrivals.json"
    report.unlink(missing_ok=True)
    code = run_graph(seq / "bag", report, args.timeout)
    if code != 0 or not report.exists():
        print(f"[demo] the graph failed (exit code {code})", file=sys.stderr)
        return 1
    ok = report_arrivals(seq / "bag", report)
    print(f"[demo] {'done' if ok else 'FAILED'} in {time.monotonic() - t0:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
