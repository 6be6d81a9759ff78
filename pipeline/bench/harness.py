"""Stage 7 for speed and memory: every engine on the same model, in one run, interleaved.

Machines here are shared and noisy, so engines are timed round-robin (one call each per round)
and reported by median; ratios between engines from one run are what to trust, not absolute
times. Each engine's thread count is set explicitly for every configuration.
"""

import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .. import build
from ..errors import InputError
from ..models import load_model
from ..models.onnx_export import export_onnx
from .engines import ENGINE_ORDER, OnnxRuntime, OpenVINO, TorchCompile, TorchEager, TVMLibrary
from .memprobe import probe_env


@dataclass
class Row:
    model: str
    input_size: int
    target: str
    batch: int
    threads: int
    engine: str
    p50_ms: float
    p90_ms: float
    images_per_s: float
    peak_rss_mb: float | None
    artifact_mb: float
    max_abs_diff_vs_eager: float
    streams: int = 1
    tuned: bool = False


def _progress(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def make_engines(spec, workdir: Path, batch: int, target: str, names) -> tuple:
    """The engines asked for, plus the (name -> reason) of any that could not be set up."""
    import torch

    unknown = [name for name in names if name not in ENGINE_ORDER]
    if unknown:
        raise InputError(f"unknown engine(s) {', '.join(unknown)}; known: {', '.join(ENGINE_ORDER)}")
    workdir.mkdir(parents=True, exist_ok=True)
    weights = workdir / f"{spec.name}-{spec.input_size}.pt"
    torch.save(spec.module.state_dict(), weights)
    # An int8 variant's peers run its own Q/DQ graph (ONNX Runtime int8, OpenVINO int8).
    onnx_path = Path(spec.qdq_onnx) if spec.qdq_onnx else workdir / f"{spec.name}-{spec.input_size}-b{batch}.onnx"
    if {"onnxruntime", "openvino"} & set(names) and not spec.qdq_onnx:
        export_onnx(spec, onnx_path, batch)
    factories = {
        "pytorch-eager": lambda: TorchEager(spec.module, weights),
        "torch.compile": lambda: TorchCompile(spec.module, weights),
        "onnxruntime": lambda: OnnxRuntime(onnx_path),
        "openvino": lambda: OpenVINO(onnx_path),
        "tvm": lambda: TVMLibrary(build.export(build.compile_spec(spec, target, batch), workdir)),
    }
    engines, unavailable = {}, {}
    for name in names:
        _progress(f"setting up {name} ({spec.name} {spec.input_size}, batch {batch})")
        try:
            engines[name] = factories[name]()
        except Exception as e:  # an engine that cannot run here is reported, not fatal
            unavailable[name] = f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
    return engines, unavailable, {"onnx": onnx_path, "weights": weights}


def time_interleaved(engines: dict, x: np.ndarray, reps: int, warmup: int = 1, gap_s: float = 0.05) -> dict:
    """Per-engine call times in ms, taken round-robin so load spikes hit every engine alike.

    ``gap_s`` of idle time before each call: TVM's, ONNX Runtime's and OpenMP's worker threads
    spin for a while after a call, and on a 2-core machine that spinning would be timed against
    whichever engine runs next."""
    for engine in engines.values():
        for _ in range(warmup):
            engine(x)
    times = {name: [] for name in engines}
    for _ in range(reps):
        for name, engine in engines.items():
            time.sleep(gap_s)
            start = time.perf_counter()
            engine(x)
            times[name].append((time.perf_counter() - start) * 1e3)
    return times


def streams_throughput(engine, x: np.ndarray, n_streams: int, calls_per_stream: int) -> float:
    """Images/s with ``n_streams`` single-thread instances serving requests at once."""
    instances = [engine.stream() for _ in range(n_streams)]
    barrier = threading.Barrier(n_streams + 1)

    def worker(inst):
        inst.set_threads(1)
        inst(x)  # warm-up, outside the timed region
        barrier.wait()
        for _ in range(calls_per_stream):
            inst(x)

    threads = [threading.Thread(target=worker, args=(inst,)) for inst in instances]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    return n_streams * calls_per_stream * x.shape[0] / (time.perf_counter() - start)


def peak_rss(engine: str, path: Path, spec, batch: int, threads: int) -> float | None:
    config = {"engine": engine, "path": str(path), "model": spec.name, "input_size": spec.input_size,
              "input_shape": [batch, 3, spec.input_size, spec.input_size], "threads": threads, "runs": 2}
    proc = subprocess.run([sys.executable, "-m", "pipeline.bench.memprobe", json.dumps(config)],
                          capture_output=True, text=True, env=probe_env(engine))
    if proc.returncode != 0:
        _progress(f"memory probe for {engine} failed: {proc.stderr.strip()[-300:]}")
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])["peak_rss_mb"]


