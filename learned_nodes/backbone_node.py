"""backbone_node: a DAFT-tuned backbone + linear head (learned_nodes.daft) as a lifecycle ROS 2
service server.

Service `~/embed` (coin_lio_suite/srv/EmbedImage): an image (rgb8, bgr8, mono8, mono16, 32FC1),
preprocessed like the training data (grey -> 3 channels, resized to the checkpoint's image size,
(x - 127) / 128); answers the L2-normalised backbone feature (`embedding`), the head's top_k labels
with softmax scores (names from the checkpoint config, else the class index: "0".."9" for digits)
and the model time. Concurrent requests are batched. Bad requests get success=false with the reason.

configure loads `model.checkpoint_path` (a folder of config.json + model.safetensors written by
learned_nodes.daft.tune / save_tuned; default: the shipped learned_nodes/models/daft_effl0_mnist,
EfficientNet-Lite0 DAFT-tuned on MNIST, so the node serves digit labels out of the box); pickles,
truncated files and wrong shapes are refused there,
the node stays up and answers "node is not active (model failed to load: <reason>)".
Parameters: see learned_nodes.backbone_node_config.BackboneNodeConfig (mirrored by
config/backbone.yaml). torch loads in load_model (configure), after main() checked it is installed.

    python -m learned_nodes.backbone_node --ros-args --params-file config/backbone.yaml \
        -p model.checkpoint_path:=out/daft_effl0/checkpoint
"""
from __future__ import annotations

import time

import numpy as np
from coin_lio_suite.srv import EmbedImage

from learned_nodes.backbone_node_config import BackboneNodeConfig
from learned_nodes.server.lifecycle_node import ModelServerNode, NotServing
from learned_nodes.server.main import serve
from learned_nodes.server.validation import RequestError, check_image
from suite_tools.dependencies import require


class BackboneNode(ModelServerNode):
    """`~/embed` over a TunedServer; concurrent requests batched (ModelServerNode)."""

    config_class = BackboneNodeConfig

    def __init__(self) -> None:
        super().__init__("backbone_node")
        self.create_service(EmbedImage, "~/embed", self._on_embed, callback_group=self.service_group,
                            qos_profile=self.request_qos())
        self.served = 0

    def load_model(self):
        from learned_nodes.daft.serve import TunedServer

        m = self.config.model
        server = TunedServer.load(m.checkpoint_path, m.device, m.threads, m.to_grey)
        self.get_logger().info(
            f"{server.backbone_name}: {server.feature_dim}-d features, {server.num_classes} classes, "
            f"{server.image_size} px ({m.device})")
        return server

    def serve_batch(self, items: list[np.ndarray]):
        results, ms = self.model.embed_many(items)
        return [(r, ms) for r in results]

    def _on_embed(self, request, response):
        t0 = time.perf_counter()
        try:
            with self.conversion_slots:
                rgb = check_image(request.image, self.limits)
                model = self.model
                if model is None:  # unconfigured or the checkpoint failed to load: say why
                    raise self.not_serving()
                item = model.preprocess(rgb)
                del rgb
            result, ms = self.submit(item)
        except (RequestError, NotServing, TimeoutError, RuntimeError) as exc:
            response.success, response.message = False, str(exc)
            response.inference_ms = float((time.perf_counter() - t0) * 1000.0)
            return response
        k = min(self.config.top_k, len(result.probs), self.limits.max_top_k)
        order = np.argsort(-result.probs, kind="stable")[:k]
        response.success, response.message = True, ""
        response.embedding = result.embedding.astype(np.float32).tolist()
        response.labels = [model.labels[i] for i in order]
        response.scores = [float(result.probs[i]) for i in order]
        response.inference_ms = float(ms)
        self.served += 1
        return response


def main(args=None) -> int:
    require("backbone_node")   # one line, not a traceback, where torch & co. are not installed
    return serve(BackboneNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
