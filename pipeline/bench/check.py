"""Performance regression check: speed ratios of the tuned TVM library to its peers, measured
interleaved in one process, held against ``benchmarks/baselines/<preset>.json``.

Ratios, not times: these machines are shared and noisy, but a load spike slows every engine of
an interleaved round alike. A case fails when ``measured < baseline * (1 - tolerance)`` in two
runs: a case below its floor is measured once more and keeps the better run, because a spike that
lands on one engine's calls of a short run can move one ratio past any sane tolerance, while a
real regression shows in both runs.

Each case names the CPU it was recorded on, and a baseline may hold one case per CPU: the same
library is 0.73x ONNX Runtime on one host and 1.02x on another, so a check holds the case
recorded on the host's CPU when there is one.
"""

import datetime
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import SlimdetError
from ..fsutil import atomic_write_json
from ..targets import resolve_preset
from ..tuning.database import cpu_model
from .harness import bench_model
from .variants import time_variants

BASELINES_ROOT = Path(__file__).resolve().parents[2] / "benchmarks" / "baselines"
DEFAULT_TOLERANCE = 0.25


@dataclass
class CaseResult:
    case: str
    peer: str
    measured: float
    baseline: float
    floor: float
    runs: int = 1

    @property
    def ok(self):
        return self.measured >= self.floor


def case_variant(case: dict) -> str:
    return case.get("variant", "fp32")


def selected(case: dict, models=None, variants=None) -> bool:
    """Whether ``case`` is among ``models`` and ``variants`` (None: all)."""
    return (not models or case["model"] in models) and (not variants or case_variant(case) in variants)


def _require_tuned(tuned: bool, case: dict, variant: str, target: str):
    if not tuned:
        raise SlimdetError(f"{case['model']} {variant} @ {case['input_size']}: no tuning database for {target}; "
                           f"the regression check measures tuned libraries")


def measure_ratios(case: dict, target: str, reps: int) -> dict:
    """images/s of tvm divided by images/s of each peer, for one (model, size, batch, threads)."""
    if case_variant(case) != "fp32":
        return _variant_ratios(case, target, reps)
    result = bench_model(case["model"], case["input_size"], target, (case["batch"],), (case["threads"],), (),
                         reps, engines=("tvm", *case["peers"]), memory=False)
    ips = {r["engine"]: r["images_per_s"] for r in result["rows"]}
    _require_tuned(next(r for r in result["rows"] if r["engine"] == "tvm")["tuned"], case, "fp32", target)
    return {peer: round(ips["tvm"] / ips[peer], 4) for peer in case["peers"] if peer in ips}


def _variant_ratios(case: dict, target: str, reps: int) -> dict:
    """A variant's TVM library against peers named '<engine> <what it runs>': 'pytorch-eager fp32'
    (the unpruned model), 'onnxruntime int8' (the variant's own Q/DQ model), 'tvm fp32' (the
    tuned fp32 library); batch 1."""
    variant, wanted = case["variant"], case["peers"]
    if case["batch"] != 1:
        raise SlimdetError(f"{case['model']} {variant}: variant cases run batch 1, not {case['batch']}")
    fp32_peers = [p.split()[0] for p in wanted if p.endswith(" fp32") and not p.startswith("tvm ")]
    variant_peers = [p.split()[0] for p in wanted if p.endswith(f" {variant}")]
    variants = ("fp32", variant) if "tvm fp32" in wanted else (variant,)
    timings = time_variants(case["model"], variants, target, case["threads"], reps, fp32_peers, variant_peers,
                            input_size=case["input_size"])
    for name, library in timings.libraries.items():
        _require_tuned(library.tuned, case, name, target)
    speedups = timings.speedups(variant)
    return {peer: speedups[peer] for peer in wanted if peer in speedups}


def baseline_path(target: str, root=None) -> Path:
    return Path(root or BASELINES_ROOT) / f"{resolve_preset(target).name}.json"


def load_baseline(target: str, root=None) -> dict:
    path = baseline_path(target, root)
    if not path.exists():
        raise SlimdetError(f"no performance baseline at {path}; record one with `slimdet bench-check --record`")
    try:
        return json.loads(path.read_text())
    except ValueError as e:
        raise SlimdetError(f"corrupt baseline {path}: {e}") from None


def _below_floor(measured: dict, floors: dict) -> list:
    return [peer for peer, floor in floors.items() if measured.get(peer, 0.0) < floor]


