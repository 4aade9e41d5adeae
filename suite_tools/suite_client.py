"""suite_client: a small node of the suite that uses every service the way a user's node would --
and the example to copy (it needs nothing but rclpy and the suite's interfaces).

While odometry runs it listens to ~odometry and ~degeneracy (distance travelled, scans with a weak
direction, dropped scans). When the odometry has been quiet for `idle_s` (the bag ended) or
`listen_s` passed, it:
  1. classifies `image_path` with class names chosen at call time (ClassifyImage),
  2. embeds `embed_image_path` (EmbedImage: feature + top labels),
  3. streams a status report generated from the numbers through the GenerateText ACTION (feedback
     printed as it arrives),
prints each answer with its round-trip latency, and exits 0 when every call it made succeeded.
A service whose server is not up within `wait_s` is skipped with a note (not a failure) unless it
is listed in `required`.

    ros2 run coin_lio_suite suite_client --ros-args -p image_path:=shoe.png \
        -p class_names:="[sneaker, sandal, boot]"

The topic / service / action names are relative, so they resolve in the client's namespace: for a
suite launched with `namespace:=robot1`, run the client with `-r __ns:=/robot1`.
"""
from __future__ import annotations

import math
import sys
import time

import numpy as np

from suite_tools.image_msgs import numpy_to_image


def read_image(path: str) -> tuple[np.ndarray, str]:
    """(H, W, 3) RGB uint8 or (H, W) grey of a PNG/JPEG file; ('', '') -> ValueError."""
    import cv2

    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ValueError(f"cannot read image '{path}'")
    if img.ndim == 3:
        return cv2.cvtColor(img[..., :3], cv2.COLOR_BGR2RGB), "rgb8"
    return img.astype(np.uint8), "mono8"


class Status:
    """What the odometry said so far: distance along the path, degenerate / dropped scans."""

    def __init__(self) -> None:
        self.poses = 0
        self.distance_m = 0.0
        self.last_xyz: np.ndarray | None = None
        self.scans = 0
        self.weak_scans = 0
        self.dropped = 0
        self.last_msg = time.monotonic()

    def on_odometry(self, msg) -> None:
        p = msg.pose.pose.position
        xyz = np.array([p.x, p.y, p.z])
        if not np.all(np.isfinite(xyz)):
            return
        if self.last_xyz is not None:
            self.distance_m += float(np.linalg.norm(xyz - self.last_xyz))
        self.last_xyz, self.poses, self.last_msg = xyz, self.poses + 1, time.monotonic()

    def on_degeneracy(self, msg) -> None:
        self.scans += 1
        self.weak_scans += int(len(msg.weak_translation_directions) + len(msg.weak_rotation_directions) > 0)
        self.dropped = int(msg.num_dropped_scans)

    def prompt(self) -> str:
        return (f"You are a mobile robot. Write a two-sentence status report. Facts: travelled "
                f"{self.distance_m:.1f} m; {self.poses} poses; {self.weak_scans} of {self.scans} LiDAR scans "
                f"had a direction that geometry alone could not constrain (a tunnel or a flat field); "
                f"{self.dropped} scans dropped.")


