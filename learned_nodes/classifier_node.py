"""classifier_node: open-vocabulary image classification (CoCoOp / CoOp / zero-shot) as a
lifecycle ROS 2 service server.

Service `~/classify` (coin_lio_suite/srv/ClassifyImage): an image (rgb8, bgr8, mono8, mono16,
32FC1) and the class names to choose from (empty = the configured `class_names`); answers the
top_k labels with softmax scores and the model time. Concurrent requests are batched.
Parameters: see learned_nodes.classifier_node_config.ClassifierNodeConfig (mirrored by
config/classifier.yaml). torch loads in load_model (configure), after main() checked it is installed.

    ros2 run coin_lio_suite classifier_node --ros-args --params-file config/classifier.yaml
"""
from __future__ import annotations

import time

import numpy as np
from coin_lio_suite.srv import ClassifyImage

from learned_nodes.classifier_node_config import ClassifierNodeConfig
from learned_nodes.server.lifecycle_node import ModelServerNode, NotServing
from learned_nodes.server.main import serve
from learned_nodes.server.validation import ClassifyInput, RequestError, check_classify
from suite_tools.dependencies import require


class ClassifierNode(ModelServerNode):
    """`~/classify` over a PromptClassifier; concurrent requests batched (ModelServerNode)."""

    config_class = ClassifierNodeConfig

    def __init__(self) -> None:
        super().__init__("classifier_node")
        self.create_service(ClassifyImage, "~/classify", self._on_classify,
                            callback_group=self.service_group,
                            qos_profile=self.request_qos())
        self.served = 0

    def load_model(self):
        from learned_nodes.cocoop.inference import PromptClassifier

        m = self.config.model
        clf = PromptClassifier.from_paths(m.encoder_path, m.prompt_learner_path or None, m.device,
                                          m.threads, m.class_cache_size, m.image_mean)
        for warning in clf.warnings:
            self.get_logger().warning(warning)
        if self.config.class_names:  # warm the cache and the model (first call is slow otherwise)
            clf.classify(np.zeros((32, 32, 3), np.uint8), self.config.class_names)
        self.get_logger().info(f"{clf.method} on {clf.encoder.encoder_id} ({m.device})")
        return clf

    def serve_batch(self, items: list[ClassifyInput]):
        scores, ms = self.model.classify_many([it.rgb for it in items], [it.class_names for it in items])
        return [(s, ms) for s in scores]

    def _on_classify(self, request, response):
        t0 = time.perf_counter()
        try:
            with self.conversion_slots:
                item = check_classify(request.image, list(request.class_names), request.top_k,
                                      self.config.class_names, self.limits)
            scores, ms = self.submit(item)
        except (RequestError, NotServing, TimeoutError, RuntimeError) as exc:
            response.success, response.message = False, str(exc)
            response.inference_ms = float((time.perf_counter() - t0) * 1000.0)
            return response
        order = np.argsort(-scores.probs, kind="stable")[: item.top_k]
        response.success, response.message = True, ""
        response.labels = [item.class_names[i] for i in order]
        response.scores = [float(scores.probs[i]) for i in order]
        response.inference_ms = float(ms)
        self.served += 1
        return response


def main(args=None) -> int:
    require("classifier_node")   # one line, not a traceback, where torch & co. are not installed
    return serve(ClassifierNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
