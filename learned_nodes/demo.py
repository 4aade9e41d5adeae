"""Classifier demo: launch/classifier.launch.yaml (the file `ros2 launch` runs on a robot) brought
up by the suite's launcher on an isolated domain, then real Fashion-MNIST test photos classified
through the service from this process -- with the configured classes and with class names chosen
per call (open vocabulary).

    python -m learned_nodes.demo            # exit 0 when every call succeeded
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

CUSTOM = ["sneaker", "sandal", "ankle boot", "handbag", "sun hat"]


def run(n_images: int, timeout: float, params_file: str | None) -> int:
    import rclpy

    from learned_nodes.cocoop.data import fashion_mnist
    from learned_nodes.service_client import ClassifyClient
    from suite_tools.launcher import Supervisor, load_launch_file
    from suite_tools.ros_env import DomainLease, local_graph_env, source_root

    test = fashion_mnist("test")
    rng = np.random.default_rng(0)
    picks = rng.choice(len(test), n_images, replace=False)
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
                for i in picks:
                    img = test.image(int(i))                      # real 28x28 photo, natural polarity
                    res, ms = client.call(client.request(img, top_k=3), timeout)
                    ok &= res.success
                    shown = ", ".join(f"{lb} {s:.2f}" for lb, s in zip(res.labels, res.scores)) or res.message
                    truly = test.class_names[test.labels[i]]
                    print(f"[demo] Fashion-MNIST test #{i:5d} (truly: {truly:10s}) "
                          f"-> {shown}   [{res.inference_ms:.0f} ms model, {ms:.0f} ms call]")
                img = test.image(int(np.flatnonzero(test.labels == 7)[0]))  # a sneaker
                res, ms = client.call(client.request(img, CUSTOM, top_k=3), timeout)
                ok &= res.success
                print(f"[demo] same service, class names chosen for this call {CUSTOM}: "
                      + ", ".join(f"{lb} {s:.2f}" for lb, s in zip(res.labels, res.scores)))
                bad, _ = client.call(client.request(np.zeros((4, 4), np.float32) * np.nan, CUSTOM,
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
    p.add_argument("--images", type=int, default=5)
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--params-file", default=None, help="default: config/classifier.yaml")
    args = p.parse_args(argv)
    t0 = time.monotonic()
    code = run(args.images, args.timeout, args.params_file)
    print(f"[demo] {'done' if code == 0 else 'FAILED'} in {time.monotonic() - t0:.0f} s")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