def main(args: list[str] | None = None) -> int:
    import rclpy
    from coin_lio_suite.action import GenerateText
    from coin_lio_suite.msg import DegeneracyReport
    from coin_lio_suite.srv import ClassifyImage, EmbedImage
    from nav_msgs.msg import Odometry
    from rclpy.action import ActionClient

    rclpy.init(args=args)
    node = rclpy.create_node("suite_client")
    p = {name: node.declare_parameter(name, default).value for name, default in [
        ("image_path", ""), ("class_names", ["sneaker", "sandal", "ankle boot", "handbag", "sun hat"]),
        ("embed_image_path", ""), ("odometry_topic", "coin_lio_node/odometry"),
        ("degeneracy_topic", "coin_lio_node/degeneracy"), ("classify_service", "classifier_node/classify"),
        ("embed_service", "backbone_node/embed"), ("generate_action", "text_generation_node/generate"),
        ("listen_s", 120.0), ("idle_s", 3.0), ("wait_s", 30.0), ("max_new_tokens", 48), ("required", [""])]}
    required = {r for r in p["required"] if r}
    status = Status()
    node.create_subscription(Odometry, p["odometry_topic"], status.on_odometry, 100)
    node.create_subscription(DegeneracyReport, p["degeneracy_topic"], status.on_degeneracy, 100)
    log = node.get_logger()
    failures: list[str] = []

    def spin_until(done, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not done() and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.05)
        return done()

    def call(kind: str, srv_type, name: str, request):
        cli = node.create_client(srv_type, name)
        if not cli.wait_for_service(timeout_sec=p["wait_s"]):
            if kind in required:
                failures.append(f"{kind}: no server")
            print(f"[suite_client] {kind}: {name} is not up; skipped", flush=True)
            return None, 0.0
        t0 = time.perf_counter()
        future = cli.call_async(request)
        spin_until(future.done, 120.0)
        ms = (time.perf_counter() - t0) * 1e3
        res = future.result() if future.done() else None
        if res is None or not res.success:
            failures.append(f"{kind}: {'no answer' if res is None else res.message}")
            print(f"[suite_client] {kind} FAILED after {ms:.0f} ms: {failures[-1]}", flush=True)
            return None, ms
        return res, ms

    try:
        # 1. listen to the odometry until the bag ended (quiet for idle_s) or listen_s passed
        start = time.monotonic()
        spin_until(lambda: (status.poses > 0 and time.monotonic() - status.last_msg > p["idle_s"])
                   or time.monotonic() - start > p["listen_s"], p["listen_s"] + 1.0)
        print(f"[suite_client] odometry: {status.poses} poses, {status.distance_m:.1f} m travelled, "
              f"{status.weak_scans}/{status.scans} scans with a weak direction, {status.dropped} dropped",
              flush=True)
        # 2. classify with class names chosen at call time
        if p["image_path"]:
            arr, enc = read_image(p["image_path"])
            res, ms = call("classify", ClassifyImage, p["classify_service"],
                           ClassifyImage.Request(image=numpy_to_image(arr, enc),
                                                 class_names=list(p["class_names"]), top_k=3))
            if res is not None:
                best = ", ".join(f"{n} {s:.2f}" for n, s in zip(res.labels, res.scores))
                print(f"[suite_client] classify ({ms:.0f} ms round trip, {res.inference_ms:.0f} ms model): "
                      f"{best}", flush=True)
        # 3. embed
        if p["embed_image_path"]:
            arr, enc = read_image(p["embed_image_path"])
            res, ms = call("embed", EmbedImage, p["embed_service"],
                           EmbedImage.Request(image=numpy_to_image(arr, enc)))
            if res is not None:
                norm = math.sqrt(sum(v * v for v in res.embedding))
                best = ", ".join(f"{n} {s:.2f}" for n, s in list(zip(res.labels, res.scores))[:3])
                print(f"[suite_client] embed ({ms:.0f} ms): {len(res.embedding)}-d feature (norm {norm:.2f}); "
                      f"top labels {best}", flush=True)
        # 4. a status report, streamed through the action
        action = ActionClient(node, GenerateText, p["generate_action"])
        if not action.wait_for_server(timeout_sec=p["wait_s"]):
            if "generate" in required:
                failures.append("generate: no server")
            print(f"[suite_client] generate: {p['generate_action']} is not up; skipped", flush=True)
        else:
            goal = GenerateText.Goal(prompt=status.prompt(), max_new_tokens=int(p["max_new_tokens"]),
                                     temperature=0.0, top_p=1.0, seed=0)
            print("[suite_client] generate (streamed): ", end="", flush=True)
            first: list[float] = []
            t0 = time.perf_counter()

            def on_feedback(fb) -> None:
                first or first.append(time.perf_counter() - t0)
                print(fb.feedback.text_delta, end="", flush=True)

            sent = action.send_goal_async(goal, feedback_callback=on_feedback)
            spin_until(sent.done, 30.0)
            handle = sent.result() if sent.done() else None
            if handle is None or not handle.accepted:
                failures.append("generate: goal not accepted")
            else:
                result = handle.get_result_async()
                spin_until(result.done, 300.0)
                r = result.result().result if result.done() else None
                ms = (time.perf_counter() - t0) * 1e3
                print(flush=True)
                if r is None or not r.success:
                    failures.append(f"generate: {'no result' if r is None else r.message}")
                else:
                    print(f"[suite_client] generate: {r.generated_tokens} tokens in {ms:.0f} ms "
                          f"({r.tokens_per_second:.1f} tokens/s; first text after "
                          f"{(first[0] if first else 0) * 1e3:.0f} ms)", flush=True)
    except ValueError as exc:          # an unreadable image file: a clear message, exit 2
        log.error(str(exc))
        failures.append(str(exc))
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    for f in failures:
        print(f"[suite_client] failure: {f}", file=sys.stderr, flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
