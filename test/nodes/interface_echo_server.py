"""Test-only server for every interface of the suite: answers are computed from the request so a
client in another process can check the whole round trip (field names, types, arrays, images).

  services: /echo/classify (ClassifyImage), /echo/embed (EmbedImage), /echo/generate (GenerateText)
  action:   /echo/generate_stream (GenerateText; one feedback per word, cancellable)
  topics:   /echo/report_in -> /echo/report_out (DegeneracyReport, republished with +1 residuals)
"""
import time

import rclpy
from rclpy.action import ActionServer, CancelResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node

from coin_lio_suite.action import GenerateText as GenerateTextAction
from coin_lio_suite.msg import DegeneracyReport
from coin_lio_suite.srv import ClassifyImage, EmbedImage, GenerateText


class EchoServer(Node):
    def __init__(self) -> None:
        super().__init__("interface_echo_server")
        group = ReentrantCallbackGroup()
        self.create_service(ClassifyImage, "/echo/classify", self.classify, callback_group=group)
        self.create_service(EmbedImage, "/echo/embed", self.embed, callback_group=group)
        self.create_service(GenerateText, "/echo/generate", self.generate, callback_group=group)
        ActionServer(self, GenerateTextAction, "/echo/generate_stream", self.stream,
                     cancel_callback=lambda _: CancelResponse.ACCEPT, callback_group=group)
        self.pub = self.create_publisher(DegeneracyReport, "/echo/report_out", 10)
        self.create_subscription(DegeneracyReport, "/echo/report_in", self.report, 10)

    def classify(self, req, res):
        names = list(req.class_names) or ["default_a", "default_b"]
        k = req.top_k or len(names)
        res.labels = list(reversed(names))[:k]
        res.scores = [float(i + 1) / len(names) for i in range(len(res.labels))]
        res.success = True
        res.message = f"{req.image.width}x{req.image.height} {req.image.encoding} {len(req.image.data)}B"
        res.inference_ms = 1.5
        return res

    def embed(self, req, res):
        data = bytes(req.image.data)
        res.embedding = [float(b) for b in data[:8]]
        res.labels, res.scores = ["x"], [1.0]
        res.success, res.message, res.inference_ms = True, req.image.encoding, 0.5
        return res

    def generate(self, req, res):
        res.success = True
        res.text = req.prompt.upper()
        res.prompt_tokens = len(req.prompt.split())
        res.generated_tokens = req.max_new_tokens
        res.tokens_per_second = req.temperature + req.top_p + req.seed
        return res

    def stream(self, goal_handle):
        req = goal_handle.request
        words = req.prompt.split()
        result = GenerateTextAction.Result()
        for i, w in enumerate(words):
            if goal_handle.is_cancel_requested:
                goal_handle.canceled()
                result.message = "canceled"
                result.generated_tokens = i
                return result
            fb = GenerateTextAction.Feedback(text_delta=w + " ", generated_tokens=i + 1)
            goal_handle.publish_feedback(fb)
            time.sleep(0.05)
        goal_handle.succeed()
        result.success, result.text, result.generated_tokens = True, " ".join(words), len(words)
        return result

    def report(self, msg):
        msg.num_geometric_residuals += 1
        self.pub.publish(msg)


def main() -> None:
    rclpy.init()
    node = EchoServer()
    try:
        executor = MultiThreadedExecutor(num_threads=4)
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
