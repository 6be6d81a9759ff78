"""Stage 7 on a GPU: the compiled TVM CUDA library vs eager PyTorch and torch.compile on one card.

Everything stays on the device: one input tensor, shared with TVM through DLPack, and outputs
left on the GPU. A timing is the wall clock around N runs closed by a device synchronise
(``torch.cuda.synchronize`` waits for every stream, TVM's too), reported per batch as the
median over rounds in which the engines alternate, so a clock change or a neighbour hits all of
them alike. Eager PyTorch and torch.compile run with their defaults (cuDNN may use TF32 for
fp32 convolutions: that is what users get); parity is measured against an exact-fp32 PyTorch run
with TF32 off.

The TVM engine loads the exported ``.so`` (what ships), not the in-memory executable.
"""

import copy
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .. import build
from ..fsutil import atomic_write_json
from ..models import load_model

# A timing covers at least this long, so launch jitter and the synchronise stay small in it.
MIN_TIMED_S = 0.2


@dataclass
class GpuRow:
    model: str
    input_size: int
    batch: int
    engine: str
    ms: float  # median time for one batch
    images_per_s: float
    speedup_vs_eager: float | None = None
    max_rel_err: float | None = None  # max |out - exact fp32 PyTorch| / max |exact|, worst head
    note: str = ""


def _progress(msg):
    print(f"[bench-gpu] {msg}", file=sys.stderr, flush=True)


def _sync():
    import torch

    torch.cuda.synchronize()


def time_once(run, iters: int) -> float:
    """Seconds per call of ``run`` over ``iters`` calls, the device drained before and after."""
    _sync()
    start = time.perf_counter()
    for _ in range(iters):
        run()
    _sync()
    return (time.perf_counter() - start) / iters


def iterations_for(run) -> int:
    run()  # warm: module load, kernel JIT, graph capture stay out of the numbers
    once = time_once(run, 3)
    return max(3, int(MIN_TIMED_S / max(once, 1e-6)))


def interleaved_medians(runs: dict, rounds: int) -> dict:
    """name -> median seconds per call, engines alternating within each round."""
    iters = {name: iterations_for(run) for name, run in runs.items()}
    samples = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            samples[name].append(time_once(run, iters[name]))
    return {name: statistics.median(s) for name, s in samples.items()}


def max_rel_err(outputs, reference) -> float:
    return max(float((o.float() - r).abs().max() / r.abs().max().clamp_min(1e-12)) for o, r in zip(outputs, reference))


class TVMCuda:
    """An exported CUDA library on GPU 0, called with torch tensors (zero-copy through DLPack)."""

    def __init__(self, artifact):
        import tvm
        from tvm.runtime.vm import VirtualMachine

        from ..cuda import check_gpu

        meta = artifact.metadata
        check_gpu(meta["gpu_arch"], tvm, artifact.library.name)
        self.tvm, self.dev = tvm, tvm.cuda(0)
        self.vm = VirtualMachine(tvm.runtime.load_module(str(artifact.library)), self.dev)

    def __call__(self, x):
        """The head maps as TVM tensors on the GPU (timed as is: no conversion)."""
        out = self.vm["main"](self.tvm.runtime.from_dlpack(x))
        return [out] if hasattr(out, "numpy") else list(out)

    def heads(self, x) -> list:
        import torch

        return [torch.from_dlpack(o) for o in self(x)]


def _torch_runs(module, x) -> dict:
    import torch

    compiled = torch.compile(module)

    def eager():
        with torch.inference_mode():
            return module(x)

    def compiled_run():
        with torch.inference_mode():
            return compiled(x)

    return {"pytorch-eager": eager, "torch.compile": compiled_run}


def exact_reference(module, x) -> list:
    """Head maps in plain fp32 (TF32 off), the reference parity is measured against."""
    import torch

    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        with torch.inference_mode():
            return [o.float() for o in module(x)]
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def bench_model_gpu(model: str, input_size: int | None, batches, target: str, out_dir: Path, rounds: int = 7,
                    schedules_root=None, cuda_graph_batches=(1,)) -> list:
    """Rows for one model: each batch compiled and exported for ``target``, timed beside eager
    PyTorch and torch.compile; at ``cuda_graph_batches`` also a build with Relax CUDA graphs."""
    import torch

    spec = load_model(model, input_size)
    module = copy.deepcopy(spec.module).cuda().eval()
    rows = []
    for batch in batches:
        variants = {"tvm": {}}
        if batch in cuda_graph_batches:
            variants["tvm+cudagraph"] = {"relax.backend.use_cuda_graph": True}
        engines = {}
        for name, config in variants.items():
            _progress(f"{model} b{batch}: compiling {name} for {target}")
            compiled = build.compile_spec(spec, target, batch, schedules_root=schedules_root, pass_config=config)
            artifact = build.export(compiled, out_dir, f"{model}-{spec.input_size}-b{batch}-{name.replace('+', '-')}")
            engines[name] = (TVMCuda(artifact), compiled.tuning)
        x = torch.rand(batch, 3, spec.input_size, spec.input_size, generator=torch.Generator().manual_seed(batch)).cuda()
        reference = exact_reference(module, x)
        runs = _torch_runs(module, x)
        runs.update({name: (lambda engine=engine: engine(x)) for name, (engine, _) in engines.items()})
        errors = {name: max_rel_err(engines[name][0].heads(x) if name in engines else run(), reference)
                  for name, run in runs.items()}
        _progress(f"{model} b{batch}: timing {', '.join(runs)} ({rounds} interleaved rounds)")
        medians = interleaved_medians(runs, rounds)
        for name, seconds in medians.items():
            tuning = engines[name][1] if name in engines else None
            note = ("" if tuning is None else
                    f"tuned {tuning['tuned_tasks']}/{tuning['tasks']} tasks" if tuning.get("tasks") else "untuned (dlight)")
            rows.append(GpuRow(model, spec.input_size, batch, name, round(seconds * 1e3, 4),
                               round(batch / seconds, 1), round(medians["pytorch-eager"] / seconds, 3),
                               float(f"{errors[name]:.3g}"), note))
    return rows


def device_facts() -> dict:
    import torch
    import tvm

    props = torch.cuda.get_device_properties(0)
    return {"gpu": props.name, "sm": f"sm_{props.major}{props.minor}", "torch": torch.__version__,
            "torch_cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(), "tvm": tvm.__version__,
            "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32}


def format_table(rows) -> str:
    lines = [f"{'model':<12} {'size':>4} {'batch':>5} {'engine':<14} {'ms':>9} {'img/s':>9} {'vs eager':>8} "
             f"{'rel err':>8}  note"]
    for r in rows:
        lines.append(f"{r.model:<12} {r.input_size:>4} {r.batch:>5} {r.engine:<14} {r.ms:>9.3f} {r.images_per_s:>9.1f} "
                     f"{r.speedup_vs_eager:>8.2f} {r.max_rel_err:>8.1e}  {r.note}")
    return "\n".join(lines)


def save_results(rows, facts: dict, path) -> Path:
    return atomic_write_json(Path(path), {"device": facts, "rows": [asdict(r) for r in rows]})

