"""Export a tuned checkpoint for shipping: re-save it (fp16 by default, half the size) and check
that the accuracies after the round trip stay within `--max-drop` of the original's.

    python -m learned_nodes.daft.export --checkpoint out/bench_daft/ckpt/daft_s0/checkpoint \
        --out learned_nodes/models/daft_effl0_mnist --dtype float16 --max-drop 0.005
The exported config records the source's metrics and the exported copy's (info.fp32 / info.exported).
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

ACCURACIES = ("val", "id", "ood_digits", "id_corrupted")


def export(src: str | Path, dst: str | Path, dtype: str = "float16", max_drop: float = 0.005,
           data: str | Path | None = None, device: str = "cpu") -> dict:
    """Evaluate `src`, write the `dtype` copy to `dst`, evaluate it; ValueError if any accuracy
    changes by more than `max_drop` (then nothing is written to `dst`)."""
    from learned_nodes.daft.checkpoint import load_tuned, save_tuned
    from learned_nodes.daft.evaluate import evaluate_checkpoint

    model, doc = load_tuned(src, device)
    cfg = doc["config"]
    before = evaluate_checkpoint(src, data, device)

    def save(folder: Path, info: dict) -> Path:
        return save_tuned(folder, model, cfg["backbone"], int(cfg["image_size"]), cfg.get("tune"),
                          info, labels=cfg.get("labels"), dtype=dtype)

    with tempfile.TemporaryDirectory() as tmp:
        after = evaluate_checkpoint(save(Path(tmp) / "ck", {}), data, device)
    deltas = {k: after[k] - before[k] for k in ACCURACIES if k in before}
    bad = {k: d for k, d in deltas.items() if abs(d) > max_drop}
    if bad:
        raise ValueError(f"{dtype} round trip changed accuracies by more than {max_drop}: {bad}")
    keep = ("val", "id", "ood_digits", "id_corrupted", "distortion_ood", "distortion_id")
    info = {**doc.get("info", {}), "fp32": {k: before[k] for k in keep if k in before},
            "exported": {k: after[k] for k in keep if k in after}, "dtype": dtype,
            "source": str(Path(src))}
    save(Path(dst), info)
    return {"before": before, "after": after, "deltas": deltas}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="daft-export", description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--dtype", choices=("float16", "float32"), default="float16")
    p.add_argument("--max-drop", type=float, default=0.005)
    p.add_argument("--data", type=Path, default=None, help="as daft-eval --data (default: digits)")
    p.add_argument("--threads", type=int, default=0)
    a = p.parse_args(argv)
    if a.threads > 0:
        import torch

        torch.set_num_threads(a.threads)
    res = export(a.checkpoint, a.out, a.dtype, a.max_drop, a.data)
    size = (a.out / "model.safetensors").stat().st_size / 1e6
    for k, d in res["deltas"].items():
        print(f"{k}: fp32 {res['before'][k]:.4f} -> {a.dtype} {res['after'][k]:.4f} ({d:+.4f})")
    print(f"wrote {a.out} ({size:.1f} MB)")
    print(json.dumps(res["deltas"]))
    return res


if __name__ == "__main__":
    main()
