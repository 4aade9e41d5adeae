#!/usr/bin/env python3
"""Test-only listener: appends what it hears on `chatter` to the file in parameter `out_file`.

Writes `ready <fqn> gain=<gain!r>` first (the float parameter shows launch's typing made it
through), `got: <data>` per message, and `clean-exit` when stopped by SIGINT.
"""
import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from std_msgs.msg import String


def main() -> int:
    rclpy.init()
    node = Node("listener")
    out_path = node.declare_parameter("out_file", "").value
    gain = node.declare_parameter("gain", 1.0).value  # a double: an int override would fail
    out = open(out_path, "a", buffering=1)
    out.write(f"ready {node.get_fully_qualified_name()} gain={gain!r}\n")
    node.create_subscription(String, "chatter", lambda m: out.write(f"got: {m.data}\n"), 10)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        out.write("clean-exit\n")
    finally:
        out.close()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
