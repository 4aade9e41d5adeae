"""suite_client: a small node of the suite that uses every service the way a user's node would --
and the example to copy (it needs nothing but rclpy and the suite's interfaces).

While odometry runs it listens to ~odometry and ~degeneracy (distance travelled, scans with a weak
direction, dropped scans). When the odometry has been quiet for `idle_s` (the bag ended) or
`listen_s` passed, it:
  1. classifies each of `image_paths` with class names chosen at call time (ClassifyImage),
  2. embeds `embed_image_path` (EmbedImage: feature + top labels),
  3. streams a status report generated from the numbers through the GenerateText ACTION (feedback
     printed as it arrives),
and prints each answer with its round-trip latency. A service whose server is not up within
`wait_s` is skipped with a note (not a failure) unless it is listed in `required`.

    ros2 run coin_lio_suite suite_client --ros-args -p image_paths:="[cat.jpg, mug.png]" \
        -p class_names:="[cat, dog, cup of coffee]"

The topic / service / action names are relative, so they resolve in the client's namespace: for a
suite launched with `namespace:=robot1`, run the client with `-r __ns:=/robot1`.

Exit status: 0 when every call it made succeeded, and also when SIGINT or SIGTERM (Ctrl-C, a
launcher shutting down) stops it: rclpy's handlers shut the context down, the client prints one
"stopped" line and no traceback; 1 when a call failed or a `required` server was not up (one line
per failure on stderr), stopped or not; 2 when a parameter is bad (a value of the wrong type, an
image file that cannot be read), said before it listens.

The steps, one function each, that main() runs in order: read_parameters, read_images,
listen_to_odometry, classify, embed, stream_status_report (call_service: one service call).
"""
from __future__ import annotations

import math
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np
import rclpy
from coin_lio_suite.action import GenerateText
from coin_lio_suite.msg import DegeneracyReport
from coin_lio_suite.srv import ClassifyImage, EmbedImage
from nav_msgs.msg import Odometry
from rclpy.action import ActionClient
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node

from suite_tools.image_msgs import numpy_to_image

# name -> default; every one can be set with -p NAME:=VALUE or a params file
PARAMETERS = {
    "image_paths": [""],                 # PNGs/JPEGs to classify, one call each ([""] = no classify call)
    "class_names": ["cat", "dog", "cup of coffee", "car", "bicycle"],   # chosen at call time
    "embed_image_path": "",              # PNG/JPEG to embed ('' = no embed call)
    "odometry_topic": "coin_lio_node/odometry",
    "degeneracy_topic": "coin_lio_node/degeneracy",
    "classify_service": "classifier_node/classify",
    "embed_service": "backbone_node/embed",
    "generate_action": "text_generation_node/generate",
    "listen_s": 120.0,                   # listen to the odometry at most this long (s)
    "idle_s": 3.0,                       # ... or until it has been quiet this long (the bag ended)
    "wait_s": 30.0,                      # wait this long for each server to come up
    "max_new_tokens": 48,                # length of the status report
    "required": [""],                    # of classify, embed, generate: those whose absence is a failure
    #                                      ([""]: declared as a string array, the empty entry ignored)
}


LoadedImage = tuple[np.ndarray, str]   # pixels and their sensor_msgs/Image encoding


class BadParameter(ValueError):
    """A parameter the client cannot use (exit 2)."""


def read_image(path: str) -> LoadedImage:
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
        # The facts as sentences to rephrase: a 135 M model keeps the figures of this form right (5 of
        # 5 facts, dense and pruned; docs/loraprune.md), where a list of facts to write a report from
        # gets invented figures. learned_nodes.llm.instruction_eval.demo_status_prompt is the same text.
        return (f"Rewrite as a short status report, keeping every number: The robot travelled "
                f"{self.distance_m:.1f} m. {self.weak_scans} of {self.scans} LiDAR scans were degenerate "
                f"(a tunnel or a flat field).")


class Calls:
    """What the calls came to: the failures, and whether a signal stopped the client."""

    def __init__(self) -> None:
        self.required: set[str] = set()
        self.failures: list[str] = []
        self.stopped = False

    def not_up(self, kind: str, name: str) -> None:
        if kind in self.required:
            self.failures.append(f"{kind}: no server")
        print(f"[suite_client] {kind}: {name} is not up; skipped", flush=True)

    def failed(self, kind: str, reason: str, ms: float) -> None:
        self.failures.append(f"{kind}: {reason}")
        print(f"[suite_client] {kind} FAILED after {ms:.0f} ms: {reason}", flush=True)

    def exit_status(self) -> int:
        if self.stopped:
            print(f"[suite_client] stopped by a signal (SIGINT/SIGTERM) before the end; "
                  f"{len(self.failures)} failure(s) so far", flush=True)
        for f in self.failures:
            print(f"[suite_client] failure: {f}", file=sys.stderr, flush=True)
        return 1 if self.failures else 0


