"""mAP on hand-made cases with known answers."""

import pytest

from pipeline.eval.coco import coco_map, reference_ground_truth

GT = {"images": [{"id": 1, "width": 200, "height": 200}],
      "annotations": [{"id": 1, "image_id": 1, "category_id": 0, "bbox": [0, 0, 100, 100], "area": 1e4,
                       "iscrowd": 0}],
      "categories": [{"id": 0}, {"id": 1}]}


def det(box, score, cls=0):
    return {"image_id": 1, "category_id": cls, "bbox": box, "score": score}


def test_an_exact_box_scores_one_and_a_lower_scored_false_positive_costs_nothing():
    r = coco_map(GT, [det([0, 0, 100, 100], 0.9), det([120, 120, 50, 50], 0.5)])
    assert r["map50"] == pytest.approx(1.0) and r["map"] == pytest.approx(1.0)


def test_a_higher_scored_false_positive_halves_precision():
    r = coco_map(GT, [det([120, 120, 50, 50], 0.9), det([0, 0, 100, 100], 0.5)])
    assert r["map50"] == pytest.approx(0.5)


def test_iou_0_62_counts_at_three_of_ten_coco_thresholds():
    r = coco_map(GT, [det([0, 0, 100, 62], 0.9)])  # IoU 0.62: a match at 0.50, 0.55, 0.60
    assert r["map50"] == pytest.approx(1.0) and r["map"] == pytest.approx(0.3)


def test_a_wrong_class_finds_nothing():
    assert coco_map(GT, [det([0, 0, 100, 100], 0.9, cls=1)])["map50"] == pytest.approx(0.0)


def test_fidelity_ground_truth_keeps_only_confident_reference_boxes():
    gt = reference_ground_truth([(1, 200, 200)], [det([0, 0, 100, 100], 0.8), det([5, 5, 10, 10], 0.1)])
    assert [a["bbox"] for a in gt["annotations"]] == [[0, 0, 100, 100]]
    assert coco_map(gt, [det([0, 0, 100, 100], 0.3)])["map"] == pytest.approx(1.0)


def test_no_ground_truth_is_an_error():
    with pytest.raises(ValueError, match="no boxes"):
        coco_map({**GT, "annotations": []}, [])


def test_fidelity_is_one_for_the_reference_itself_and_drops_for_a_damaged_model():
    import numpy as np
    import torch

    from pipeline.eval.evaluate import detector_for, fidelity_map, real_photo_set
    from pipeline.models import load_model

    spec = load_model("yolov3-tiny", 320)
    images = real_photo_set(crops_per_photo=0)[:7]  # darknet's photos: dogs, horses, people, birds

    def eager(x):
        with torch.inference_mode():
            return [o.numpy() for o in spec.module(torch.from_numpy(x))]

    def damaged(x):  # shifted box offsets and noisy scores: what a broken quantization looks like
        rng = np.random.default_rng(0)
        return [m + rng.normal(0, 0.7, m.shape).astype(np.float32) for m in eager(x)]

    reference = detector_for(spec, eager)
    assert fidelity_map(reference, detector_for(spec, eager), images)["map"] == pytest.approx(1.0)
    assert fidelity_map(reference, detector_for(spec, damaged), images)["map"] < 0.9


def test_the_committed_digits_model_detects_held_out_digits_the_same_in_pytorch_and_onnx_runtime(tmp_path):
    # Gate on the committed checkpoint (the full 500-image figures are in README and
    # benchmarks/results): a subset keeps this under a minute.
    from pipeline.eval.evaluate import labelled_report

    report = labelled_report("yolov8-digits", engines=("pytorch-eager", "onnxruntime"), test_images=100,
                             workdir=tmp_path)
    torch_map, ort_map = report["map"]["pytorch-eager"], report["map"]["onnxruntime"]
    assert torch_map["map50"] >= 0.75
    assert abs(torch_map["map50"] - ort_map["map50"]) <= 0.005 and abs(torch_map["map"] - ort_map["map"]) <= 0.005


