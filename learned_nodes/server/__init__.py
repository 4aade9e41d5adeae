"""Model-server framework shared by the suite's learned nodes.

limits / validation / batching are pure Python (no rclpy, no torch) and tested without a graph;
lifecycle_node holds the rclpy LifecycleNode base that the concrete servers subclass.
"""
