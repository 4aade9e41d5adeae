"""Small synchronous clients of the model services (ClassifyImage, EmbedImage) and a helper to run
one model server on an isolated graph: shared by the demo and the service benchmarks (tests use
the same pieces)."""
from __future__ import annotations

import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from learned_nodes.image_conversions import numpy_to_image

SERVICE = "/classifier_node/classify"
EMBED_SERVICE = "/backbone_node/embed"


class ServiceClient:
    """Blocking calls to one service from a node of this process (rclpy must be initialised)."""

    def __init__(self, srv_type: type, service: str, node_name: str) -> None:
        import rclpy

        self._rclpy, self._srv = rclpy, srv_type
        self.node = rclpy.create_node(node_name)
        self.client = self.node.create_client(srv_type, service)

    def wait(self, timeout: float = 60.0) -> bool:
        return self.client.wait_for_service(timeout_sec=timeout)

    def call(self, request, timeout: float = 60.0):
        """(response, round-trip ms)."""
        t0 = time.perf_counter()
        future = self.client.call_async(request)
        self._rclpy.spin_until_future_complete(self.node, future, timeout_sec=timeout)
        if not future.done():
            raise TimeoutError(f"no answer from {self.client.srv_name} within {timeout} s")
        return future.result(), (time.perf_counter() - t0) * 1000.0

    def call_many(self, requests: list, timeout: float = 120.0):
        """All requests in flight at once; (responses, wall ms)."""
        t0 = time.perf_counter()
        futures = [self.client.call_async(r) for r in requests]
        deadline = time.monotonic() + timeout
        while not all(f.done() for f in futures):
            if time.monotonic() > deadline:
                raise TimeoutError("concurrent requests not all answered")
            self._rclpy.spin_once(self.node, timeout_sec=0.05)
        return [f.result() for f in futures], (time.perf_counter() - t0) * 1000.0

    def close(self) -> None:
        self.node.destroy_node()


class ClassifyClient(ServiceClient):
    """Blocking calls to ~/classify of classifier_node."""

    def __init__(self, service: str = SERVICE, node_name: str = "classify_client") -> None:
        from coin_lio_suite.srv import ClassifyImage

        super().__init__(ClassifyImage, service, node_name)

    def request(self, image: np.ndarray | object, names: Sequence[str] = (), top_k: int = 0,
                encoding: str = "rgb8"):
        img = numpy_to_image(image, encoding) if isinstance(image, np.ndarray) else image
        return self._srv.Request(image=img, class_names=list(names), top_k=top_k)


class EmbedClient(ServiceClient):
    """Blocking calls to ~/embed of backbone_node."""

    def __init__(self, service: str = EMBED_SERVICE, node_name: str = "embed_client") -> None:
        from coin_lio_suite.srv import EmbedImage

        super().__init__(EmbedImage, service, node_name)

    def request(self, image: np.ndarray | object, encoding: str = "rgb8"):
        img = numpy_to_image(image, encoding) if isinstance(image, np.ndarray) else image
        return self._srv.Request(image=img)


@contextmanager
def server_graph(module: str, node_name: str, params_file: str | Path, log_dir: str | Path,
                 make_client: Callable[[], ServiceClient]) -> Iterator[ServiceClient]:
    """`python -m module` (a model server) on a leased DDS domain, rclpy initialised here on that
    domain, and a client of it once its service is up."""
    import sys

    import rclpy

    from suite_tools.testing import Graph

    with Graph(log_dir) as g:
        g.spawn(node_name, [sys.executable, "-m", module, "--ros-args", "--params-file", str(params_file)])
        os.environ.update({k: g.env[k] for k in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE",
                                                  "FASTDDS_DEFAULT_PROFILES_FILE", "RMW_IMPLEMENTATION")})
        rclpy.init(domain_id=g.domain_id)
        client = make_client()
        try:
            if not client.wait(90.0):
                raise RuntimeError(f"{node_name} did not come up; its log:\n" + g.log(node_name)[-3000:])
            yield client
        finally:
            client.close()
            rclpy.try_shutdown()


@contextmanager
def classifier_graph(params_file: str | Path, log_dir: str | Path) -> Iterator[ClassifyClient]:
    """classifier_node (python -m) on a leased DDS domain, rclpy initialised here on that domain."""
    with server_graph("learned_nodes.classifier_node", "classifier_node", params_file, log_dir,
                      ClassifyClient) as client:
        yield client
