"""topic_monitor node: subscribes to any topics (raw, never deserialised), records receive time,
header stamp and size of every message, writes a JSON report and prints a summary on exit.

Parameters:
  topics         string[]  "topic:pkg/msg/Type" entries
  reliability    string    best_effort (sensor data QoS) | reliable
  depth          int       history depth of each subscription
  report_path    string    JSON report (rewritten every second and at exit); '' = none
  idle_timeout   double    exit 0 this many s after the last message (once any arrived); 0 = never
  duration       double    exit 0 after this many s; 0 = never
"""
from __future__ import annotations

import time

from suite_tools.cdr_peek import header_stamp_ns
from suite_tools.node_main import message_type, run_node
from suite_tools.topic_stats import TopicRecord, format_summary, write_report


def _make_node():
    from rclpy.node import Node
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

    class TopicMonitor(Node):
        def __init__(self) -> None:
            super().__init__("topic_monitor")
            self.declare_parameter("topics", [""])
            self.declare_parameter("reliability", "best_effort")
            self.declare_parameter("depth", 50)
            self.declare_parameter("report_path", "")
            self.declare_parameter("idle_timeout", 0.0)
            self.declare_parameter("duration", 0.0)
            self.exit_code = None
            rel = self.get_parameter("reliability").value
            if rel not in ("best_effort", "reliable"):
                raise SystemExit(f"reliability must be best_effort or reliable, got '{rel}'")
            qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=int(self.get_parameter("depth").value),
                             reliability=ReliabilityPolicy.BEST_EFFORT if rel == "best_effort"
                             else ReliabilityPolicy.RELIABLE)
            self.records: list[TopicRecord] = []
            for entry in self.get_parameter("topics").value:
                if not entry:
                    continue
                topic, sep, type_name = entry.rpartition(":")
                if not sep or not topic:
                    raise SystemExit(f"topics entry '{entry}' is not 'topic:pkg/msg/Type'")
                record = TopicRecord(topic, type_name)
                self.records.append(record)
                self.create_subscription(message_type(type_name), topic,
                                         lambda raw, r=record: self._on_msg(r, raw), qos, raw=True)
            if not self.records:
                raise SystemExit("topic_monitor: parameter 'topics' names no topic")
            self.report_path = self.get_parameter("report_path").value
            self.idle_timeout = float(self.get_parameter("idle_timeout").value)
            self.duration = float(self.get_parameter("duration").value)
            self.t_start = time.monotonic()
            self.t_last: float | None = None
            self.create_timer(0.2, self._tick)
            self.get_logger().info(f"monitoring {[r.topic for r in self.records]} ({rel})")

        def _on_msg(self, record: TopicRecord, raw: bytes) -> None:
            record.add(time.time_ns(), header_stamp_ns(raw), len(raw))
            self.t_last = time.monotonic()

        def _tick(self) -> None:
            now = time.monotonic()
            if self.report_path and int(now * 5) % 5 == 0:
                write_report(self.report_path, self.records)
            if self.duration > 0 and now - self.t_start > self.duration:
                self.exit_code = 0
            if self.idle_timeout > 0 and self.t_last is not None and now - self.t_last > self.idle_timeout:
                self.get_logger().info(f"no message for {self.idle_timeout:.1f} s: done")
                self.exit_code = 0

        def on_shutdown(self) -> None:
            if self.report_path:
                write_report(self.report_path, self.records)
            print(format_summary(self.records), flush=True)

    return TopicMonitor()


def main(args=None) -> int:
    return run_node(_make_node, args)


if __name__ == "__main__":
    raise SystemExit(main())
