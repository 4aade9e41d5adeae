"""`loraprune` CLI smoke run on a tiny GQA model folder and a tiny text corpus."""
import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny_setup(tmp_path_factory):
    from learned_nodes.llm.tiny_models import TRAINING_TEXT, make_tiny_lm

    root = tmp_path_factory.mktemp("lp_cli")
    model_dir = make_tiny_lm(root / "model", layers=4)
    data = root / "text"
    data.mkdir()
    for i in range(4):
        (data / f"doc{i}.txt").write_text(TRAINING_TEXT[i * 50:] + TRAINING_TEXT)
    return model_dir, data, root


@pytest.mark.parametrize("method,recovery", [("loraprune", "corpus"), ("taylor", "corpus"),
                                             ("streamed_taylor", "corpus"), ("llm_pruner", "distill"),
                                             ("loraprune", "corpus_kd")])
def test_cli_prunes_and_writes_a_loadable_checkpoint(tiny_setup, method, recovery, capsys):
    from learned_nodes.llm.model_io import load_causal_lm
    from learned_nodes.loraprune.cli import main

    model_dir, data, root = tiny_setup
    out = root / f"out_{method}"
    assert main(["--model", str(model_dir), "--ratio", "0.5", "--data", str(data), "--out", str(out),
                 "--method", method, "--steps", "4", "--seq-len", "16", "--batch-size", "2",
                 "--recovery", recovery, "--conversations", "3", "--eval-tokens", "64", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "parameters before:" in printed and "parameters after:" in printed
    assert "whole model" in printed and "test perplexity" in printed
    report = json.loads((out / "prune_report.json").read_text())
    assert report["params_after"] < report["params_before"]
    assert report["config"]["method"] == method and report["config"]["steps"] == 4
    assert report["config"]["recovery"] == recovery
    if recovery == "distill":                                        # data-free: the teacher's own text
        texts = json.loads((out / "teacher_text.json").read_text())["texts"]
        assert len(texts) == 3 and all("<|im_start|>assistant" in t for t in texts)
    assert 0.45 < report["ratio_pruned_layers"] < 0.7
    doc = json.loads((out / "config.json").read_text())
    assert doc["pruned_structure"]["method"] == method and len(doc["pruned_structure"]["layers"]) == 4
    model, tok = load_causal_lm(out)
    ids = tok("The quick brown fox", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert torch.isfinite(model(input_ids=ids).logits).all()
    n = sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
    assert n == report["params_after"]


def test_cli_rejects_bad_arguments(tiny_setup, tmp_path):
    from learned_nodes.loraprune.cli import main

    model_dir, data, _ = tiny_setup
    with pytest.raises(SystemExit, match="ratio"):
        main(["--model", str(model_dir), "--ratio", "1.5", "--data", str(data), "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="loraprune"):
        main(["--model", str(tmp_path / "missing"), "--data", str(data), "--out", str(tmp_path / "o"),
              "--quiet"])
    with pytest.raises(SystemExit):
        main(["--data", str(data)])                                   # --out is required


def test_bench_runs_the_fair_table_in_two_workers_and_keeps_the_best_20(tiny_setup):
    from learned_nodes.loraprune.bench import main

    model_dir, data, root = tiny_setup
    out = root / "bench"
    assert main(["--model", str(model_dir), "--data", str(data), "--out", str(out), "--steps", "4",
                 "--seq-len", "16", "--batch-size", "2", "--ratios", "0.2", "--methods", "loraprune",
                 "llm_pruner", "--distill-methods", "taylor", "--conversations", "2", "--eval-tokens", "64",
                 "--heldout-tokens", "64", "--answer-tokens", "2", "--judge-others", "1", "--context", "32",
                 "--stride", "32", "--gen-tokens", "2", "--memory-steps", "0", "--jobs", "2",
                 "--keep-best-20", str(root / "kept_20"), "--quiet"]) == 0
    res = json.loads((out / "results.json").read_text())
    labels = [r["label"] for r in res["runs"]]
    assert labels == ["dense", "lora_only", "lora_only (data-free)", "loraprune", "llm_pruner",
                      "taylor (data-free)"]
    pruned = res["runs"][3:]
    params = [r["params"] for r in pruned]                           # same count up to rounding
    assert max(params) - min(params) <= 3 * 3 * 64
    for r in res["runs"]:                                            # held-out + instruction check
        assert "licenses" in r["heldout_ppl"] and r["heldout_ppl"]["licenses"] > 1
        assert 0 <= r["instruct"]["ok"] <= 1 and len(r["instruct"]["answers"]) >= 30
    kept = [r for r in pruned if r.get("kept_as_best_20")]
    assert len(kept) == 1 and kept[0]["checkpoint"] == str(root / "kept_20")
    assert (root / "kept_20" / "config.json").exists()
    assert all(r["checkpoint"] is None for r in res["runs"][1:] if r is not kept[0])
    report = (out / "results.md").read_text()
    assert "fair schedule" in report and "held-out licenses ppl" in report
    assert "held-out perplexity within 1.15x dense" in report
    assert all(r["tokens_per_s"] > 0 and "tokens_per_s_in_worker" in r for r in res["runs"][1:])
    assert not res["failed_runs"]
    with pytest.raises(SystemExit):                                   # checked before anything runs
        main(["--model", str(model_dir), "--data", str(data), "--out", str(out), "--cooldown", "0.95"])


def test_memory_benchmark_counts_the_bytes_each_method_holds(tiny_setup, tmp_path, capsys):
    from safetensors.torch import save_file

    from learned_nodes.loraprune.bench_memory import main

    model_dir, _, _ = tiny_setup
    batches = tmp_path / "b.safetensors"
    save_file({"ids": torch.randint(0, 300, (2, 2, 16))}, str(batches))
    got = {}
    for method in ("loraprune", "streamed_taylor", "taylor"):
        assert main(["--model", str(model_dir), "--batches", str(batches), "--method", method]) == 0
        got[method] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    n = got["taylor"]["trainable_params"]
    assert got["taylor"]["grad_bytes"] == 4 * n and got["taylor"]["optimizer_state_bytes"] == 0
    for m in ("loraprune", "streamed_taylor"):                        # LoRA grads + AdamW moments
        lora = got[m]["trainable_params"]
        assert 0 < lora < n and got[m]["grad_bytes"] == 4 * lora
        assert got[m]["optimizer_state_bytes"] >= 2 * got[m]["grad_bytes"]
        assert got[m]["peak_rss_bytes"] > 0


def test_agreement_tool_runs_and_ranks_taylor_against_itself(tiny_setup, tmp_path):
    from learned_nodes.loraprune.agreement import main

    model_dir, data, _ = tiny_setup
    out = tmp_path / "agree.json"
    assert main(["--model", str(model_dir), "--data", str(data), "--steps", "2", "--seq-len", "16",
                 "--batch-size", "2", "--calib", "2", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["agreement"]
    assert {"taylor (other batches)", "magnitude", "random", "lora-guided, EMA after 1 steps",
            "streamed Taylor, EMA after 2 steps"} <= set(rows)
    assert all(-1.0 <= r["heads"]["spearman"] <= 1.0 for r in rows.values())


def test_eval_pruned_compares_with_the_dense_model(tiny_setup, tmp_path):
    from learned_nodes.loraprune.cli import main as prune
    from learned_nodes.loraprune.eval_pruned import main

    model_dir, data, _ = tiny_setup
    pruned = tmp_path / "pruned"
    assert prune(["--model", str(model_dir), "--ratio", "0.2", "--data", str(data), "--out", str(pruned),
                  "--steps", "2", "--seq-len", "16", "--batch-size", "2", "--quiet"]) == 0
    assert main(["--model", str(pruned), "--dense", str(model_dir), "--data", str(data), "--out",
                 str(tmp_path / "eval"), "--eval-tokens", "64", "--heldout-tokens", "64", "--answer-tokens", "2",
                 "--context", "32", "--stride", "32", "--gen-tokens", "2", "--quiet"]) == 0
    doc = json.loads((tmp_path / "eval" / "eval.json").read_text())
    dense, run = doc["runs"]
    assert run["ratio"] == 0.2 and run["params"] < dense["params"] and "licenses" in run["heldout_ppl"]
    assert len(doc["demo_status"]) == 2 and all(len(rows) == 5 for rows in doc["demo_status"].values())
    md = (tmp_path / "eval" / "eval.md").read_text()
    assert "held-out perplexity within 1.15x dense" in md and "The demo's status report" in md
    with pytest.raises(SystemExit, match="eval-pruned"):
        main(["--model", str(tmp_path / "missing"), "--dense", str(model_dir), "--out", str(tmp_path / "e2")])
