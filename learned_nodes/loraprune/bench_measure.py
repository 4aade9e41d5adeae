"""One benchmark run and what it measures, shared by bench.py (one process) and bench_runs.py (workers).

- `run_configs(args)`: the PruneConfig of every run, in order; `label_of(cfg)` its row name;
- `load_data(args, tok)`: train / validation / test token ids;
- `prune_and_measure(cfg, ...)`: prune the dense model, evaluate, save the checkpoint;
- `evaluate`, `greedy_tokens_per_s`: perplexities, parameter count, greedy tokens/s.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any


def greedy_tokens_per_s(model, prompt_ids, new_tokens: int, device: str, repeats: int = 2) -> float:
    """Best of `repeats` timed greedy generations (batch 1, KV cache) after a short warm-up."""
    import torch

    ids = prompt_ids[None].to(device)                                         # (1, P)
    kw = dict(do_sample=False, pad_token_id=0, max_new_tokens=new_tokens, min_new_tokens=new_tokens)
    best = 0.0
    with torch.no_grad():
        model.generate(ids, **{**kw, "max_new_tokens": 4, "min_new_tokens": 4})
        for _ in range(repeats):
            t0 = time.perf_counter()
            out = model.generate(ids, **kw)
            dt = time.perf_counter() - t0
            best = max(best, (out.shape[1] - ids.shape[1]) / dt)
    return best


_JUDGE: dict = {}


def _judge(args):
    """The dense model (OUT/dense_model), loaded once per process: the instruction check's judge."""
    if "model" not in _JUDGE:
        import torch

        from learned_nodes.llm.model_io import load_causal_lm

        _JUDGE["model"] = load_causal_lm(Path(args.out) / "dense_model", device=args.device,
                                         dtype=torch.float32)[0]
    return _JUDGE["model"]


def instruction_check(model, tok, args, judge=None) -> dict[str, Any]:
    """Aggregates of the instruction check (learned_nodes.llm.instruction_eval) + the status answers."""
    from learned_nodes.llm.instruction_eval import (KINDS, PROMPTS, STATUS_FACTS, STATUS_PROMPTS,
                                                    greedy_answers, judge_logliks, score_answers,
                                                    status_report_correct)

    t0 = time.perf_counter()
    judge = judge if judge is not None else _judge(args)
    answers = greedy_answers(model, tok, PROMPTS, args.answer_tokens, args.device, not args.quiet)
    scores = score_answers(PROMPTS, answers, lambda pairs: judge_logliks(
        judge, tok, pairs, device=args.device, progress=not args.quiet), KINDS, k_others=args.judge_others)
    status = [status_report_correct(answers[PROMPTS.index(p)], f) for p, f in zip(STATUS_PROMPTS, STATUS_FACTS)]
    return {**scores.aggregates(), "status_correct": sum(status) / len(status), "s": time.perf_counter() - t0,
            "answers": [{k: r[k] for k in ("prompt", "answer", "ok", "pmi", "loglik")} for r in scores.rows]}


def evaluate(model, data: dict, args, tok=None, judge=None, ratio: float | None = None) -> dict[str, Any]:
    """Validation + test perplexity, held-out perplexities and the instruction check (with `tok`),
    parameters, greedy tokens/s; `data` from load_data()."""
    from learned_nodes.llm.perplexity import perplexity_stats
    from learned_nodes.loraprune.pipeline import n_params

    t0 = time.perf_counter()
    val_ppl, _ = perplexity_stats(model, data["val"], args.context, args.stride, args.eval_tokens,
                                  args.device, progress=not args.quiet)
    ppl, scored = perplexity_stats(model, data["test"], args.context, args.stride, args.eval_tokens,
                                   args.device, progress=not args.quiet)
    res = {"test_ppl": ppl, "val_ppl": val_ppl, "ppl_tokens_scored": scored}
    res["heldout_ppl"] = {name: perplexity_stats(model, ids, args.context, args.stride, None, args.device,
                                                 progress=not args.quiet)[0]
                          for name, ids in data.get("heldout", {}).items()}
    res["ppl_s"] = time.perf_counter() - t0
    if tok is not None and args.instruct and (ratio is None or any(abs(ratio - r) < 1e-9
                                                                   for r in args.instruct_ratios)):
        res["instruct"] = instruction_check(model, tok, args, judge)
    prompt_ids = data["test"][:32]
    return {**res, "params": n_params(model),
            "tokens_per_s": greedy_tokens_per_s(model, prompt_ids, args.gen_tokens, args.device)}


RECOVERY_TAG = {"corpus": "", "distill": " (data-free)", "corpus_kd": " (corpus KD)"}


def label_of(cfg) -> str:
    """Row name of a run: the method, tagged with a distillation recovery."""
    cap = f"_global{cfg.global_cap:g}" if cfg.global_cap else ""
    share = f"_heads{cfg.head_share:g}" if cfg.head_share != 1.0 and cfg.prunes else ""
    return cfg.method + cap + share + RECOVERY_TAG[cfg.recovery]