def read_parameters(node: Node) -> dict:
    """Declare PARAMETERS on the node; their values (params file and -p applied). A value of the
    wrong type (e.g. 5 for a float: write 5.0) is a BadParameter."""
    try:
        p = {name: node.declare_parameter(name, default).value for name, default in PARAMETERS.items()}
    except ParameterException as exc:
        raise BadParameter(f"bad parameter: {exc}") from None
    p["required"] = {r for r in p["required"] if r}
    p["image_paths"] = [path for path in p["image_paths"] if path]
    return p


def read_images(p: dict) -> tuple[list[LoadedImage], LoadedImage | None]:
    """The images to classify and the one to embed, read before the listening: an unreadable file
    is a BadParameter, said at once rather than minutes later."""
    def read(key: str, path: str) -> LoadedImage:
        try:
            return read_image(path)
        except ValueError as exc:
            raise BadParameter(f"{key}: {exc}") from None

    embed_path = p["embed_image_path"]
    return ([read("image_paths", path) for path in p["image_paths"]],
            read("embed_image_path", embed_path) if embed_path else None)


def spin_until(node: Node, done: Callable[[], bool], timeout: float) -> bool:
    """Spin the node until done() or `timeout` s; done(). After SIGINT / SIGTERM (rclpy's handlers
    shut the context down) rclpy.spin_once raises ExternalShutdownException."""
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
    return done()


def server_is_up(node: Node, kind: str, name: str, wait: Callable[..., bool], timeout: float) -> bool:
    """wait(timeout_sec=...) is a client's wait_for_service or an action client's wait_for_server;
    they stop waiting when a signal shuts the context down: that is a stop, not a server "not up"."""
    up = wait(timeout_sec=0.0)
    if not up:
        print(f"[suite_client] {kind}: waiting up to {timeout:.0f} s for {name}", flush=True)
        up = wait(timeout_sec=timeout)
    if not up and not node.context.ok():
        raise ExternalShutdownException()
    return up


def call_service(node: Node, calls: Calls, kind: str, srv_type, name: str, request, wait_s: float):
    """(response, round trip ms) of one call; (None, ms) when the server is not up or the call
    failed (recorded in `calls`)."""
    cli = node.create_client(srv_type, name)
    if not server_is_up(node, kind, name, cli.wait_for_service, wait_s):
        calls.not_up(kind, name)
        return None, 0.0
    t0 = time.perf_counter()
    future = cli.call_async(request)
    spin_until(node, future.done, 120.0)
    ms = (time.perf_counter() - t0) * 1e3
    res = future.result() if future.done() else None
    if res is None or not res.success:
        calls.failed(kind, "no answer" if res is None else res.message, ms)
        return None, ms
    return res, ms


def listen_to_odometry(node: Node, p: dict) -> Status:
    """Count what the odometry publishes until it has been quiet for idle_s (the bag ended) or
    listen_s passed; print the summary."""
    status = Status()
    node.create_subscription(Odometry, p["odometry_topic"], status.on_odometry, 100)
    node.create_subscription(DegeneracyReport, p["degeneracy_topic"], status.on_degeneracy, 100)
    print(f"[suite_client] listening to {p['odometry_topic']} and {p['degeneracy_topic']} "
          f"(up to {p['listen_s']:.0f} s, until quiet for {p['idle_s']:.0f} s)", flush=True)
    start = time.monotonic()
    spin_until(node, lambda: (status.poses > 0 and time.monotonic() - status.last_msg > p["idle_s"])
               or time.monotonic() - start > p["listen_s"], p["listen_s"] + 1.0)
    print(f"[suite_client] odometry: {status.poses} poses, {status.distance_m:.1f} m travelled, "
          f"{status.weak_scans}/{status.scans} scans with a weak direction, {status.dropped} dropped",
          flush=True)
    return status


