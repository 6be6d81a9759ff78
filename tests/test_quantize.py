"""Static int8 PTQ: a Q/DQ variant calibrated on real data, and its compiled library computing in integers."""

import numpy as np
import pytest
import torch

from pipeline.cli import main
from pipeline.compress.quantize import (base_of, calibration_images, default_calibration, int8_variant, quantize,
                                        read_info)
from pipeline.errors import CheckpointError, InputError
from pipeline.models import load_model, variant_path

from .qdq import ort_run

@pytest.fixture(scope="module")
def digits_int8(tmp_path_factory):
    weights_dir = tmp_path_factory.mktemp("weights")
    spec = load_model("yolov8-digits")
    images, description = default_calibration(spec, 16)
    report = quantize(spec, images, variant_path(spec.name, "int8", weights_dir), "percentile",
                      calibration=description)
    return weights_dir, report


def test_int8_variant_names_follow_their_base():
    assert int8_variant("fp32") == "int8" and int8_variant("pruned46") == "pruned46-int8"
    assert base_of("int8") == "fp32" and base_of("pruned46-int8") == "pruned46" and base_of("pruned46") is None


def test_every_conv_is_quantized_and_the_file_says_how(digits_int8):
    weights_dir, report = digits_int8
    assert report.quantized_convs == report.convs > 50
    info = read_info(variant_path("yolov8-digits", "int8", weights_dir))
    assert info["method"] == "percentile" and info["base_variant"] == "fp32" and "digits train" in info["calibration"]


def test_int8_variant_loads_and_tracks_fp32(digits_int8):
    weights_dir, _ = digits_int8
    spec = load_model("yolov8-digits", variant="int8", weights_dir=weights_dir)
    assert spec.variant == "int8" and spec.qdq_onnx.endswith("yolov8-digits-int8.onnx") and "int8" in spec.weights
    images, _ = default_calibration(spec, 20)
    x = calibration_images(spec, images[16:17])[0][None]  # an image it was not calibrated on
    got = ort_run(spec.qdq_onnx, x, "images")
    with torch.no_grad():
        want = [t.numpy() for t in spec.module(torch.from_numpy(x))]
    for g, w in zip(got, want):
        assert np.corrcoef(g.ravel(), w.ravel())[0, 1] > 0.98


def test_bad_quantize_input_is_named(digits_int8, tmp_path):
    weights_dir, _ = digits_int8
    spec = load_model("yolov8-digits")
    with pytest.raises(InputError, match="unknown calibration method 'kl'"):
        quantize(spec, [object()], tmp_path / "x.onnx", "kl")
    with pytest.raises(InputError, match="quantized at input size 256, not 320"):
        load_model("yolov8-digits", 320, "int8", weights_dir)
    with pytest.raises(CheckpointError, match="no variant 'pruned9'"):
        load_model("yolov8-digits", variant="pruned9-int8", weights_dir=weights_dir)
    (tmp_path / "yolov8-digits-int8.onnx").write_bytes(b"not a model")
    with pytest.raises(CheckpointError, match="corrupt int8 model"):
        load_model("yolov8-digits", variant="int8", weights_dir=tmp_path)


def test_quantize_cli_writes_the_variant(tmp_path, capsys):
    assert main(["quantize", "--model", "yolov8-digits", "--images", "4", "--weights-dir", str(tmp_path)]) == 0
    assert "convs int8" in capsys.readouterr().out and (tmp_path / "yolov8-digits-int8.onnx").exists()
