"""bag_player: plays a ROS 2 bag (MCAP or sqlite3) into the graph with its original timing --
`ros2 bag play` for machines without ros2cli. Messages are published as the recorded CDR bytes
(no deserialisation), so 1.5 MB point clouds cost ~1 ms each.

  coin-lio-suite-play BAG [--rate R] [--loop] [--start SEC] [--topics T ...] [--clock [HZ]]
                          [--qos reliable|best_effort] [--wait-subscribers N] [--delay SEC]
                          [--ros-args -r /ouster/points:=/other/points ...]

Topics are renamed with ordinary ROS remapping (`--ros-args -r FROM:=TO`, or `remap:` in a
launch file), as for any node. Topics recorded from transient-local publishers (latched, e.g.
ouster-ros' /ouster/metadata; read from the bag's offered_qos_profiles) are published latched
(reliable, transient local, the recorded depth), as `ros2 bag play` does: a subscriber that
comes later still gets the last message, so --wait-subscribers does not wait for them.

Also an executable of the package (`bag_player`), so launch files can start it as a node.
"""
from __future__ import annotations

import argparse
import queue
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np

from suite_tools.bag_io import bag_offered_qos, bag_time_range, bag_topics, is_latched, read_bag
from suite_tools.node_main import message_type
from suite_tools.playback_clock import PlaybackClock, wait_until


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="coin-lio-suite-play", description=__doc__.split("\n\n")[0])
    p.add_argument("bag", type=Path, help="bag folder (or .mcap / .db3 file)")
    p.add_argument("--rate", type=float, default=1.0, help="playback speed factor")
    p.add_argument("--loop", action="store_true", help="start over at the end (time jumps back)")
    p.add_argument("--start", type=float, default=0.0, help="skip the first SEC seconds")
    p.add_argument("--topics", nargs="+", help="play only these topics")
    p.add_argument("--clock", type=float, nargs="?", const=100.0, default=0.0,
                   help="publish /clock (bag time) at HZ (default 100 when given)")
    p.add_argument("--qos", choices=["reliable", "best_effort"], default="reliable",
                   help="publisher reliability (reliable also serves best-effort subscribers)")
    p.add_argument("--wait-subscribers", type=int, default=0, metavar="N",
                   help="before playing, wait until every played topic has N subscribers")
    p.add_argument("--wait-timeout", type=float, default=30.0, help="bound of that wait (s)")
    p.add_argument("--delay", type=float, default=0.0, help="sleep SEC before playing")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    if not args.rate > 0:
        p.error("--rate must be > 0")
    if args.start < 0 or args.delay < 0 or args.clock < 0:
        p.error("--start, --delay and --clock must be >= 0")
    return args


