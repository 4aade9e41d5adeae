"""LoRAPrune: LoRA-guided structured pruning of LLaMA-architecture models (grouped-query attention).

Zhang et al., "LoRAPrune: Structured Pruning Meets Low-Rank Parameter-Efficient Fine-Tuning" (ACL
Findings 2024; reference code aim-uofa/LoRAPrune), re-written for GQA models such as SmolLM2-135M,
with LLM-Pruner-style baselines on the same code path and a standalone pruned checkpoint:

- structures.py        prunable units (query heads, MLP channels), per-layer plans, masks, counts
- lora.py              LoRA adapters on every linear projection (W = W0 + s B A), merge
- masking.py           masked model: pruned units zeroed by forward pre-hooks
- importance.py        LoRA-guided / Taylor / magnitude / random importance of the units
- schedule.py          cubic sparsity ramp of the iterative schedule
- config.py            PruneConfig (one run), validated on construction
- prune_loop.py        the iterative LoRAPrune run and the one-shot baselines + LoRA recovery
- pruned_modules.py    physically sliced attention / MLP modules (any subset of query heads)
- pruned_checkpoint.py save / load of a standalone pruned checkpoint (safetensors + JSON)
- cli.py, bench*.py    the `loraprune` command and the benchmark (bench_measure.py: one run)

Importing this package imports no torch; the modules do.
"""
