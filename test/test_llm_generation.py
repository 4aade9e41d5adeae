"""learned_nodes.llm.generation on a tiny random Llama: greedy is deterministic and equals a
no-cache argmax loop; seeds reproduce (also concurrently); temperature and top-p are honoured;
streamed deltas never split a character and concatenate to the text; cancel stops between tokens;
EOS stops; requests beyond the slots wait in line, then get busy; empty, non-UTF-8 and out-of-limit
requests get success=false with a reason."""
from __future__ import annotations

import threading
from collections import Counter

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from learned_nodes.llm.generation import IncrementalDecoder, TextGenerator, sample_next  # noqa: E402
from learned_nodes.llm.requests import GenerationRequest as Req  # noqa: E402
from learned_nodes.llm.requests import GeneratorConfig  # noqa: E402
from learned_nodes.llm.tiny_models import make_tiny_lm  # noqa: E402

torch.set_num_threads(1)
CFG = GeneratorConfig(max_prompt_tokens=48, default_max_new_tokens=12, max_new_tokens_limit=200,
                      max_concurrent=2)


@pytest.fixture(scope="module")
def gen(tmp_path_factory) -> TextGenerator:
    return TextGenerator.from_path(str(make_tiny_lm(tmp_path_factory.mktemp("gen") / "lm")), CFG)


def test_greedy_is_deterministic_and_equals_a_no_cache_argmax_loop(gen):
    a, b = gen.generate(Req("Hello robot", 20)), gen.generate(Req("Hello robot", 20, seed=5))
    assert a.success and a.finish_reason == "length" and a.generated_tokens == 20
    assert a.token_ids == b.token_ids and a.text == b.text and a.prompt_tokens > 3
    ids = torch.tensor([gen.prompt_ids("Hello robot")])                        # (1, P)
    with torch.no_grad():
        for _ in range(20):
            nxt = gen.model(input_ids=ids, use_cache=False).logits[0, -1].argmax()
            ids = torch.cat([ids, nxt.view(1, 1)], dim=1)
    assert a.token_ids == ids[0, -20:].tolist()
    assert a.text == gen.tokenizer.decode(a.token_ids, skip_special_tokens=True)
    assert a.tokens_per_second > 0 and b.seed == 5


def test_seed_reproduces_and_differs_even_with_concurrent_requests(gen):
    req = Req("The tunnel", 24, temperature=1.2, top_p=0.95, seed=11)
    ref = gen.generate(req)
    assert gen.generate(req).token_ids == ref.token_ids
    assert gen.generate(Req("The tunnel", 24, 1.2, 0.95, 12)).token_ids != ref.token_ids
    results: list = [None] * 2
    threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, gen.generate(req)))
               for i in range(2)]
    [t.start() for t in threads]
    [t.join(30) for t in threads]
    assert all(r.success and r.token_ids == ref.token_ids for r in results)
    drawn = gen.generate(Req("The tunnel", 8, 1.0, 1.0, -1))
    assert drawn.success and drawn.seed >= 0


def test_sampling_honours_temperature_and_top_p():
    logits = torch.log(torch.tensor([0.4, 0.3, 0.2, 0.1]))
    g = torch.Generator().manual_seed(0)
    assert {sample_next(logits, 0.0, 1.0, g) for _ in range(20)} == {0}
    assert {sample_next(logits, 1.0, 0.01, g) for _ in range(50)} == {0}     # nucleus of one token
    assert {sample_next(logits, 1.0, 0.6, g) for _ in range(300)} == {0, 1}  # 0.4 + 0.3 >= 0.6
    cold = Counter(sample_next(logits, 0.2, 1.0, g) for _ in range(500))
    hot = Counter(sample_next(logits, 5.0, 1.0, g) for _ in range(500))
    assert 360 < cold[0] < 430 and 75 < hot[3] < 140     # p(0) 0.79 at T 0.2; p(3) 0.21 at T 5
    free = Counter(sample_next(logits, 1.0, 1.0, g) for _ in range(2000))
    assert abs(free[0] / 2000 - 0.4) < 0.05 and abs(free[3] / 2000 - 0.1) < 0.03


def test_temperature_changes_the_generated_text(gen):
    greedy = gen.generate(Req("Hello robot", 30)).token_ids
    near_greedy = gen.generate(Req("Hello robot", 30, temperature=1e-4, seed=1)).token_ids
    hot = [gen.generate(Req("Hello robot", 30, temperature=3.0, seed=s)).token_ids for s in range(3)]
    assert near_greedy == greedy and all(h != greedy for h in hot) and hot[0] != hot[1]


def test_streamed_deltas_concatenate_to_the_text_and_never_split_characters(gen):
    deltas = []
    res = gen.generate(Req("Caf\u00e9 \U0001f916", 60, temperature=1.5, seed=3),
                       on_delta=lambda d, n: deltas.append((d, n)))
    assert res.success and "".join(d for d, _ in deltas) == res.text
    counts = [n for _, n in deltas]
    assert counts == sorted(counts) and counts[-1] == res.generated_tokens
    tok = gen.tokenizer
    text = "na\u00efve \U0001f916 \u65e5\u672c\u8a9e robots"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert any("\ufffd" in tok.decode([i]) for i in ids)                     # characters do span tokens
    dec = IncrementalDecoder(tok)
    pieces = [dec.push(i) for i in ids] + [dec.flush()]
    assert "".join(pieces) == text and not any("\ufffd" in p for p in pieces)