def run_configs(args) -> list:
    """Every run: lora_only per recovery, then per ratio each method with corpus recovery, the
    --distill-methods with data-free recovery and the --kd-methods with corpus distillation."""
    from learned_nodes.loraprune.config import GLOBAL_CAP_METHODS, PruneConfig

    def cap(m: str) -> float:                     # global allocation: one-shot scored methods only
        return getattr(args, "global_cap", 0.0) if m in GLOBAL_CAP_METHODS else 0.0

    common = dict(steps=args.steps, seq_len=args.seq_len, batch_size=args.batch_size, cooldown=args.cooldown,
                  prune_every=args.prune_every, device=args.device, seed=args.seed, progress=not args.quiet,
                  kd_ce_weight=args.kd_ce_weight, head_share=getattr(args, "head_share", 1.0))
    by_recovery = {"corpus": args.methods, "distill": args.distill_methods, "corpus_kd": args.kd_methods}
    cfgs = [PruneConfig(method="lora_only", ratio=0.0, recovery=rec, **common)
            for rec, methods in by_recovery.items() if methods] if args.lora_only else []
    for r in args.ratios:
        cfgs += [PruneConfig(method=m, ratio=r, recovery=rec, global_cap=cap(m), **common)
                 for rec, methods in by_recovery.items() for m in methods]
    return cfgs


def load_data(args, tok) -> dict:
    """Token ids: the corpus's train / val / test and, where it exists, the teacher's own text."""
    import json

    from learned_nodes.llm.corpus import load_corpus, tokenize

    splits = load_corpus(args.data)
    data = {"train": tokenize(tok, splits.train), "val": tokenize(tok, splits.validation),
            "test": tokenize(tok, splits.test)}
    if args.heldout_tokens > 0:                                   # text no tuning step reads
        from learned_nodes.llm.heldout import HELDOUT_CORPORA, heldout_ids

        data["heldout"] = {}
        for name in HELDOUT_CORPORA:
            try:
                data["heldout"][name] = heldout_ids(name, tok, args.heldout_tokens)
            except FileNotFoundError as exc:
                print(f"held-out corpus '{name}' skipped: {exc}", flush=True)
    teacher_text = Path(args.out) / "teacher_text.json"
    if teacher_text.exists():
        data["generated"] = tokenize(tok, json.loads(teacher_text.read_text())["texts"])
    return data


def prune_and_measure(cfg, dense_dir: Path, data: dict, args, out: Path) -> dict[str, Any]:
    """One run: prune the dense model, evaluate, save its checkpoint (bench_runs.keep_checkpoints
    deletes all but the kept one at the end)."""
    import torch

    from learned_nodes.llm.model_io import load_causal_lm
    from learned_nodes.loraprune.pipeline import prune_tokens, save_run, summary_line

    model, tok = load_causal_lm(dense_dir, device=args.device, dtype=torch.float32)
    teacher = None
    if cfg.uses_teacher:
        teacher, _ = load_causal_lm(dense_dir, device=args.device, dtype=torch.float32)
    pruned, report = prune_tokens(model, data["generated" if cfg.recovery == "distill" else "train"], cfg,
                                  teacher)
    del teacher
    run = {"label": label_of(cfg), "method": cfg.method, "ratio": cfg.ratio, "recovery": cfg.recovery,
           "cooldown": cfg.cooldown, **evaluate(pruned, data, args, tok, ratio=cfg.ratio)}
    ckpt = save_run(pruned, tok, out / "checkpoints" / f"{cfg.method}_{cfg.ratio}_{cfg.recovery}",
                    report, test_ppl=run["test_ppl"])
    run["disk_bytes"] = (ckpt / "model.safetensors").stat().st_size
    run["checkpoint"] = str(ckpt)
    hist = report.pop("history")
    run.update({k: v for k, v in report.items() if not k.endswith("_per_layer") and k != "config"})
    run.update({"final_loss": sum(hist["loss"][-10:]) / len(hist["loss"][-10:]),
                "train_s": hist["train_s"], "grad_bytes": hist.get("grad_bytes"),
                "optimizer_state_bytes": hist.get("optimizer_state_bytes"),
                "calib_grad_bytes": hist.get("calib_grad_bytes"), "loss_curve": hist["loss"],
                "heads_kept_per_layer": report["heads_kept_per_layer"],
                "kv_heads_kept_per_layer": report["kv_heads_kept_per_layer"],
                "channels_kept_per_layer": report["channels_kept_per_layer"]})
    print(f"{run['label']} {cfg.ratio:.0%}: ppl val {run['val_ppl']:.2f} test {run['test_ppl']:.2f}; "
          f"{summary_line(report)}; {run['tokens_per_s']:.1f} tok/s; train {hist['train_s']:.0f} s",
          flush=True)
    return run