def prefetch(messages, max_bytes: int = 256 << 20, max_count: int = 2000):
    """Read ahead in a thread (like ros2 bag play's queue), so storage reads (a 6 MB cloud out of
    sqlite3 takes milliseconds) never delay a due message. Bounded in bytes and count."""
    q: queue.Queue = queue.Queue(maxsize=max_count)
    total_units = max(1, max_bytes >> 20)  # units of 1 MB
    budget = threading.Semaphore(total_units)
    done = object()
    stop = threading.Event()

    def reader() -> None:
        try:
            for m in messages:
                units = min(total_units, max(1, len(m.raw) >> 20))
                for _ in range(units):
                    while not budget.acquire(timeout=0.1):
                        if stop.is_set():
                            return
                q.put((m, units))
                if stop.is_set():
                    return
            q.put((done, 0))
        except Exception as exc:  # surfaced in the consumer
            q.put((exc, 0))

    thread = threading.Thread(target=reader, name="bag_prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item, units = q.get()
            if item is done:
                return
            if isinstance(item, Exception):
                raise item
            for _ in range(units):
                budget.release()
            yield item
    finally:
        stop.set()


def play(args: argparse.Namespace, node) -> dict:
    """Publish the bag's messages on time; returns playback statistics."""
    import rclpy
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

    topics = bag_topics(args.bag)
    played = [t for t in topics if args.topics is None or t in args.topics]
    missing = set(args.topics or ()) - set(topics)
    if missing:
        raise ValueError(f"bag has no topics {sorted(missing)}; it has {sorted(topics)}")
    qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100,
                     reliability=ReliabilityPolicy.RELIABLE if args.qos == "reliable"
                     else ReliabilityPolicy.BEST_EFFORT)
    offered = bag_offered_qos(args.bag)
    latched = {t: max([q.depth for q in offered[t]] + [1]) for t in played if is_latched(offered.get(t, ()))}

    def topic_qos(t: str) -> QoSProfile:
        if t not in latched:
            return qos
        return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=latched[t],
                          reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)

    pubs = {t: node.create_publisher(message_type(topics[t][0]), t, topic_qos(t)) for t in played}
    if latched and not args.quiet:
        print(f"[bag_player] latched (transient local, as recorded): {sorted(latched)}", flush=True)
    clock_pub = None
    if args.clock > 0:
        clock_cls = message_type("rosgraph_msgs/msg/Clock")
        clock_pub = node.create_publisher(clock_cls, "/clock", 10)

    waited = {t: p for t, p in pubs.items() if t not in latched}   # latched: late joiners get it
    if args.wait_subscribers > 0:
        deadline = time.monotonic() + args.wait_timeout
        while any(p.get_subscription_count() < args.wait_subscribers for p in waited.values()):
            if time.monotonic() > deadline or not rclpy.ok():
                lacking = [t for t, p in waited.items() if p.get_subscription_count() < args.wait_subscribers]
                raise TimeoutError(f"no {args.wait_subscribers} subscriber(s) on {lacking} "
                                   f"after {args.wait_timeout:.0f} s")
            time.sleep(0.05)
        # The publisher has seen the subscriber; give the subscriber's side of the match time
        # to complete, or the first best-effort messages may go nowhere.
        time.sleep(0.5)
    if args.delay:
        time.sleep(args.delay)

    t0, _ = bag_time_range(args.bag)
    start_ns = t0 + int(args.start * 1e9)
    clock = PlaybackClock(rate=args.rate)

    def publish_clock() -> None:
        msg = clock_cls()
        now = clock.bag_now_ns()
        msg.clock.sec, msg.clock.nanosec = now // 1_000_000_000, now % 1_000_000_000
        clock_pub.publish(msg)

    counts: Counter = Counter()
    lateness_ms: list[float] = []
    loops = 0
    while rclpy.ok():
        first = True
        for m in prefetch(read_bag(args.bag, played, start_ns=start_ns)):
            if first:
                clock.restart(m.t_ns)
                first = False
            due = clock.wall_due_ns(m.t_ns)
            if not wait_until(due, publish_clock if clock_pub else None,
                              int(1e9 / args.clock) if clock_pub else 0, lambda: not rclpy.ok()):
                break
            pubs[m.topic].publish(m.raw)
            lateness_ms.append((time.monotonic_ns() - due) / 1e6)
            counts[m.topic] += 1
        loops += 1
        if not args.loop or first:  # first: nothing to play at all
            break
    late = np.asarray(lateness_ms) if lateness_ms else np.zeros(1)
    return {"counts": dict(counts), "loops": loops, "lateness_median_ms": float(np.median(late)),
            "lateness_max_ms": float(late.max())}


def main(argv: list[str] | None = None) -> int:
    import rclpy
    from rclpy.executors import ExternalShutdownException
    from rclpy.utilities import remove_ros_args

    argv = list(sys.argv if argv is None else argv)
    args = parse_args(remove_ros_args(argv)[1:])
    if not args.bag.exists():
        print(f"[bag_player] bag '{args.bag}' does not exist", file=sys.stderr)
        return 2
    rclpy.init(args=argv)
    node = rclpy.create_node("bag_player")
    try:
        stats = play(args, node)
        if not args.quiet:
            print(f"[bag_player] played {sum(stats['counts'].values())} messages {stats['counts']} "
                  f"in {stats['loops']} loop(s); lateness median {stats['lateness_median_ms']:.2f} ms, "
                  f"max {stats['lateness_max_ms']:.2f} ms", flush=True)
        return 0
    except (KeyboardInterrupt, ExternalShutdownException):
        return 0
    except (ValueError, TimeoutError, KeyError) as exc:
        print(f"[bag_player] {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    raise SystemExit(main())
