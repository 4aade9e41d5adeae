"""Model-server framework without a graph: request validation, limits, the batching queue."""
from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

from learned_nodes.server.batching import BatchQueue, QueueClosed, QueueFull
from learned_nodes.server.limits import ServerLimits
from learned_nodes.server.validation import RequestError, check_classify

LIMITS = ServerLimits(max_image_pixels=1000 * 1000, max_class_names=4, max_class_name_chars=12)


def _image(h=4, w=6, encoding="rgb8"):
    ch = 3 if encoding in ("rgb8", "bgr8") else 1
    return SimpleNamespace(height=h, width=w, encoding=encoding, is_bigendian=0, step=w * ch,
                           data=bytes(h * w * ch))


@pytest.mark.parametrize("image, names, configured, reason", [
    (_image(), [], [], "no class names"),
    (_image(), ["a", "b", "c", "d", "e"], [], "5 class names exceed the limit of 4"),
    (_image(), ["a", ""], [], "class name #1 is empty"),
    (_image(), ["a", "x" * 13], [], "13 characters"),
    (_image(), ["a", "a"], [], "appears twice"),
    (_image(encoding="yuv422"), ["a"], [], "unsupported encoding"),
    (_image(h=0), ["a"], [], "zero size"),
    (SimpleNamespace(height=2000, width=2000, encoding="mono8", is_bigendian=0, step=2000, data=b""),
     ["a"], [], "exceeds the limit"),
])
def test_bad_requests_are_refused_with_a_reason(image, names, configured, reason):
    with pytest.raises(RequestError, match=reason):
        check_classify(image, names, 0, configured, LIMITS)


def test_configured_names_apply_when_the_request_has_none_and_top_k_is_clamped():
    item = check_classify(_image(encoding="mono8"), [], 99, ["cat", "dog"], LIMITS)
    assert item.class_names == ("cat", "dog") and item.top_k == 2 and item.rgb.shape == (4, 6, 3)
    item = check_classify(_image(), [" cat ", "dog", "bird"], 0, [], LIMITS)
    assert item.class_names == ("cat", "dog", "bird") and item.top_k == 3


@pytest.mark.parametrize("bad", [dict(max_batch=0), dict(max_wait_ms=-1.0), dict(request_timeout_s=0.0)])
def test_limits_are_validated(bad):
    with pytest.raises(ValueError):
        ServerLimits(**bad)


def test_queue_batches_concurrent_requests_and_keeps_order():
    seen: list[list[int]] = []

    def handler(items):
        seen.append(list(items))
        time.sleep(0.05)
        return [x * 10 for x in items]

    q = BatchQueue(handler, max_batch=4, max_wait_s=0.05)
    results: dict[int, int] = {}
    threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, q.submit(i, 5.0)))
               for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    q.close()
    assert results == {i: i * 10 for i in range(8)}
    assert max(len(b) for b in seen) > 1 and all(len(b) <= 4 for b in seen)


def test_one_failing_item_fails_alone_and_handler_errors_reach_the_caller():
    q = BatchQueue(lambda items: [ValueError("bad") if x < 0 else x for x in items], max_batch=2)
    assert q.submit(3, 2.0) == 3
    with pytest.raises(ValueError, match="bad"):
        q.submit(-1, 2.0)
    q.close()


def test_timeout_full_queue_and_close():
    from suite_tools.testing import wait_for

    gate, busy = threading.Event(), threading.Event()

    def handler(items):
        busy.set()
        gate.wait(10)
        return items

    q = BatchQueue(handler, max_batch=1, max_queue=1)
    held: list = []
    first = threading.Thread(target=lambda: held.append(q.submit(1, 30.0)))
    first.start()
    wait_for(busy.is_set, 10, what="the worker to take request 1")   # now held at the gate
    with pytest.raises(TimeoutError):
        q.submit(2, 0.2)          # waits in the queue (its only slot) behind the held one, gives up
    with pytest.raises(QueueFull):
        q.submit(3, 1.0)          # a given-up request keeps its slot until the worker drops it
    gate.set()
    first.join(10)
    assert held == [1]
    assert q.submit(4, 5.0) == 4  # the worker dropped request 2 unserved and serves again
    q.close()
    with pytest.raises(QueueClosed):
        q.submit(5, 1.0)


def test_rgb_of_validated_request_is_what_the_model_gets():
    img = _image(2, 2, "bgr8")
    img.data = bytes([1, 2, 3] * 4)
    item = check_classify(img, ["a"], 1, [], LIMITS)
    np.testing.assert_array_equal(item.rgb[0, 0], [3, 2, 1])
