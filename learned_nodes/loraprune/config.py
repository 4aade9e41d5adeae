"""PruneConfig: one pruning run (LoRAPrune or a baseline), validated on construction.

Defaults follow the paper / reference: LoRA r 8, alpha 16, dropout 0.05, AdamW lr 3e-4 on the LoRA
parameters only, decayed linearly to 0 over the run (the reference's Hugging Face Trainer default,
warmup_steps 0); cubic ramp with 10 % warm-up; masks every 10 steps; moving average 0.9; first 10 %
of layers and the last layer spared. Sequence 128 x batch 4 (the reference uses 256) so that a CPU
run stays affordable.

The fair schedule (every method): `steps` in all, the last `cooldown` fraction of them at the FINAL
structure. Iterative methods ramp to the target over the first steps; one-shot methods train LoRA on
the dense model for those steps, then score, prune and slice the merged model. Default cool-down
0.5: the reference's 10 % of ~780 steps is ~78 steps at the target, about half of a CPU-sized run.

Recovery: "corpus" trains on the tuning corpus with the next-token loss; "distill" (data-free) on
text the dense teacher generated itself (distill.py) with KL(teacher || student) on its token
distributions + `kd_ce_weight` x the next-token loss on the teacher's sampled tokens; "corpus_kd"
with the same distillation loss on the tuning corpus's text (the student is pulled towards the
teacher's distributions, not towards the corpus's next tokens, except by `kd_ce_weight`).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

METHODS = ("loraprune", "streamed_taylor", "taylor", "llm_pruner", "magnitude", "random", "lora_only")
# streamed_taylor (ours): LoRAPrune's iterative run with the exact Taylor importance streamed out of
# the LoRA backward; taylor: full-gradient Taylor with LoRAPrune's grouping (per-module L2-normalised);
# llm_pruner: full-gradient Taylor with LLM-Pruner's grouping (raw |W * g| summed per group);
# lora_only: the same LoRA training, nothing pruned (reference row).
ITERATIVE = ("loraprune", "streamed_taylor")
# one-shot methods whose unit scores can be compared across layers: global_cap applies to them
GLOBAL_CAP_METHODS = tuple(m for m in METHODS if m not in (*ITERATIVE, "lora_only", "random"))
RECOVERIES = ("corpus", "distill", "corpus_kd")
TEACHER_RECOVERIES = ("distill", "corpus_kd")        # the dense model teaches
LR_SCHEDULES = ("linear", "constant")
CRITERION_OF = {"loraprune": "lora", "streamed_taylor": "streamed_taylor", "taylor": "taylor",
                "llm_pruner": "taylor_raw", "magnitude": "magnitude", "random": "random", "lora_only": None}


@dataclass
class PruneConfig:
    """One pruning run; every method gets the same `steps` of LoRA training."""

    method: str = field(default="loraprune", metadata={"help": f"one of {METHODS}"})
    ratio: float = field(default=0.5, metadata={"help": "fraction of the pruned layers' attn+MLP params"})
    steps: int = field(default=100, metadata={"help": "optimiser steps (LoRAPrune: whole run; "
                                                      "baselines: LoRA recovery after one-shot)"})
    seq_len: int = field(default=128, metadata={"help": "training sequence length (tokens)"})
    batch_size: int = field(default=4, metadata={"help": "sequences per step"})
    lr: float = field(default=3e-4, metadata={"help": "AdamW peak learning rate (LoRA params)"})
    lr_schedule: str = field(default="linear", metadata={"help": f"one of {LR_SCHEDULES} (linear: "
                                                                 "to 0 at the last step)"})
    recovery: str = field(default="corpus", metadata={"help": f"one of {RECOVERIES}"})
    kd_ce_weight: float = field(default=1.0, metadata={"help": "distill / corpus_kd: weight of "
                                                                 "the next-token loss beside the KL"})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay"})
    max_grad_norm: float = field(default=1.0, metadata={"help": "gradient clipping (0: off)"})
    lora_r: int = field(default=8, metadata={"help": "LoRA rank"})
    lora_alpha: float = field(default=16.0, metadata={"help": "LoRA alpha (scale alpha / r)"})
    lora_dropout: float = field(default=0.05, metadata={"help": "dropout on the LoRA input"})
    prune_every: int = field(default=10, metadata={"help": "steps between mask updates"})
    warmup: float = field(default=0.1, metadata={"help": "fraction of steps before pruning starts"})
    cooldown: float = field(default=0.5, metadata={"help": "final fraction of the steps at the final "
                                                           "structure (every method)"})
    ema: float = field(default=0.9, metadata={"help": "importance moving average I <- ema I + (1-ema) I_t"})
    global_cap: float = field(default=0.0, metadata={"help": "0: channels removed uniformly per "
                              "layer; >= 1 (one-shot methods): allocated over the layers together, "
                              "a layer losing at most global_cap x its uniform share"})
    head_share: float = field(default=1.0, metadata={"help": "share of the ratio taken as query "
                              "heads (round(head_share x ratio x heads) a layer; 1: the reference; "
                              "0: MLP channels only)"})
    skip_first_frac: float = field(default=0.1, metadata={"help": "fraction of first layers not pruned"})
    skip_last: bool = field(default=True, metadata={"help": "leave the last layer unpruned"})
    calib_batches: int = field(default=4, metadata={"help": "Taylor: calibration batches (full grads)"})
    seed: int = field(default=0, metadata={"help": "seed of data order, LoRA init, random baseline"})
    device: str = field(default="cpu", metadata={"help": "torch device"})
    progress: bool = field(default=True, metadata={"help": "tqdm progress bars"})

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown method '{self.method}' (choose from {METHODS})")
        low = 0.0 if self.method == "lora_only" else 1e-12      # lora_only ignores the ratio
        if not (isinstance(self.ratio, (int, float)) and low <= self.ratio < 1.0):
            raise ValueError(f"ratio must be in (0, 1) ([0, 1) for lora_only), got {self.ratio}")
        for name in ("steps", "seq_len", "batch_size", "lora_r", "prune_every", "calib_batches"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.seq_len < 2:
            raise ValueError("seq_len must be >= 2 (next-token loss)")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError("lr must be a positive finite number")
        if self.lora_alpha <= 0:
            raise ValueError("lora_alpha must be > 0")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise ValueError("lora_dropout must be in [0, 1)")
        if self.weight_decay < 0 or self.max_grad_norm < 0:
            raise ValueError("weight_decay and max_grad_norm must be >= 0")
        if not (self.warmup >= 0 and self.cooldown >= 0 and self.warmup + self.cooldown < 1.0):
            raise ValueError("warmup and cooldown must be >= 0 with warmup + cooldown < 1")
        if self.recovery not in RECOVERIES:
            raise ValueError(f"unknown recovery '{self.recovery}' (choose from {RECOVERIES})")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"unknown lr_schedule '{self.lr_schedule}' (choose from {LR_SCHEDULES})")
        if not (self.kd_ce_weight >= 0 and math.isfinite(self.kd_ce_weight)):
            raise ValueError("kd_ce_weight must be a finite number >= 0")
        if self.prunes and not 1 <= self.final_steps < self.steps:
            raise ValueError(f"cooldown {self.cooldown} of {self.steps} steps leaves "
                             f"{self.final_steps} steps at the final structure: need 1 .. steps - 1")
        if not 0.0 <= self.ema < 1.0:
            raise ValueError("ema must be in [0, 1)")
        if not (self.global_cap == 0 or (self.global_cap >= 1 and math.isfinite(self.global_cap))):
            raise ValueError(f"global_cap must be 0 (uniform) or >= 1, got {self.global_cap}")
        if self.global_cap and self.method not in GLOBAL_CAP_METHODS:
            raise ValueError(f"global_cap is for one-shot scored methods, not '{self.method}'")
        if not 0.0 <= self.head_share <= 1.0:
            raise ValueError(f"head_share must be in [0, 1], got {self.head_share}")
        if not 0.0 <= self.skip_first_frac < 1.0:
            raise ValueError("skip_first_frac must be in [0, 1)")

    @property
    def prunes(self) -> bool:
        """False for lora_only (the dense model with the same LoRA training)."""
        return self.method != "lora_only"

    @property
    def uses_teacher(self) -> bool:
        """Distillation recoveries: the dense model's token distributions are the target."""
        return self.recovery in TEACHER_RECOVERIES

    @property
    def final_steps(self) -> int:
        """Steps at the final structure (the recovery every method gets)."""
        return int(round(self.cooldown * self.steps))

    @property
    def structure_step(self) -> int:
        """The step after which the final structure is set (the ramp's end; one-shot's pruning)."""
        return self.steps - self.final_steps

    def lr_at(self, step: int) -> float:
        """Learning rate of 1-based optimiser `step`: HF linear decay (lr (T - step + 1) / T) or constant."""
        if self.lr_schedule == "constant":
            return self.lr
        return self.lr * (self.steps - step + 1) / self.steps

    @property
    def criterion(self) -> str | None:
        return CRITERION_OF[self.method]

    @property
    def iterative(self) -> bool:
        """LoRAPrune (and streamed_taylor) prune along the cubic ramp; the baselines one-shot."""
        return self.method in ITERATIVE

    def to_dict(self) -> dict:
        return asdict(self)
