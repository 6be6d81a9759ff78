"""Where an exported library spends its time: every kernel of one inference, timed alone.

    python -m pipeline.runtime.profile --artifact model.json [--top 25] [--threads N] [--json out.json]

TVM 0.27's Relax VM has no profiler (``VirtualMachine`` takes no ``profile=``). Its instrument hook
sees every call it makes with the arguments: one instrumented inference records the kernel calls
(the callable and a copy of each argument), then each call is repeated alone, timed, and the
times are summed per kernel. The sum falls short of a whole inference by what is not a kernel:
the VM's own work (allocations, tuples) and the caches a kernel finds cold in the pipeline but
warm when repeated alone; that gap is reported, not hidden. Runs on the device itself: TVM
runtime and numpy only, like the predictor.
"""

import argparse
import sys
import time
from dataclasses import dataclass

import numpy as np

from ..errors import exit_status
from ..fsutil import atomic_write_json

# The VM's own builtins (allocation, tuples, shape checks): not kernels, their cost is the gap.
VM_BUILTIN_PREFIX = "vm.builtin."
# Each timed repeat runs a kernel this long at least (shorter kernels are called several times).
MIN_REPEAT_S = 1e-3


@dataclass(frozen=True)
class KernelTime:
    name: str
    calls: int  # calls in one inference
    seconds: float  # all its calls in one inference, each timed alone
    shapes: list  # argument shapes of its first call

    def share(self, inference_s: float) -> float:
        return self.seconds / inference_s if inference_s else 0.0


@dataclass(frozen=True)
class Profile:
    library: str
    threads: int
    inference_s: float  # median of whole inferences
    kernels: list  # KernelTime, slowest first

    @property
    def kernels_s(self) -> float:
        return sum(k.seconds for k in self.kernels)

    def table(self, top: int = 25) -> str:
        lines = [f"{self.library}: {self.threads} thread(s), one inference {self.inference_s * 1e3:.3f} ms (median); "
                 f"{sum(k.calls for k in self.kernels)} kernel calls, timed alone they sum to "
                 f"{self.kernels_s * 1e3:.3f} ms; the rest, {(self.inference_s - self.kernels_s) * 1e3:.3f} ms, "
                 f"is the VM's own work and cold caches",
                 f"{'ms':>8} {'share':>6} {'calls':>5}  kernel (argument shapes)"]
        for k in self.kernels[:top]:
            shapes = " ".join("x".join(map(str, s)) for s in k.shapes)
            lines.append(f"{k.seconds * 1e3:8.3f} {100 * k.share(self.inference_s):5.1f}% {k.calls:5d}  "
                         f"{k.name}  ({shapes})")
        if len(self.kernels) > top:
            rest = self.kernels[top:]
            lines.append(f"{sum(k.seconds for k in rest) * 1e3:8.3f} {'':6} {sum(k.calls for k in rest):5d}  "
                         f"{len(rest)} more kernels")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {"library": self.library, "threads": self.threads, "inference_ms": self.inference_s * 1e3,
                "kernels_ms": self.kernels_s * 1e3,
                "kernels": [{"name": k.name, "calls": k.calls, "ms": k.seconds * 1e3, "shapes": k.shapes}
                            for k in self.kernels]}


def _median_seconds(call, sync, reps: int) -> float:
    """Median time of one ``call()``, over ``reps`` repeats of at least MIN_REPEAT_S each."""
    call()
    sync()
    start = time.perf_counter()
    call()
    sync()
    number = max(1, int(MIN_REPEAT_S / max(time.perf_counter() - start, 1e-9)))
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        for _ in range(number):
            call()
        sync()
        times.append((time.perf_counter() - start) / number)
    return float(np.median(times))


def _recorded_calls(vm, tvm, x) -> list:
    """(symbol, callable, copied arguments) of every kernel one inference calls, in order."""
    calls = []

    def instrument(func, symbol, before_run, _ret, *args):
        if before_run and not symbol.startswith(VM_BUILTIN_PREFIX):
            calls.append((symbol, func, [_copy(tvm, a) for a in args]))
        return 0  # VMInstrumentReturnKind.NO_OP: run the call as usual

    vm.set_instrument(instrument)
    try:
        vm["main"](x)
    finally:
        vm.set_instrument(None)
    return calls


def _copy(tvm, arg):
    # the VM reuses its storage across kernels: a copy keeps each call's inputs as they were
    if isinstance(arg, tvm.runtime.Tensor):
        return tvm.runtime.tensor(arg.numpy(), arg.device)
    return arg


def profile_predictor(predictor, batch: np.ndarray | None = None, reps: int = 5) -> Profile:
    """Profile ``predictor``'s library (a ``Predictor``) on ``batch`` (default: uniform noise of
    the library's input shape; integer kernels take the same time on any values)."""
    tvm, vm, device = predictor._tvm, predictor.vm, predictor.device
    if batch is None:
        batch = np.random.default_rng(0).random(predictor.input_shape, dtype=np.float32)
    predictor.run_library(batch)  # checks the shape; warms the VM
    x = tvm.runtime.tensor(batch, device)
    inference_s = _median_seconds(lambda: vm["main"](x), device.sync, max(reps, 7))
    by_name = {}
    for symbol, func, args in _recorded_calls(vm, tvm, x):
        seconds = _median_seconds(lambda: func(*args), device.sync, reps)
        shapes = [[int(d) for d in a.shape] for a in args if isinstance(a, tvm.runtime.Tensor)]
        calls, total, first_shapes = by_name.get(symbol, (0, 0.0, shapes))
        by_name[symbol] = (calls + 1, total + seconds, first_shapes)
    kernels = sorted((KernelTime(name, *v) for name, v in by_name.items()), key=lambda k: -k.seconds)
    return Profile(library=predictor.artifact.library.name, threads=predictor.threads, inference_s=inference_s,
                   kernels=kernels)


def add_arguments(parser):
    parser.add_argument("--artifact", required=True, help="the library's directory or metadata .json")
    parser.add_argument("--top", type=int, default=25, help="kernels listed (default 25)")
    parser.add_argument("--threads", type=int, default=None, help="default: every CPU this process may use")
    parser.add_argument("--reps", type=int, default=5, help="timed repeats per kernel call")
    parser.add_argument("--json", help="also write the whole profile here")


def run_profile(args):
    from .predictor import Predictor

    result = profile_predictor(Predictor(args.artifact, threads=args.threads), reps=args.reps)
    print(result.table(args.top))
    if args.json:
        print(f"wrote {atomic_write_json(args.json, result.as_dict())}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.runtime.profile", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return exit_status(run_profile, parser.parse_args(argv), parser.prog)


if __name__ == "__main__":
    sys.exit(main())