def classify(node: Node, p: dict, images: list[LoadedImage], calls: Calls) -> None:
    """ClassifyImage of each image with the class names chosen at call time; prints the top 3."""
    for path, image in zip(p["image_paths"], images):
        request = ClassifyImage.Request(image=numpy_to_image(*image), class_names=list(p["class_names"]),
                                        top_k=3)
        res, ms = call_service(node, calls, "classify", ClassifyImage, p["classify_service"], request,
                               p["wait_s"])
        if res is None:
            return                       # not up or failed: recorded once, the other images skipped
        best = ", ".join(f"{n} {s:.2f}" for n, s in zip(res.labels, res.scores))
        print(f"[suite_client] classify {Path(path).name} ({ms:.0f} ms round trip, {res.inference_ms:.0f} ms "
              f"model): {best}", flush=True)


def embed(node: Node, p: dict, image: LoadedImage | None, calls: Calls) -> None:
    """EmbedImage: the feature's size and norm, and the head's top 3 labels."""
    if image is None:
        return
    request = EmbedImage.Request(image=numpy_to_image(*image))
    res, ms = call_service(node, calls, "embed", EmbedImage, p["embed_service"], request, p["wait_s"])
    if res is not None:
        norm = math.sqrt(sum(v * v for v in res.embedding))
        best = ", ".join(f"{n} {s:.2f}" for n, s in list(zip(res.labels, res.scores))[:3])
        print(f"[suite_client] embed ({ms:.0f} ms): {len(res.embedding)}-d feature (norm {norm:.2f}); "
              f"top labels {best}", flush=True)


def stream_status_report(node: Node, p: dict, status: Status, calls: Calls) -> None:
    """A status report written from the odometry's numbers through the GenerateText action, its
    feedback (the text as it is generated) printed as it arrives."""
    action = ActionClient(node, GenerateText, p["generate_action"])
    if not server_is_up(node, "generate", p["generate_action"], action.wait_for_server, p["wait_s"]):
        calls.not_up("generate", p["generate_action"])
        return
    goal = GenerateText.Goal(prompt=status.prompt(), max_new_tokens=int(p["max_new_tokens"]),
                             temperature=0.0, top_p=1.0, seed=0)
    print("[suite_client] generate (streamed): ", end="", flush=True)
    first: list[float] = []
    t0 = time.perf_counter()

    def on_feedback(fb) -> None:
        first or first.append(time.perf_counter() - t0)
        print(fb.feedback.text_delta, end="", flush=True)

    sent = action.send_goal_async(goal, feedback_callback=on_feedback)
    spin_until(node, sent.done, 30.0)
    handle = sent.result() if sent.done() else None
    if handle is None or not handle.accepted:
        print(flush=True)
        calls.failed("generate", "goal not accepted", (time.perf_counter() - t0) * 1e3)
        return
    result = handle.get_result_async()
    spin_until(node, result.done, 300.0)
    r = result.result().result if result.done() else None
    ms = (time.perf_counter() - t0) * 1e3
    print(flush=True)
    if r is None or not r.success:
        calls.failed("generate", "no result" if r is None else r.message, ms)
        return
    print(f"[suite_client] generate: {r.generated_tokens} tokens in {ms:.0f} ms ({r.tokens_per_second:.1f} "
          f"tokens/s; first text after {(first[0] if first else 0) * 1e3:.0f} ms)", flush=True)


def main(args: list[str] | None = None) -> int:
    """The steps in order; the exit status as the module docstring says."""
    rclpy.init(args=args)   # installs rclpy's SIGINT / SIGTERM handlers: they shut the context down
    node: Node | None = None
    calls = Calls()
    try:
        node = rclpy.create_node("suite_client")
        p = read_parameters(node)
        calls.required = p["required"]
        to_classify, to_embed = read_images(p)
        status = listen_to_odometry(node, p)
        classify(node, p, to_classify, calls)
        embed(node, p, to_embed, calls)
        stream_status_report(node, p, status, calls)
    except BadParameter as exc:          # one line, exit 2
        print(f"[suite_client] {exc}", file=sys.stderr, flush=True)
        return 2
    except (KeyboardInterrupt, ExternalShutdownException):   # Ctrl-C, SIGTERM from a launcher
        calls.stopped = True
    except Exception:
        if rclpy.ok():
            raise                        # a real error: its traceback
        calls.stopped = True             # rclpy calls fail once a signal has shut the context down
    finally:
        # a second Ctrl-C (a terminal's and a launcher's both arrive) must not break the clean-up;
        # the caller's handler comes back afterwards (main() may be called in-process)
        previous = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    return calls.exit_status()


if __name__ == "__main__":
    raise SystemExit(main())
