"""One table for a model's variants (fp32, pruned, ...): size, accuracy and speed of each compiled
TVM library against the unpruned fp32 model on eager PyTorch, torch.compile, ONNX Runtime and
OpenVINO, all timed interleaved in one run.

Accuracy is that of the library that ships (the TVM engine): true mAP on the digits test split
for models trained on it, fidelity mAP against unpruned fp32 PyTorch on the real photos held out
from distillation (the darknet ones) for the others.
"""

import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..compress.prune import count
from ..eval.evaluate import LABELLED_TEST_SETS, detector_for, fidelity_map, labelled_map, real_photo_set
from ..models import load_model
from .harness import make_engines, time_interleaved

PEERS = ("pytorch-eager", "torch.compile", "onnxruntime", "openvino")
# Peers that also run an int8 variant's own Q/DQ graph: what a user would pick for int8 instead.
INT8_PEERS = ("onnxruntime", "openvino")


def _accuracy(spec, base, engine, base_eager, test_images: int) -> dict:
    """mAP@0.5 / mAP@0.5:0.95 of ``engine`` running ``spec``, and what it is measured against."""
    if spec.name in LABELLED_TEST_SETS:
        from ..data import digits

        samples = [digits.make_sample("test", i, spec.input_size) for i in range(test_images)]
        scores = labelled_map(detector_for(spec, engine), samples, digits.coco_ground_truth(samples, spec.input_size))
        return {"kind": f"true mAP, {test_images} digits test images", **scores}
    images = real_photo_set(photos="darknet")
    scores = fidelity_map(detector_for(base, base_eager), detector_for(spec, engine), images)
    return {"kind": f"fidelity mAP vs unpruned fp32 PyTorch, {len(images)} held-out photos and crops", **scores}


def _compared_with(variant: str, peers, same_model: dict, libraries: dict) -> list:
    """(engine, what it runs) pairs a variant's TVM library is compared with: the fp32 peers, the
    int8 peers on the variant's own Q/DQ model, and the fp32 TVM library."""
    pairs = [(peer, "fp32") for peer in peers] + [(name, variant) for name in same_model.get(variant, {})]
    if variant != "fp32" and "fp32" in libraries:
        pairs.append(("tvm", "fp32"))
    return pairs


@dataclass
class VariantTimings:
    """Medians of one interleaved run: each variant's TVM library, the unpruned fp32 model on the
    fp32 peers, and each int8 variant's own Q/DQ model on the int8 peers."""
    base: object  # the unpruned fp32 ModelSpec
    specs: dict  # variant -> ModelSpec
    libraries: dict  # variant -> its TVM engine
    peers: dict  # fp32 peer name -> engine
    same_model: dict  # variant -> {int8 peer name -> engine}
    unavailable: dict
    p50_ms: dict  # "<engine> (<what it runs>)" -> ms

    def speedups(self, variant: str) -> dict:
        """'<engine> <what it runs>' -> its time / the variant's TVM library's time."""
        ms = self.p50_ms[f"tvm ({variant})"]
        return {f"{name} {of}": round(self.p50_ms[f"{name} ({of})"] / ms, 3)
                for name, of in _compared_with(variant, self.peers, self.same_model, self.libraries)}


def time_variants(model: str, variants=("fp32",), target: str = "x86", threads: int = 2, reps: int = 9,
                  peers=PEERS, int8_peers=INT8_PEERS, workdir=None, input_size: int | None = None) -> VariantTimings:
    """Batch 1, at ``input_size`` (default: the model's own)."""
    workdir = Path(workdir or tempfile.mkdtemp(prefix="slimdet-variants-"))
    base = load_model(model, input_size)
    peers, unavailable, _ = make_engines(base, workdir / "fp32-peers", 1, target, peers)
    specs = {v: load_model(model, input_size, v) for v in variants}
    libraries = {}
    for variant, spec in specs.items():
        built, missing, _ = make_engines(spec, workdir / variant, 1, target, ("tvm",))
        if missing:
            raise RuntimeError(f"{model} {variant}: TVM library could not be built: {missing['tvm']}")
        libraries[variant] = built["tvm"]
    same_model = {}  # variant -> its int8 peers
    for variant, spec in specs.items():
        if spec.qdq_onnx:
            built, missing, _ = make_engines(spec, workdir / f"{variant}-peers", 1, target, int8_peers)
            same_model[variant] = built
            unavailable.update({f"{name} {variant}": why for name, why in missing.items()})
    timed = {**{f"{name} (fp32)": e for name, e in peers.items()},
             **{f"{name} ({variant})": e for variant, built in same_model.items() for name, e in built.items()},
             **{f"tvm ({variant})": e for variant, e in libraries.items()}}
    for engine in timed.values():
        engine.set_threads(threads)
    x = np.random.default_rng(0).random((1, 3, base.input_size, base.input_size), dtype=np.float32)
    print(f"[report] timing {', '.join(timed)}: {threads} thread(s), {reps} rounds", file=sys.stderr, flush=True)
    p50 = {name: statistics.median(ms) for name, ms in time_interleaved(timed, x, reps).items()}
    return VariantTimings(base, specs, libraries, peers, same_model, unavailable, p50)


