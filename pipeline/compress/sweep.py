"""What pruning buys, measured: params, MACs and latency for a range of ratios, with and without
rounding widths, and unstructured sparsity beside them, every copy timed interleaved in one run
(eager PyTorch and ONNX Runtime).

A MAC count is a promise, not a speed-up: this is where it is checked. TVM latency per ratio
needs a tuned database per variant (untuned CPU code is tens of times slower), so TVM is left
out here; tune a saved variant and `slimdet bench-check`/`bench` it instead.
"""

import copy
import statistics
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from ..bench.engines import OnnxRuntime, TorchEager
from ..bench.harness import time_interleaved
from ..models import ModelSpec
from ..models.onnx_export import export_onnx
from .prune import prune, prune_unstructured


@dataclass
class SweepRow:
    kind: str  # "structured" (channels removed) or "unstructured" (weights zeroed, shapes kept)
    ratio: float  # channel ratio, or the fraction of conv weights zeroed
    round_to: int  # structured only (1 = unrounded)
    params_m: float
    gmacs: float
    macs_kept: float
    engine: str
    p50_ms: float
    speedup_vs_unpruned: float  # same engine, unpruned model, same run


def _copy(spec: ModelSpec) -> ModelSpec:
    pruned = copy.copy(spec)
    pruned.module = copy.deepcopy(spec.module)
    return pruned


def pruned_copies(spec: ModelSpec, ratios, round_tos, importance: str, unstructured=()) -> dict:
    """``{(kind, ratio, round_to): (pruned copy, PruneReport)}``; ("structured", 0, 1) = the model itself."""
    copies = {}
    for ratio in sorted({0.0, *ratios}):
        for round_to in (round_tos if ratio else (1,)):
            pruned = _copy(spec)
            copies[("structured", ratio, round_to)] = (
                pruned, prune(pruned.module, spec.example_input(), ratio, round_to, importance))
    for amount in unstructured:
        pruned = _copy(spec)
        prune_unstructured(pruned.module, spec.example_input(), amount)
        copies[("unstructured", amount, 1)] = (pruned, prune(pruned.module, spec.example_input(), 0.0))
    return copies


def sweep(spec: ModelSpec, ratios=(0.1, 0.2, 0.3, 0.4, 0.5), round_tos=(16, 1), importance: str = "l2",
          threads: int = 2, reps: int = 9, engines=("pytorch-eager", "onnxruntime"), unstructured=(0.5,)) -> list:
    copies = pruned_copies(spec, ratios, round_tos, importance, unstructured)
    x = spec.example_input().numpy()
    timed = {}
    with tempfile.TemporaryDirectory(prefix="slimdet-prune-") as tmp:
        for key, (pruned, _) in copies.items():
            for engine in engines:
                timed[(*key, engine)] = _engine(engine, pruned, Path(tmp) / "-".join(map(str, (*key, engine))), threads)
        print(f"[prune] timing {len(timed)} models interleaved, {reps} rounds", file=sys.stderr, flush=True)
        times = time_interleaved(timed, x, reps)
    p50 = {key: statistics.median(ms) for key, ms in times.items()}
    rows = []
    for (kind, ratio, round_to, engine), ms in p50.items():
        report = copies[(kind, ratio, round_to)][1]
        rows.append(SweepRow(kind=kind, ratio=ratio, round_to=round_to, params_m=round(report.params / 1e6, 3),
                             gmacs=round(report.macs / 1e9, 3), macs_kept=round(report.macs_kept, 4),
                             engine=engine, p50_ms=round(ms, 3),
                             speedup_vs_unpruned=round(p50[("structured", 0.0, 1, engine)] / ms, 3)))
    return rows


def _engine(name: str, spec: ModelSpec, workdir: Path, threads: int):
    import torch

    workdir.mkdir(parents=True, exist_ok=True)
    if name == "pytorch-eager":
        torch.save(spec.module.state_dict(), workdir / "weights.pt")
        engine = TorchEager(spec.module, workdir / "weights.pt")
    elif name == "onnxruntime":
        engine = OnnxRuntime(export_onnx(spec, workdir / "model.onnx", 1))
    else:
        raise ValueError(f"sweep engines are pytorch-eager and onnxruntime, not {name!r}")
    engine.set_threads(threads)
    return engine


def table(rows) -> str:
    lines = [f"{'kind':<12} {'ratio':>5} {'round':>5} {'params M':>8} {'GMACs':>6} {'MACs kept':>9} {'engine':<14} "
             f"{'p50 ms':>8} {'speed-up':>8}"]
    for r in sorted(rows, key=lambda r: (r.engine, r.kind, r.ratio, -r.round_to)):
        lines.append(f"{r.kind:<12} {r.ratio:>5.2f} {r.round_to:>5d} {r.params_m:>8.3f} {r.gmacs:>6.3f} {r.macs_kept:>9.1%} "
                     f"{r.engine:<14} {r.p50_ms:>8.2f} {r.speedup_vs_unpruned:>7.2f}x")
    return "\n".join(lines)


def as_json(spec: ModelSpec, rows, importance: str, threads: int) -> dict:
    return {"model": spec.name, "input_size": spec.input_size, "importance": importance, "threads": threads,
            "batch": 1, "meaning": "p50 of interleaved rounds in one run; speedup_vs_unpruned = same engine, "
            "unpruned model", "rows": [asdict(r) for r in rows]}


def plot(rows, path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..fsutil import atomic_write_via

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    structured = [r for r in rows if r.kind == "structured"]
    for engine in sorted({r.engine for r in rows}):
        for round_to in sorted({r.round_to for r in structured if r.ratio}, reverse=True):
            pts = sorted((r.macs_kept, r.speedup_vs_unpruned) for r in structured
                         if r.engine == engine and (r.round_to == round_to or r.ratio == 0))
            label = f"{engine}, widths x{round_to}" if round_to > 1 else f"{engine}, widths unrounded"
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label,
                    linestyle="-" if round_to > 1 else "--")
        for r in rows:
            if r.kind == "unstructured" and r.engine == engine:
                ax.scatter([1.0], [r.speedup_vs_unpruned], marker="x", s=50, zorder=3,
                           label=f"{engine}: {r.ratio:.0%} of weights zeroed (unstructured)")
    ax.plot([0.3, 1.0], [1 / 0.3, 1.0], color="grey", linewidth=0.8, label="speed-up = 1 / MACs kept")
    ax.invert_xaxis()
    ax.set_xlabel("fraction of MACs kept")
    ax.set_ylabel("speed-up vs unpruned (same engine)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return atomic_write_via(Path(path), lambda p: fig.savefig(p, dpi=120, format="png"))
