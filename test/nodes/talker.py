#!/usr/bin/env python3
"""Test-only talker: publishes std_msgs/String '<message> N' on `chatter` at `rate_hz`."""
import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from std_msgs.msg import String


def main() -> int:
    rclpy.init()
    node = Node("talker")
    message = node.declare_parameter("message", "hello").value
    rate_hz = node.declare_parameter("rate_hz", 10.0).value
    publisher = node.create_publisher(String, "chatter", 10)
    count = [0]

    def tick() -> None:
        count[0] += 1
        publisher.publish(String(data=f"{message} {count[0]}"))

    node.create_timer(1.0 / rate_hz, tick)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