def variant_report(model: str, variants=("fp32",), target: str = "x86", threads: int = 2, reps: int = 9,
                   test_images: int = 200, peers=PEERS, workdir=None) -> dict:
    timings = time_variants(model, variants, target, threads, reps, peers,
                            [p for p in INT8_PEERS if p in peers], workdir)
    base, p50 = timings.base, timings.p50_ms
    rows = []
    for variant, spec in timings.specs.items():
        macs, params = count(spec.module, spec.example_input())
        library = timings.libraries[variant]
        print(f"[report] accuracy of tvm ({variant})", file=sys.stderr, flush=True)
        rows.append({
            "variant": variant, "weights": spec.weights, "params_m": round(params / 1e6, 3),
            "gmacs": round(macs / 1e9, 3), "library_mb": round(library.artifact_mb, 2),
            "preset": library.preset, "tuned": library.tuned, "tuning": library.tuning.get("coverage") or library.tuning.get("reason"),
            "trials": library.tuning.get("trials"), "tvm_p50_ms": round(p50[f"tvm ({variant})"], 3),
            "speedup_vs": timings.speedups(variant),
            "accuracy": _accuracy(spec, base, library, timings.peers.get("pytorch-eager"), test_images),
        })
    return {"model": model, "input_size": base.input_size, "target": target, "threads": threads, "batch": 1,
            "peers_p50_ms": {**{f"{peer} fp32": round(p50[f"{peer} (fp32)"], 3) for peer in timings.peers},
                             **{f"{name} {variant}": round(p50[f"{name} ({variant})"], 3)
                                for variant, built in timings.same_model.items() for name in built}},
            "unavailable": timings.unavailable, "rows": rows,
            "notes": ["Medians of interleaved rounds in one process; compare ratios, not absolute times.",
                      "speedup_vs: '<peer> fp32' runs the unpruned fp32 model, '<peer> <int8 variant>' the "
                      "variant's own Q/DQ model, 'tvm fp32' the fp32 TVM library; the TVM library runs the variant.",
                      "An untuned TVM library runs naive default schedules on CPU (tens of times slower)."]}


def markdown(report: dict) -> str:
    peers = list(dict.fromkeys(p for r in report["rows"] for p in r["speedup_vs"]))
    head = (f"| variant | params M | GMACs | .so MB | accuracy (mAP@0.5 / @0.5:0.95) | TVM ms | "
            + " | ".join(f"vs {p}" for p in peers) + " |")
    lines = [f"{report['model']} @ {report['input_size']}, batch 1, {report['threads']} threads, target "
             f"{report['target']} (peers: "
             + ", ".join(f"{p} {ms:.1f} ms" for p, ms in report["peers_p50_ms"].items()) + ")", "",
             head, "|" + " --- |" * (6 + len(peers))]
    for r in report["rows"]:
        acc = r["accuracy"]
        tvm = f"{r['tvm_p50_ms']:.1f}" + ("" if r["tuned"] else " (untuned)")
        variant = r["variant"] + (f" ({r['preset']})" if r.get("preset") else "")
        lines.append(f"| {variant} | {r['params_m']:.2f} | {r['gmacs']:.3f} | {r['library_mb']:.1f} | "
                     f"{acc['map50']:.3f} / {acc['map']:.3f} | {tvm} | "
                     + " | ".join(f"{r['speedup_vs'][p]:.2f}x" if p in r["speedup_vs"] else "-" for p in peers)
                     + " |")
    kinds = sorted({r["accuracy"]["kind"] for r in report["rows"]})
    return "\n".join(lines + ["", "accuracy: " + "; ".join(kinds)])


def plot(report: dict, path: Path) -> Path:
    """mAP@0.5 against TVM latency per variant, with the fp32 peers' latencies marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..fsutil import atomic_write_via

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    rows = sorted(report["rows"], key=lambda r: r["tvm_p50_ms"])
    maps = [r["accuracy"]["map50"] for r in rows]
    near = 0.03 * ((max(maps) - min(maps)) or 1.0)
    for n, r in enumerate(rows):
        ax.scatter(r["tvm_p50_ms"], maps[n], s=40, zorder=3)
        preset = f" ({r['preset']})" if r.get("preset") else ""
        # labels run rightwards: of two points at about the same mAP, the slower one's goes below it
        below = sum(abs(maps[n] - m) < near for m in maps[:n]) % 2
        ax.annotate(f"TVM {r['variant']}{preset}{'' if r['tuned'] else ' (untuned)'}", (r["tvm_p50_ms"], maps[n]),
                    fontsize=8, xytext=(5, -11 if below else 4), textcoords="offset points")
    ax.margins(y=0.12)  # room for the labels above the top point and below the lowest
    for i, (peer, ms) in enumerate(report["peers_p50_ms"].items()):
        ax.axvline(ms, color=f"C{i + 1}", linestyle=":", linewidth=1, label=peer)
    ax.set_xlabel("latency, batch 1 (ms, median)")
    ax.set_ylabel("mAP@0.5")
    ax.set_title(f"{report['model']} @ {report['input_size']}: variants vs fp32 peers ({report['threads']} threads)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return atomic_write_via(Path(path), lambda p: fig.savefig(p, dpi=120, format="png"))
