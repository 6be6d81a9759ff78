"""Peak resident memory of one engine, measured in a process of its own.

Run as ``python -m pipeline.bench.memprobe '<json>'``; prints one JSON line. The TVM probe runs
as a deployment would: runtime-only TVM and no torch in the process, so its number is what a
board pays. The torch engines necessarily carry torch.
"""

import json
import os
import sys

import numpy as np


def _rss_mb():
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec from the (large) parent process.
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def probe(config: dict) -> dict:
    engine, path, shape, runs = config["engine"], config["path"], config["input_shape"], config["runs"]
    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    baseline = _rss_mb()
    if engine in ("pytorch-eager", "torch.compile"):
        import torch

        from ..models import load_model
        from .engines import TorchCompile, TorchEager

        spec = load_model(config["model"], config["input_size"])
        run = (TorchCompile if engine == "torch.compile" else TorchEager)(spec.module, path)
    elif engine == "onnxruntime":
        from .engines import OnnxRuntime as run_cls

        run = run_cls(path)
    elif engine == "openvino":
        from .engines import OpenVINO as run_cls

        run = run_cls(path)
    elif engine == "tvm":
        from .engines import TVMLibrary

        run = TVMLibrary(path)
    else:
        raise SystemExit(f"unknown engine {engine}")
    run.set_threads(config["threads"])
    for _ in range(runs):
        run(x)
    return {"engine": engine, "peak_rss_mb": round(_rss_mb(), 1), "interpreter_rss_mb": round(baseline, 1),
            "torch_loaded": "torch" in sys.modules and sys.modules["torch"] is not None}


def probe_env(engine: str) -> dict:
    """Environment for the probe process: a deployed TVM library needs only the runtime."""
    env = dict(os.environ)
    if engine == "tvm":
        env["TVM_USE_RUNTIME_LIB"] = "1"
        env["SLIMDET_BLOCK_TORCH"] = "1"
    return env


if __name__ == "__main__":
    if os.environ.get("SLIMDET_BLOCK_TORCH") == "1":
        sys.modules["torch"] = None  # tvm_ffi imports torch when it can; a board has none
    print(json.dumps(probe(json.loads(sys.argv[1]))))
