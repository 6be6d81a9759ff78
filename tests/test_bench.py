import json
import math

import pytest

from pipeline.bench.harness import bench_model
from pipeline.bench.report import format_table, plot, save_json

FIELDS = {"model", "target", "batch", "threads", "engine", "p50_ms", "p90_ms", "images_per_s", "peak_rss_mb",
          "artifact_mb"}


def test_bench_runs_every_engine_interleaved_and_writes_json_and_plot(tmp_path):
    result = bench_model("yolov3-tiny", 96, "x86", batches=(1, 2), threads=(1, 2), streams=(2,), reps=2,
                         engines=("pytorch-eager", "onnxruntime", "openvino", "tvm"), workdir=tmp_path / "w")
    rows = result["rows"]
    assert FIELDS <= set(rows[0])
    engines = {r["engine"] for r in rows}
    assert engines == {"pytorch-eager", "onnxruntime", "openvino", "tvm"}
    # 2 batches x (2 thread settings + 1 streams setting) x 4 engines
    assert len(rows) == 2 * 3 * 4
    for r in rows:
        assert r["images_per_s"] > 0 and r["artifact_mb"] > 1
        assert r["max_abs_diff_vs_eager"] < 1e-3  # every engine computes the same network
        assert r["peak_rss_mb"] is not None and r["peak_rss_mb"] > 50
        if r["streams"] == 1:
            assert 0 < r["p50_ms"] <= r["p90_ms"]
        else:
            assert math.isnan(r["p50_ms"])
    table = format_table(result)
    assert "tvm" in table and "vs eager" in table
    save_json([result], tmp_path / "b.json")
    assert json.loads((tmp_path / "b.json").read_text())["results"][0]["model"] == "yolov3-tiny"
    plot([result], tmp_path / "b.png")
    assert (tmp_path / "b.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_an_unknown_engine_is_named_with_the_known_ones(tmp_path):
    from pipeline.bench.harness import make_engines
    from pipeline.errors import InputError
    from pipeline.models import load_model

    with pytest.raises(InputError, match="unknown engine.*pytorch; known: pytorch-eager"):
        make_engines(load_model("yolov8-digits"), tmp_path, 1, "x86", ("pytorch", "tvm"))
