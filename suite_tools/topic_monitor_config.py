"""Configuration of topic_monitor (what to subscribe to, how, when to stop), validated; no rclpy, so
tools and tests can read and check it without ROS."""
from __future__ import annotations

from dataclasses import dataclass, field


def parse_topic_entry(entry: str) -> tuple[str, str]:
    """'topic:pkg/msg/Type' -> (topic, type name); ValueError naming the entry otherwise."""
    topic, sep, type_name = entry.rpartition(":")
    if not sep or not topic or not type_name:
        raise ValueError(f"topics entry '{entry}' is not 'topic:pkg/msg/Type'")
    return topic, type_name


@dataclass
class TopicMonitorConfig:
    topics: list[str] = field(default_factory=list)  # "topic:pkg/msg/Type" entries ('' entries ignored)
    reliability: str = "best_effort"   # best_effort (sensor data QoS) | reliable
    depth: int = 50                    # history depth of each subscription
    report_path: str = ""              # JSON report (rewritten every second and at exit); '' = none
    idle_timeout: float = 0.0          # exit 0 this many s after the last message (once any arrived); 0 = never
    duration: float = 0.0              # exit 0 after this many s; 0 = never

    def __post_init__(self) -> None:
        self.topics = [t for t in self.topics if t]
        if self.reliability not in ("best_effort", "reliable"):
            raise ValueError(f"reliability must be best_effort or reliable, got '{self.reliability}'")
        if self.depth < 1:
            raise ValueError(f"depth must be >= 1, got {self.depth}")
        if self.idle_timeout < 0 or self.duration < 0:
            raise ValueError("idle_timeout and duration must be >= 0 (0 = never)")
        for entry in self.topics:
            parse_topic_entry(entry)

    def subscriptions(self) -> list[tuple[str, str]]:
        """(topic, type name) of every `topics` entry."""
        return [parse_topic_entry(entry) for entry in self.topics]