GATE_PRUNED_MAP50_KEPT = 0.95  # 500 test images: 0.906 of 0.926 (97.8%); 100 images are noisier


def test_the_committed_pruned_digits_variant_keeps_its_accuracy_with_half_the_macs(tmp_path):
    # Gate on the committed pruned + distilled variant, against the fp32 model on the same images.
    from pipeline.compress.prune import count
    from pipeline.eval.evaluate import labelled_report
    from pipeline.models import load_model

    fp32, pruned = load_model("yolov8-digits"), load_model("yolov8-digits", variant="pruned46")
    assert count(pruned.module, pruned.example_input())[0] <= 0.55 * count(fp32.module, fp32.example_input())[0]
    scores = {variant: labelled_report("yolov8-digits", engines=("pytorch-eager",), test_images=100,
                                       workdir=tmp_path / variant, variant=variant)["map"]["pytorch-eager"]
              for variant in ("fp32", "pruned46")}
    assert scores["pruned46"]["map50"] >= GATE_PRUNED_MAP50_KEPT * scores["fp32"]["map50"]


GATE_INT8_FIDELITY_MAP50 = 0.95  # issue 5's gate: yolov3-tiny int8 against fp32 on real photos
# issue 5's gate, on the 500 test images README reports (0.906 of fp32's 0.926: 97.8%); on 200 the
# TVM library kept 97.1%, so fewer images would measure the sample more than the model
GATE_PRUNED_INT8_MAP50_KEPT = 0.97
PRUNED_INT8_GATE_IMAGES = 500


def test_the_committed_int8_yolov3_tiny_finds_what_fp32_finds_on_held_out_photos(tmp_path):
    # ONNX Runtime runs the committed Q/DQ graph; TVM's integer lowering of it is exact to ONNX
    # Runtime (tests/test_integer_conv2d.py, tests/test_quantize.py). Calibration never saw these photos.
    from pipeline.eval.evaluate import fidelity_report

    report = fidelity_report("yolov3-tiny", engines=("onnxruntime",), variant="int8", photos="darknet",
                             workdir=tmp_path)
    assert report["fidelity"]["onnxruntime"]["map50"] >= GATE_INT8_FIDELITY_MAP50


def test_the_committed_pruned_int8_digits_variant_keeps_its_accuracy(tmp_path):
    from pipeline.eval.evaluate import labelled_report

    fp32 = labelled_report("yolov8-digits", engines=("pytorch-eager",), test_images=PRUNED_INT8_GATE_IMAGES,
                           workdir=tmp_path / "a")
    int8 = labelled_report("yolov8-digits", engines=("onnxruntime",), test_images=PRUNED_INT8_GATE_IMAGES,
                           workdir=tmp_path / "b", variant="pruned46-int8")
    assert int8["map"]["onnxruntime"]["map50"] >= GATE_PRUNED_INT8_MAP50_KEPT * fp32["map"]["pytorch-eager"]["map50"]


# yolov3-tiny pruned to 76% of the MACs and distilled 12 min on 11 photos: 0.727 (fp32) and 0.677
# (int8, ONNX Runtime) on the 21 held-out photos and crops. A regression guard, not issue 5's 0.95:
# with no COCO here, what distillation recovers is bounded by the photos it sees.
GATE_PRUNED24_FIDELITY_MAP50 = 0.6


@pytest.mark.parametrize("variant, engine", [("pruned24", "pytorch-eager"), ("pruned24-int8", "onnxruntime")])
def test_the_committed_lightly_pruned_yolov3_tiny_still_finds_what_fp32_finds(tmp_path, variant, engine):
    from pipeline.eval.evaluate import fidelity_report

    report = fidelity_report("yolov3-tiny", engines=(engine,), variant=variant, photos="darknet", workdir=tmp_path)
    assert report["fidelity"][engine]["map50"] >= GATE_PRUNED24_FIDELITY_MAP50
