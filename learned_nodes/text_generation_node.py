"""text_generation_node: a causal LM (SmolLM2-135M-Instruct by default, any local HF / GGUF /
pruned checkpoint) as a lifecycle ROS 2 text generation server.

Service `~/generate` (coin_lio_suite/srv/GenerateText): prompt -> completion (blocking).
Action `~/generate` (coin_lio_suite/action/GenerateText): the same goal; feedback streams
`text_delta` + `generated_tokens` as tokens arrive (their concatenation is the result text); a
cancel request stops generation between two tokens and the goal ends CANCELED with the partial text.
More than `generation.max_concurrent` generations at once: the next `generation.max_waiting` wait
for a slot; beyond that the service answers success=false "busy" and an action goal is aborted
with that message. Bad requests get success=false + the reason.

configure loads `model_path` (pickles, truncated files, wrong shapes refused there; the node stays
up and answers "node is not active (model failed to load: <reason>)"). The core lives in
learned_nodes.llm (no rclpy). Parameters: learned_nodes.text_generation_node_config.
TextGenerationNodeConfig (config/text_generation.yaml). torch loads in load_model (configure),
after main() checked it is installed.

    python -m learned_nodes.text_generation_node --ros-args --params-file config/text_generation.yaml
"""
from __future__ import annotations

import os
from typing import Any

from coin_lio_suite.action import GenerateText as GenerateAction
from coin_lio_suite.srv import GenerateText
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.qos import QoSProfile, ReliabilityPolicy

from learned_nodes.llm.requests import GenerationRequest, GenerationResult, RequestError
from learned_nodes.server.lifecycle_node import ModelServerNode
from learned_nodes.server.main import serve
from learned_nodes.text_generation_node_config import TextGenerationNodeConfig
from suite_tools.dependencies import require


def request_from_msg(msg: Any) -> GenerationRequest:
    """A GenerateText service request or action goal -> GenerationRequest. Invalid UTF-8 on the wire
    reaches rclpy as U+FFFD (decoded with 'replace'): such a prompt is refused."""
    if "\ufffd" in msg.prompt:
        raise RequestError("prompt is not valid UTF-8 (U+FFFD: undecodable bytes were received)")
    return GenerationRequest(prompt=msg.prompt, max_new_tokens=int(msg.max_new_tokens),
                             temperature=float(msg.temperature), top_p=float(msg.top_p),
                             seed=int(msg.seed))


def fill_result(msg: Any, res: GenerationResult) -> Any:
    """Copy a GenerationResult into a service response / action result; returns it."""
    msg.success, msg.message, msg.text = bool(res.success), res.message, res.text
    msg.prompt_tokens, msg.generated_tokens = int(res.prompt_tokens), int(res.generated_tokens)
    msg.tokens_per_second = float(res.tokens_per_second)
    return msg


class TextGenerationNode(ModelServerNode):
    """`~/generate` as a service and as a streaming action over a TextGenerator; generations run on
    the executor's threads (at most generation.max_concurrent at once), not in the batch queue."""

    config_class = TextGenerationNodeConfig

    def __init__(self) -> None:
        super().__init__("text_generation_node")
        qos = self.request_qos()   # a burst of requests / goals waits in this history, none dropped
        self.create_service(GenerateText, "~/generate", self._on_generate,
                            callback_group=self.service_group, qos_profile=qos)
        # one feedback message per token: keep them all for a reliable stream
        depth = self.config.generation.max_new_tokens_limit + 16
        self._action = ActionServer(
            self, GenerateAction, "~/generate", self._execute, callback_group=self.service_group,
            goal_callback=lambda goal: GoalResponse.ACCEPT,
            cancel_callback=lambda handle: CancelResponse.ACCEPT,
            goal_service_qos_profile=qos, result_service_qos_profile=qos,
            cancel_service_qos_profile=qos, result_timeout=self.config.result_retention_s,
            feedback_pub_qos_profile=QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE))
        self.served = 0

    def load_model(self):
        import torch
        from transformers.utils import logging as hf_logging

        from learned_nodes.llm.generation import TextGenerator

        if self.config.threads > 0:
            torch.set_num_threads(self.config.threads)
        hf_logging.disable_progress_bar()
        c = self.config
        gen = TextGenerator.from_path(c.model_path, c.generation, c.device, c.dtype)
        params = sum(p.numel() for p in gen.model.parameters())
        self.get_logger().info(
            f"{type(gen.model).__name__} ({params / 1e6:.1f}M parameters) from {c.model_path} on "
            f"{c.device}; chat template {'on' if gen.uses_chat_template else 'off'}")
        return gen

    @property
    def executor_threads(self) -> int:
        # running + waiting generations (<= max_batch by the config check) + 2 that answer "busy",
        # accept goals and serve the lifecycle services
        return self.limits.max_batch + 2

    def serve_batch(self, items: list):  # generation is not batched: requests run on their threads
        raise RuntimeError("text generation does not use the batch queue")

    def _not_serving(self) -> GenerationResult | None:
        if self.is_active and self.model is not None:
            return None
        return GenerationResult(False, str(self.not_serving()), finish_reason="invalid")

    def _run(self, msg: Any, on_delta=None, canceled=lambda: False) -> GenerationResult:
        try:
            request = request_from_msg(msg)
        except RequestError as exc:
            return GenerationResult(False, str(exc), finish_reason="invalid")
        refused = self._not_serving()
        if refused is not None:
            return refused
        model = self.model
        result = model.generate(request, on_delta, lambda: canceled() or not self.is_active)
        if result.canceled and not canceled():
            result.message = f"stopped: the node was deactivated after {result.generated_tokens} tokens"
        self.served += int(result.success)
        return result

    def _on_generate(self, request, response):
        return fill_result(response, self._run(request))

    def _execute(self, goal_handle):
        def feedback(delta: str, n: int) -> None:
            goal_handle.publish_feedback(GenerateAction.Feedback(text_delta=delta, generated_tokens=n))

        result = self._run(goal_handle.request, feedback, lambda: goal_handle.is_cancel_requested)
        if result.canceled and goal_handle.is_cancel_requested:
            goal_handle.canceled()
        elif result.success:
            goal_handle.succeed()
        else:
            goal_handle.abort()
        return fill_result(GenerateAction.Result(), result)

    def destroy_node(self):
        self._action.destroy()
        return super().destroy_node()


def main(args=None) -> int:
    require("text_generation_node")   # one line, not a traceback, where torch & co. are not installed
    os.environ.setdefault("TQDM_DISABLE", "1")   # before tqdm loads: no GGUF-conversion bar in the log
    return serve(TextGenerationNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