def bench_model(model: str, input_size: int | None = None, target: str = "x86", batches=(1,), threads=(2,),
                streams=(), reps: int = 5, engines=ENGINE_ORDER, memory: bool = True, workdir=None) -> dict:
    spec = load_model(model, input_size)
    preset = build.compile_preset(target, spec).name  # what the TVM library is built for
    workdir = Path(workdir or tempfile.mkdtemp(prefix="slimdet-bench-"))
    rows, unavailable_all, tvm_tuning = [], {}, None
    rng = np.random.default_rng(0)
    for batch in batches:
        built, unavailable, files = make_engines(spec, workdir, batch, target, engines)
        unavailable_all.update(unavailable)
        x = rng.random((batch, 3, spec.input_size, spec.input_size), dtype=np.float32)
        reference = built["pytorch-eager"](x) if "pytorch-eager" in built else None
        diffs = {name: (max(float(np.abs(a - b).max()) for a, b in zip(e(x), reference))
                        if reference is not None else float("nan")) for name, e in built.items()}
        paths = {"pytorch-eager": files["weights"], "torch.compile": files["weights"],
                 "onnxruntime": files["onnx"], "openvino": files["onnx"]}
        if "tvm" in built:
            paths["tvm"] = Path(built["tvm"].path)
            tvm_tuning = built["tvm"].tuning
        rss = {name: peak_rss(name, paths[name], spec, batch, max(threads)) if memory else None for name in built}
        for n_threads in threads:
            for engine in built.values():
                engine.set_threads(n_threads)
            _progress(f"timing {', '.join(built)}: batch {batch}, {n_threads} thread(s), {reps} rounds")
            times = time_interleaved(built, x, reps)
            for name, t in times.items():
                p50 = statistics.median(t)
                rows.append(Row(spec.name, spec.input_size, preset, batch,
                                n_threads, name, round(p50, 3), round(float(np.percentile(t, 90)), 3),
                                round(batch * 1e3 / p50, 2), rss[name], round(built[name].artifact_mb, 2),
                                diffs[name], tuned=getattr(built[name], "tuned", False)))
        for n_streams in streams:
            for name, engine in built.items():
                _progress(f"{n_streams} parallel streams: {name}, batch {batch}")
                ips = streams_throughput(engine, x, n_streams, max(2, reps // 2))
                rows.append(Row(spec.name, spec.input_size, preset, batch, 1,
                                name, float("nan"), float("nan"), round(ips, 2), rss[name],
                                round(built[name].artifact_mb, 2), diffs[name], streams=n_streams,
                                tuned=getattr(built[name], "tuned", False)))
    return {"model": spec.name, "input_size": spec.input_size, "weights": spec.weights,
            "target": preset, "rows": [asdict(r) for r in rows],
            "unavailable": unavailable_all, "tvm_tuning": tvm_tuning,
            "notes": ["Medians of interleaved rounds in one process; compare ratios, not absolute times.",
                      "TVM peak RSS is measured with runtime-only TVM and no torch, as deployed.",
                      "tvm rows use untuned default schedules unless 'tuned' is true (see tvm_tuning)."]}
