"""Fast CI form of `make bench-check`: tuned TVM vs its peers, ratios from one interleaved run,
held against the committed baseline of this host's preset, with the baseline's tolerance."""

import pytest

from pipeline import targets
from pipeline.bench import check


@pytest.mark.perf
def test_tuned_yolov3_tiny_holds_its_baseline_ratios():
    host_preset = targets.resolve_preset("x86").name
    if not check.baseline_path(host_preset).exists():
        # Ratios (and tuning databases) are per ISA preset: a baseline from another CPU class says
        # nothing about this one. Record one here with `slimdet bench-check --record`.
        pytest.skip(f"no committed baseline for this host's preset {host_preset}")
    results = check.check(host_preset, reps=5, models=["yolov3-tiny"])
    assert results, "no yolov3-tiny case in the baseline"
    failed = [r for r in results if not r.ok]
    assert not failed, "\n" + check.format_results(results)


def test_a_missing_baseline_is_a_clear_error(tmp_path):
    with pytest.raises(check.SlimdetError, match="no performance baseline"):
        check.check("x86-avx2", root=tmp_path)


def test_recording_one_model_keeps_the_other_models_baselines():
    old = [{"model": "a", "input_size": 416, "batch": 1, "threads": 2, "ratios": {"x": 1.0}},
           {"model": "b", "input_size": 640, "batch": 1, "threads": 2, "ratios": {"x": 1.0}}]
    new = [{"model": "b", "input_size": 640, "batch": 1, "threads": 2, "ratios": {"x": 2.0}}]
    merged = check.merged_cases(old, new)
    assert [(c["model"], c["ratios"]["x"]) for c in merged] == [("a", 1.0), ("b", 2.0)]
