"""topic_monitor node: subscribes to any topics (raw, never deserialised), records receive time,
header stamp and size of every message, writes a JSON report and prints a summary on exit.

Parameters (suite_tools.topic_monitor_config.TopicMonitorConfig):
  topics         string[]  "topic:pkg/msg/Type" entries
  reliability    string    best_effort (sensor data QoS) | reliable
  depth          int       history depth of each subscription
  report_path    string    JSON report (rewritten every second and at exit); '' = none
  idle_timeout   double    exit 0 this many s after the last message (once any arrived); 0 = never
  duration       double    exit 0 after this many s; 0 = never
A bad parameter ends it with one line and exit status 2.
"""
from __future__ import annotations

import time

from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

from suite_tools.cdr_peek import header_stamp_ns
from suite_tools.config_params import ConfigError, declare_and_build
from suite_tools.node_main import message_type, run_node
from suite_tools.topic_monitor_config import TopicMonitorConfig
from suite_tools.topic_stats import TopicRecord, format_summary, write_report


class TopicMonitor(Node):
    """One raw subscription per `topics` entry; a 0.2 s timer writes the report and ends the run."""

    def __init__(self) -> None:
        super().__init__("topic_monitor")
        try:
            cfg = declare_and_build(self, TopicMonitorConfig)
        except ConfigError as exc:
            raise SystemExit(f"invalid parameters: {exc}") from None
        if not cfg.topics:
            raise SystemExit("topic_monitor: parameter 'topics' names no topic")
        self.exit_code = None
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=cfg.depth,
                         reliability=ReliabilityPolicy.BEST_EFFORT if cfg.reliability == "best_effort"
                         else ReliabilityPolicy.RELIABLE)
        self.records: list[TopicRecord] = []
        for topic, type_name in cfg.subscriptions():
            try:
                msg_class = message_type(type_name)
            except ValueError as exc:   # a misspelt or unbuilt type: one line, exit 2
                raise SystemExit(f"topics entry '{topic}:{type_name}': {exc}") from None
            record = TopicRecord(topic, type_name)
            self.records.append(record)
            self.create_subscription(msg_class, topic, lambda raw, r=record: self._on_msg(r, raw), qos, raw=True)
        self.report_path = cfg.report_path
        self.idle_timeout = cfg.idle_timeout
        self.duration = cfg.duration
        self.t_start = time.monotonic()
        self.t_last: float | None = None
        self.create_timer(0.2, self._tick)
        self.get_logger().info(f"monitoring {[r.topic for r in self.records]} ({cfg.reliability})")

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


def main(args=None) -> int:
    return run_node(TopicMonitor, args)


if __name__ == "__main__":
    raise SystemExit(main())
