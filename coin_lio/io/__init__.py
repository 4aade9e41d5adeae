"""Message <-> numpy conversions, duck-typed so they serve rclpy messages and rosbags messages alike."""