def test_cancel_stops_between_tokens_with_the_partial_text(gen):
    deltas = []
    res = gen.generate(Req("Hello robot", 150), on_delta=lambda d, n: deltas.append(n),
                       should_stop=lambda: len(deltas) >= 3)
    assert not res.success and res.canceled and res.message.startswith("canceled after")
    assert 3 <= res.generated_tokens < 10 and res.text
    before = gen.generate(Req("Hello robot", 1), should_stop=lambda: True)
    assert before.canceled and before.generated_tokens == 0 and before.text == ""


def test_eos_stops_and_is_not_part_of_the_text(gen, monkeypatch):
    first = gen.generate(Req("Hello robot", 5)).token_ids
    monkeypatch.setattr(gen, "eos_ids", gen.eos_ids | {first[2]})
    res = gen.generate(Req("Hello robot", 5))
    assert res.success and res.finish_reason == "eos" and res.token_ids == first[:2]


def _hold_both_slots(gen):
    """Two generations that block in their first delta until `release` is set."""
    started, release = threading.Event(), threading.Event()

    def slow(delta, n):
        started.set()
        release.wait(10)

    threads = [threading.Thread(target=gen.generate, args=(Req("Hello", 3),), kwargs={"on_delta": slow})
               for _ in range(2)]
    [t.start() for t in threads]
    assert started.wait(10)
    for _ in range(200):           # both slots taken
        if gen._slots._value == 0:
            break
        threading.Event().wait(0.01)
    return release, threads


@pytest.mark.parametrize("waiting, timeout", [(0, 5.0), (2, 0.3)])
def test_busy_when_the_line_is_full_or_the_wait_too_long(gen, monkeypatch, waiting, timeout):
    monkeypatch.setattr(gen, "config", GeneratorConfig(**{**CFG.__dict__, "max_waiting": waiting,
                                                           "queue_timeout_s": timeout}))
    release, threads = _hold_both_slots(gen)
    try:
        busy = gen.generate(Req("Hello", 3))
        assert not busy.success and busy.finish_reason == "busy" and "busy" in busy.message
        assert ("max_waiting" if waiting == 0 else "queue_timeout_s") in busy.message
        stopped = gen.generate(Req("Hello", 3), should_stop=lambda: True)
        assert not stopped.success and (stopped.finish_reason == "canceled" or waiting == 0)
    finally:
        release.set()
        [t.join(10) for t in threads]
    assert gen.generate(Req("Hello", 3)).success


def test_a_request_waiting_in_line_is_served_when_a_slot_frees(gen):
    release, threads = _hold_both_slots(gen)
    results = []
    waiter = threading.Thread(target=lambda: results.append(gen.generate(Req("Hello", 3))))
    waiter.start()
    threading.Event().wait(0.3)
    assert not results                      # still waiting for a slot
    release.set()
    waiter.join(20)
    [t.join(10) for t in threads]
    assert results and results[0].success and results[0].generated_tokens == 3


BAD = {
    "empty": (Req(""), "prompt is empty"),
    "blank": (Req("  \n "), "prompt is empty"),
    "invalid utf-8 bytes": (Req(b"ok \xff\xfe"), "not valid UTF-8"),
    "lone surrogate": (Req("ok \udcff"), "not valid UTF-8"),
    "NUL": (Req("a\x00b"), "NUL"),
    "too many characters": (Req("x" * 20000), "characters; the limit is 16384"),
    "too many tokens": (Req("robot " * 60), "tokens; the limit is 48"),
    "max_new_tokens over limit": (Req("hi", 201), "exceeds the limit of 200"),
    "negative temperature": (Req("hi", temperature=-0.5), "temperature must be"),
    "nan temperature": (Req("hi", temperature=float("nan")), "temperature must be"),
    "top_p above 1": (Req("hi", top_p=1.5), "top_p must be"),
    "seed below -1": (Req("hi", seed=-7), "seed must be"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_requests_get_a_reason(gen, case):
    req, reason = BAD[case]
    res = gen.generate(req)
    assert not res.success and res.finish_reason == "invalid" and reason in res.message, res.message
    assert res.text == "" and res.generated_tokens == 0


def test_default_max_new_tokens_and_chat_template(gen):
    assert gen.generate(Req("Hello robot")).generated_tokens == CFG.default_max_new_tokens
    assert gen.uses_chat_template
    wrapped = gen.tokenizer.decode(gen.prompt_ids("hi"))
    assert wrapped == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    plain = TextGenerator(gen.model, gen.tokenizer, GeneratorConfig(chat_template=False,
                                                                    system_prompt="unused"))
    assert gen.tokenizer.decode(plain.prompt_ids("hi")) == "hi"
    sys_cfg = GeneratorConfig(system_prompt="Be brief.")
    text = gen.tokenizer.decode(TextGenerator(gen.model, gen.tokenizer, sys_cfg).prompt_ids("hi"))
    assert text.startswith("<|im_start|>system\nBe brief.<|im_end|>")


def test_config_is_validated():
    with pytest.raises(ValueError, match="exceeds max_new_tokens_limit"):
        GeneratorConfig(default_max_new_tokens=600, max_new_tokens_limit=512)
    with pytest.raises(ValueError, match="max_concurrent must be >= 1"):
        GeneratorConfig(max_concurrent=0)
    with pytest.raises(ValueError, match="timeout_s"):
        GeneratorConfig(timeout_s=0.0)
