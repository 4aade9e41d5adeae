"""learned_nodes.llm.perplexity on a tiny random Llama: equals exp(mean next-token NLL) computed
directly (stride == context: disjoint windows; one window: the whole sequence), overlapping windows
score every token once, argument checks, and the lm-eval-ppl command line."""
from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
import torch.nn.functional as F  # noqa: E402

from learned_nodes.llm.model_io import load_causal_lm  # noqa: E402
from learned_nodes.llm.perplexity import main, perplexity, perplexity_stats  # noqa: E402
from learned_nodes.llm.tiny_models import make_tiny_lm  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    folder = make_tiny_lm(tmp_path_factory.mktemp("ppl") / "lm")
    model, tok = load_causal_lm(folder)
    ids = torch.randint(0, len(tok), (300,), generator=torch.Generator().manual_seed(0))   # (N,)
    return folder, model, tok, ids


def _nll(model, chunk):
    """Summed next-token NLL of one chunk (T,) and the number of scored tokens (T - 1)."""
    with torch.no_grad():
        logits = model(input_ids=chunk[None]).logits[0]                           # (T, V)
    return float(F.cross_entropy(logits[:-1], chunk[1:], reduction="sum")), chunk.numel() - 1


def test_stride_equal_to_context_is_exp_mean_nll_of_disjoint_windows(lm):
    _, model, _, ids = lm
    parts = [_nll(model, ids[i:i + 64]) for i in range(0, 300, 64)]             # 4 x 64 + 44
    expected = math.exp(sum(p[0] for p in parts) / sum(p[1] for p in parts))
    ppl, counted = perplexity_stats(model, ids, context=64, stride=64, progress=False)
    assert counted == 300 - 5
    assert ppl == pytest.approx(expected, rel=1e-5)


def test_single_window_is_the_whole_sequence(lm):
    _, model, _, ids = lm
    nll, n = _nll(model, ids[:100])
    for stride in (1, 37, 100):
        assert perplexity(model, ids[:100], context=128, stride=stride, progress=False) == \
            pytest.approx(math.exp(nll / n), rel=1e-5)


def _tail_nll(model, window, k):
    """Summed NLL of the last k tokens of `window` (T,) given the tokens before them."""
    with torch.no_grad():
        logits = model(input_ids=window[None]).logits[0]                          # (T, V)
    return float(F.cross_entropy(logits[-k - 1:-1], window[-k:], reduction="sum"))


def test_overlapping_windows_score_every_token_once_with_more_context(lm):
    _, model, _, ids = lm
    x = ids[:20]
    # context 8, stride 4: windows [0,8) scores 1..7, [4,12) 8..11, [8,16) 12..15, [12,20) 16..19
    total = _nll(model, x[:8])[0] + sum(_tail_nll(model, x[b:b + 8], 4) for b in (4, 8, 12))
    ppl, counted = perplexity_stats(model, x, context=8, stride=4, progress=False)
    assert counted == 19 and ppl == pytest.approx(math.exp(total / 19), rel=1e-5)
    _, counted_all = perplexity_stats(model, ids, context=64, stride=16, progress=False)
    assert counted_all == 299
    _, counted_cut = perplexity_stats(model, ids, 64, 16, max_tokens=80, progress=False)
    assert counted_cut == 79


def test_bad_arguments(lm):
    _, model, _, ids = lm
    with pytest.raises(ValueError, match="stride <= context"):
        perplexity(model, ids, context=16, stride=32, progress=False)
    with pytest.raises(ValueError, match="at least 2 tokens"):
        perplexity(model, ids[:1], progress=False)
    assert not model.training


def test_command_line(lm, tmp_path, capsys):
    folder = lm[0]
    data = tmp_path / "texts"
    data.mkdir()
    for i in range(20):
        (data / f"d{i}.txt").write_text(f"Robot {i} maps the tunnel with lidar. " * 20)
    assert main(["--model", str(folder), "--data", str(data), "--split", "test", "--context", "32",
                 "--stride", "32", "--max-tokens", "200", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "perplexity: " in out and "context: 32  stride: 32" in out and "tokens scored: " in out
    with pytest.raises(SystemExit, match="no such model"):
        main(["--model", str(tmp_path / "none"), "--data", str(data)])
