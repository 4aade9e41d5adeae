"""Classifier demo: launch/classifier.launch.yaml (the file `ros2 launch` runs on a robot) brought
up by the suite's launcher on an isolated domain, then real colour photographs (the ones scikit-image
and scikit-learn ship) classified through the service from this process, with class names chosen
per call (open vocabulary), top 3 with their scores.

    python -m learned_nodes.demo            # exit 0 when every call succeeded and every photo is right
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np


def run(timeout: float, params_file: str | None) -> int:
    """Exit status 0 when every call succeeded and every photo's best answer is its label."""
    import rclpy

    from learned_nodes.cocoop.real_photos import DEMO_CLASS_NAMES, DEMO_PHOTOS, photo
    from learned_nodes.service_client import ClassifyClient
    from suite_tools.launcher import Supervisor, load_launch_file
    from suite_tools.ros_env import DomainLease, local_graph_env, source_root

    names = list(DEMO_CLASS_NAMES)
    photos = [photo(n) for n in DEMO_PHOTOS]
    launch_file = source_root() / "launch" / "classifier.launch.yaml"
    args = {"params_file": params_file or str(source_root() / "config" / "classifier.yaml")}
    ok = True
    with DomainLease() as lease:
        env = local_graph_env(lease.domain_id)
        print(f"[demo] launching {launch_file.name} on ROS_DOMAIN_ID={lease.domain_id}")
        plan = load_launch_file(launch_file, args, env)
        with Supervisor(plan, env) as sup:
            os.environ.update({k: env[k] for k in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE",
                                                    "FASTDDS_DEFAULT_PROFILES_FILE", "RMW_IMPLEMENTATION")})
            rclpy.init(domain_id=lease.domain_id)
            client = ClassifyClient(node_name="classifier_demo")
            try:
                if not client.wait(timeout):
                    print("[demo] the classifier service did not appear", file=sys.stderr)
                    return 1
                print(f"[demo] class names chosen for these calls: {names}")
                for ph in photos:
                    res, ms = client.call(client.request(ph.load(), names, top_k=3), timeout)
                    ok &= res.success and list(res.labels[:1]) == [ph.label]
                    shown = ", ".join(f"{lb} {s:.2f}" for lb, s in zip(res.labels, res.scores)) or res.message
                    print(f"[demo] {ph.name:10s} (a {ph.label}; {ph.source}) -> {shown}   "
                          f"[{res.inference_ms:.0f} ms model, {ms:.0f} ms call]")
                bad, _ = client.call(client.request(np.zeros((4, 4), np.float32) * np.nan, names,
                                                    encoding="32FC1"), timeout)
                print(f"[demo] a malformed request is refused: success={bad.success}, '{bad.message}'")
                ok &= not bad.success
            finally:
                client.close()
                rclpy.try_shutdown()
                sup.shutdown("demo done")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="classifier-demo", description=__doc__.split("\n")[0])
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--params-file", default=None, help="default: config/classifier.yaml")
    args = p.parse_args(argv)
    t0 = time.monotonic()
    code = run(args.timeout, args.params_file)
    print(f"[demo] {'done' if code == 0 else 'FAILED'} in {time.monotonic() - t0:.0f} s")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
