"""Fast CI form of `make bench-check`: tuned TVM vs its peers, ratios from one interleaved run,
held against the committed baseline with its stated tolerance."""

import pytest

from pipeline.bench import check


@pytest.mark.perf
def test_tuned_yolov3_tiny_holds_its_baseline_ratios():
    baseline = check.load_baseline("x86-avx2")
    assert any(c["model"] == "yolov3-tiny" for c in baseline["cases"])
    results = check.check("x86-avx2", reps=5, models=["yolov3-tiny"])
    assert results, "no yolov3-tiny case in the baseline"
    failed = [r for r in results if not r.ok]
    assert not failed, "\n" + check.format_results(results)


def test_a_missing_baseline_is_a_clear_error(tmp_path):
    with pytest.raises(check.SlimdetError, match="no performance baseline"):
        check.check("x86-avx2", root=tmp_path)
