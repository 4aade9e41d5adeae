"""LoRA adapters on the linear projections of a LLaMA model: W = W0 + s B A, s = alpha / r.

W0 stays frozen (requires_grad False, never a gradient); only A (r, in) and B (out, r) train.
A is Kaiming-uniform, B zero (peft's init), so the adapted model starts equal to the base model.
`merge_lora` folds s B A into W0 and puts plain nn.Linear modules back.

The forward/backward is one autograd Function that saves only the input (shared by q/k/v and by
gate/up, so no copy), a BOOL dropout mask and the rank-r activation: plain `dropout(x) @ A.T`
keeps a float noise tensor and a float copy of the dropped input per projection, which made the
LoRA model's activations larger than a full-gradient pass on a small model (measured: 2.9 GB vs
2.0 GB peak RSS for SmolLM2-135M, 4 x 128 tokens).

Streamed Taylor (`track_taylor`): the backward already holds the output gradient gy (N, out) and
the input x (N, in), whose product gy^T x is the exact gradient of W0 (= of W). When asked, it
forms that product for this module only, takes |W * dL/dW| and keeps just its row sums (out,) and
column sums (in,) on the module: the exact first-order Taylor importance of every unit without a
stored weight gradient (two (out, in) temporaries of one module at a time).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

ATTN_PROJ = ("q_proj", "k_proj", "v_proj", "o_proj")
MLP_PROJ = ("gate_proj", "up_proj", "down_proj")
LORA_TARGETS = ATTN_PROJ + MLP_PROJ


class _LoRAFunction(torch.autograd.Function):
    """y = x W0^T + b0 + s ((x * keep / (1 - p)) A^T) B^T, W0 / b0 frozen."""

    @staticmethod
    def forward(ctx, x, w0, b0, a, b, scaling: float, p: float, training: bool, sink=None):
        keep = None
        xd = x
        if training and p > 0:
            keep = torch.empty(x.shape, dtype=torch.bool, device=x.device).bernoulli_(1.0 - p)
            xd = x * keep / (1.0 - p)
        t = xd @ a.t()                                                     # (..., r)
        y = F.linear(x, w0, b0) + (t @ b.t()) * scaling                    # (..., out)
        ctx.save_for_backward(x, keep, w0, a, b, t)
        ctx.scaling, ctx.p, ctx.sink = scaling, p, sink
        return y

    @staticmethod
    def backward(ctx, gy):
        x, keep, w0, a, b, t = ctx.saved_tensors
        s, p = ctx.scaling, ctx.p
        gy2 = gy.reshape(-1, gy.shape[-1])                                 # (N, out)
        t2 = t.reshape(-1, t.shape[-1])                                    # (N, r)
        gt = (gy2 @ b) * s                                                 # (N, r)
        ga = gb = gx = None
        if ctx.needs_input_grad[4]:
            gb = (gy2.t() @ t2) * s                                        # (out, r)
        if ctx.needs_input_grad[3]:
            xd = x if keep is None else x * keep / (1.0 - p)
            ga = gt.t() @ xd.reshape(-1, x.shape[-1])                      # (r, in)
        if ctx.needs_input_grad[0]:
            glora = (gt @ a).view(*x.shape)                                # (..., in)
            if keep is not None:
                glora = glora * keep / (1.0 - p)
            gx = gy @ w0 + glora
        if ctx.sink is not None:                                           # exact Taylor, streamed
            w = torch.addmm(w0, b, a, alpha=s)                             # W = W0 + s B A
            e = (gy2.t() @ x.reshape(-1, x.shape[-1])).mul_(w).abs_()      # |W * dL/dW| (out, in)
            ctx.sink.taylor_sums = (e.sum(1), e.sum(0))                    # (out,), (in,)
        return gx, None, None, ga, gb, None, None, None, None


class LoRALinear(nn.Module):
    """A frozen nn.Linear plus a trainable low-rank update."""

    def __init__(self, base: nn.Linear, r: int = 8, alpha: float = 16.0, dropout: float = 0.05,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        if r < 1:
            raise ValueError("LoRA rank r must be >= 1")
        self.base = base
        self.base.requires_grad_(False)
        self.r, self.alpha, self.scaling = r, alpha, alpha / r
        w = base.weight
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features, dtype=w.dtype, device=w.device))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r, dtype=w.dtype, device=w.device))
        bound = 1.0 / math.sqrt(base.in_features)        # kaiming_uniform_(a=sqrt(5)) on (r, in)
        with torch.no_grad():
            a = torch.rand(self.lora_A.shape, generator=generator) * 2 * bound - bound
            self.lora_A.copy_(a)
        self.dropout_p = float(dropout)
        self.track_taylor = False          # backward leaves (row sums, col sums) of |W * dL/dW|
        self.taylor_sums: tuple[torch.Tensor, torch.Tensor] | None = None

    @property
    def weight(self) -> torch.Tensor:
        """The frozen W0 (out, in)."""
        return self.base.weight

    @property
    def bias(self) -> torch.Tensor | None:
        return self.base.bias

    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features

    def delta_weight(self) -> torch.Tensor:
        """s B A (out, in)."""
        return (self.lora_B @ self.lora_A) * self.scaling

    def effective_weight(self) -> torch.Tensor:
        """W = W0 + s B A (out, in)."""
        return self.base.weight + self.delta_weight()

    def forward(self, x: torch.Tensor) -> torch.Tensor:          # (..., in) -> (..., out)
        if self.track_taylor:
            self.taylor_sums = None                              # never last step's by mistake
        return _LoRAFunction.apply(x, self.base.weight, self.base.bias, self.lora_A, self.lora_B,
                                   self.scaling, self.dropout_p, self.training,
                                   self if self.track_taylor else None)

    def merged(self) -> nn.Linear:
        """A plain nn.Linear holding W0 + s B A."""
        lin = nn.Linear(self.in_features, self.out_features, bias=self.base.bias is not None,
                        device=self.base.weight.device, dtype=self.base.weight.dtype)
        with torch.no_grad():
            lin.weight.copy_(self.effective_weight())
            if self.base.bias is not None:
                lin.bias.copy_(self.base.bias)
        return lin


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The decoder layers of a LlamaForCausalLM (or of a bare LlamaModel)."""
    inner = getattr(model, "model", model)
    return inner.layers


