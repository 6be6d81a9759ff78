import numpy as np
import pytest
import torch

from pipeline import assets
from pipeline.errors import AssetError, InputError, UnknownModelError
from pipeline.models import load_model
from pipeline.models.darknet import DarknetYolo, parse_cfg


def test_unknown_model_names_the_known_ones():
    with pytest.raises(UnknownModelError, match="unknown model 'yolo9000'.*yolov3-tiny"):
        load_model("yolo9000")


def test_input_size_must_be_a_multiple_of_32():
    with pytest.raises(InputError, match="multiple of 32"):
        load_model("yolov8n", 100)


def test_yolov3_tiny_has_real_coco_weights(yolov3_tiny):
    assert len(yolov3_tiny.classes) == 80 and yolov3_tiny.classes[16] == "dog"
    with torch.no_grad():
        outs = yolov3_tiny.module(yolov3_tiny.example_input())
    assert [tuple(o.shape) for o in outs] == [(1, 255, 13, 13), (1, 255, 26, 26)]
    # Trained BN statistics, not an init: running_var differs from 1 in the first layer.
    assert not torch.allclose(yolov3_tiny.module.layers[0].norm.running_var, torch.ones(16))


def test_truncated_weights_file_is_refused(tmp_path):
    files = assets.YOLOV3_TINY.paths()
    short = tmp_path / "short.weights"
    short.write_bytes(files["yolov3-tiny.weights"].read_bytes()[:1_000_000])
    with pytest.raises(AssetError, match="ends early"):
        DarknetYolo(files["yolov3-tiny.cfg"]).load_weights(short)


def test_cfg_parser_rejects_garbage(tmp_path):
    cfg = tmp_path / "bad.cfg"
    cfg.write_text("[net]\nwidth=416\n[convolutional\n")
    with pytest.raises(AssetError, match="malformed section"):
        parse_cfg(cfg)
    cfg.write_text("[convolutional]\nfilters=1\n")
    with pytest.raises(AssetError, match=r"\[net\]"):
        parse_cfg(cfg)


def test_yolov8_head_maps_and_c2f_without_chunk():
    spec = load_model("yolov8n", 320)
    with torch.no_grad():
        outs = spec.module(spec.example_input())
    assert [tuple(o.shape) for o in outs] == [(1, 144, 40, 40), (1, 144, 20, 20), (1, 144, 10, 10)]
    ep = torch.export.export(spec.module, (spec.example_input(),))
    ops = {n.target.__name__ for n in ep.graph.nodes if n.op == "call_function"}
    assert not any("chunk" in op or "split" in op for op in ops), ops
    assert 2.5e6 < sum(p.numel() for p in spec.module.parameters()) < 3.5e6  # yolov8n-sized


def test_corrupt_cached_weights_are_detected(tmp_path, monkeypatch):
    files = assets.YOLOV3_TINY.paths()
    monkeypatch.setenv("SLIMDET_CACHE", str(tmp_path))
    target = assets.YOLOV3_TINY.directory()
    target.mkdir(parents=True)
    for name, path in files.items():
        (target / name).write_bytes(path.read_bytes())
    data = bytearray((target / "yolov3-tiny.weights").read_bytes())
    data[5000] ^= 0xFF
    (target / "yolov3-tiny.weights").write_bytes(bytes(data))
    with pytest.raises(AssetError, match="sha256 mismatch.*yolov3-tiny.weights"):
        load_model("yolov3-tiny")


def test_photos_are_real_and_verified():
    from pipeline.runtime.preprocess import load_image

    image = load_image(assets.photo("dog.jpg"))
    assert image.size == (768, 576)
    assert np.asarray(image).std() > 30
    with pytest.raises(AssetError, match="no photo named"):
        assets.photo("cat.jpg")