def check(target: str = "x86", reps: int = 7, root=None, models=None, variants=None) -> list:
    baseline = load_baseline(target, root)
    tolerance = baseline.get("tolerance", DEFAULT_TOLERANCE)
    results, host = [], cpu_model()
    for case in cases_for_host(_cases_with_cpu(baseline), host):
        if not selected(case, models, variants):
            continue
        if case["cpu"] != host:  # ratios move with the CPU (ONNX Runtime int8: 0.94x vs 2.34x): said, not hidden
            print(f"[bench-check] {case_name(case)}: no case recorded on {host}; holding the one recorded on "
                  f"{case['cpu']} ({case.get('recorded', 'undated')})", file=sys.stderr, flush=True)
        floors = {peer: round(base * (1 - tolerance), 4) for peer, base in case["ratios"].items()}
        measured, runs = measure_ratios(case, target, reps), 1
        low = _below_floor(measured, floors)
        if low:
            print(f"[bench-check] {case_name(case)}: {', '.join(low)} below the floor; measuring again to confirm",
                  file=sys.stderr, flush=True)
            again, runs = measure_ratios(case, target, reps), 2
            measured = {peer: max(measured.get(peer, 0.0), again.get(peer, 0.0)) for peer in floors}
        name = f"{case_name(case)}@{case['input_size']} b{case['batch']} t{case['threads']}"
        for peer, base in case["ratios"].items():
            results.append(CaseResult(name, peer, measured.get(peer, 0.0), base, floors[peer], runs))
    return results


def case_name(case: dict) -> str:
    variant = case_variant(case)
    return case["model"] if variant == "fp32" else f"{case['model']}-{variant}"


def _case_key(case: dict) -> tuple:
    return case_name(case), case["input_size"], case["batch"], case["threads"]


def cases_for_host(cases: list, host: str) -> list:
    """One case per model, variant, size, batch and threads: the one recorded on ``host``, else
    the latest recorded on another CPU."""
    chosen = {}
    for case in cases:
        key = _case_key(case)
        if key not in chosen or _preference(case, host) > _preference(chosen[key], host):
            chosen[key] = case
    return list(chosen.values())


def _preference(case: dict, host: str) -> tuple:
    return case.get("cpu") == host, case.get("recorded", "")


def merged_cases(previous: list, measured: list) -> list:
    """``measured`` plus the ``previous`` cases it did not measure again on the same CPU
    (recording one model keeps the others' baselines, and each CPU keeps its own)."""
    again = {_case_key_on_cpu(c) for c in measured}
    return [c for c in previous if _case_key_on_cpu(c) not in again] + measured


def _case_key_on_cpu(case: dict) -> tuple:
    return *_case_key(case), case.get("cpu")


def record(cases: list, target: str = "x86", reps: int = 7, tolerance: float = DEFAULT_TOLERANCE, root=None) -> Path:
    """Measure each case and write the baseline file (atomically); cases recorded before for
    other model/size/batch/threads, or on other CPUs, stay as they were."""
    path = baseline_path(target, root)
    previous = _cases_with_cpu(load_baseline(target, root)) if path.exists() else []
    today, host = datetime.date.today().isoformat(), cpu_model()
    recorded = merged_cases(previous, [{**case, "ratios": measure_ratios(case, target, reps), "reps": reps,
                                        "recorded": today, "cpu": host} for case in cases])
    atomic_write_json(path, {
        "target": resolve_preset(target).name, "tolerance": tolerance,
        "meaning": "ratios = tuned TVM images/s / peer images/s, medians of `reps` interleaved rounds "
                   "in one process, on the case's cpu",
        "cases": recorded})
    return path


def _cases_with_cpu(baseline: dict) -> list:
    # files from before per-case CPUs name one for all their cases
    return [{"cpu": baseline.get("cpu", "unknown"), **case} for case in baseline["cases"]]


def format_results(results: list) -> str:
    lines = [f"{'case':<28} {'tvm vs':<20} {'measured':>9} {'baseline':>9} {'floor':>7}  status"]
    for r in results:
        runs = " (best of 2 runs)" if r.runs > 1 else ""
        lines.append(f"{r.case:<28} {r.peer:<20} {r.measured:9.3f} {r.baseline:9.3f} {r.floor:7.3f}  "
                     f"{'ok' if r.ok else 'REGRESSED'}{runs}")
    return "\n".join(lines)
