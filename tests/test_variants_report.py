"""slimdet report: a model's variants compiled, timed against the fp32 peers and scored, in one run."""

from pipeline.bench import variants


def test_report_compares_each_variant_library_with_the_unpruned_fp32_peers(tmp_path):
    # one variant besides fp32: each costs a compile of the digits model, the bulk of this test's time
    # (pruned variants' MACs and parameters are checked in test_compress)
    report = variants.variant_report("yolov8-digits", ("fp32", "int8"), reps=1, test_images=4,
                                     peers=("pytorch-eager", "onnxruntime"), workdir=tmp_path)
    fp32, int8 = report["rows"]
    assert (fp32["variant"], int8["variant"]) == ("fp32", "int8")
    assert int8["gmacs"] == fp32["gmacs"] and int8["library_mb"] < fp32["library_mb"]
    fp32_peers = {"pytorch-eager fp32", "onnxruntime fp32"}
    assert set(fp32["speedup_vs"]) == fp32_peers
    # a variant is timed against the fp32 TVM library, and an int8 one also against ONNX Runtime
    # running its own Q/DQ model
    assert set(int8["speedup_vs"]) == fp32_peers | {"tvm fp32", "onnxruntime int8"}
    for row in report["rows"]:
        assert row["accuracy"]["kind"].startswith("true mAP") and 0.0 <= row["accuracy"]["map50"] <= 1.0
    table = variants.markdown(report)
    # each row names the preset its library was built for (`x86`: the widest one with a database)
    assert int8["preset"].startswith("x86-") and f"| int8 ({int8['preset']}) |" in table and "vs onnxruntime fp32" in table and "vs onnxruntime int8" in table
    assert variants.plot(report, tmp_path / "variants.png").stat().st_size > 10_000