def layer_linears(layer: nn.Module) -> dict[str, nn.Module]:
    """{'q_proj': module, ...} for one decoder layer (nn.Linear or LoRALinear)."""
    return {name: getattr(_parent(layer, name), name) for name in LORA_TARGETS}


def _parent(layer: nn.Module, name: str) -> nn.Module:
    return layer.self_attn if name in ATTN_PROJ else layer.mlp


def inject_lora(model: nn.Module, r: int = 8, alpha: float = 16.0, dropout: float = 0.05,
                seed: int = 0) -> list[LoRALinear]:
    """Freeze every parameter of `model` and wrap all 7 projections of every layer in LoRALinear."""
    model.requires_grad_(False)
    gen = torch.Generator().manual_seed(seed)
    added = []
    for layer in decoder_layers(model):
        for name, mod in layer_linears(layer).items():
            if isinstance(mod, LoRALinear):
                raise ValueError("model already carries LoRA adapters")
            wrapped = LoRALinear(mod, r, alpha, dropout, generator=gen)
            setattr(_parent(layer, name), name, wrapped)
            added.append(wrapped)
    return added


def track_taylor(model: nn.Module, on: bool = True, layers: list[int] | None = None) -> None:
    """Make the LoRALinear backward of the decoder `layers` (None: all) leave its streamed Taylor
    sums (see the module doc); the others (and everything with on=False) stop."""
    chosen = set(range(len(decoder_layers(model)))) if layers is None else set(layers)
    for i, layer in enumerate(decoder_layers(model)):
        for m in layer_linears(layer).values():
            if isinstance(m, LoRALinear):
                m.track_taylor, m.taylor_sums = on and i in chosen, None


def lora_parameters(model: nn.Module) -> list[nn.Parameter]:
    return [p for m in model.modules() if isinstance(m, LoRALinear) for p in (m.lora_A, m.lora_B)]


def merge_lora(model: nn.Module) -> nn.Module:
    """Replace every LoRALinear by its merged nn.Linear (in place); returns `model`."""
    for layer in decoder_layers(model):
        for name, mod in layer_linears(layer).items():
            if isinstance(mod, LoRALinear):
                setattr(_parent(layer, name), name, mod.merged())
    return model
