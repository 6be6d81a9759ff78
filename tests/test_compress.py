"""Structured pruning, variants rebuilt from their weights, and distillation (real models, CPU)."""

import copy

import pytest
import torch

from pipeline import assets
from pipeline.compress.distill import anchor_head_loss, distillation_objective, dfl_head_loss, photo_batches
from pipeline.compress.prune import output_convs, prune, prune_unstructured, ratio_for_macs
from pipeline.errors import CheckpointError, InputError
from pipeline.models import load_model, save_variant
from pipeline.models.yolov8 import YOLOv8


def small_yolov8():
    torch.manual_seed(0)
    return YOLOv8(num_classes=10, width=0.25, depth=0.33).eval()


def convs(module):
    return {name: m for name, m in module.named_modules() if isinstance(m, torch.nn.Conv2d)}


def test_output_convs_are_the_convs_that_write_the_head_maps():
    model = small_yolov8()
    found = {name for name, m in convs(model).items() if m in output_convs(model, torch.rand(1, 3, 64, 64))}
    assert found == {f"head.{branch}.{level}.2" for branch in ("box", "cls") for level in range(3)}


def test_pruning_removes_channels_in_multiples_of_round_to_and_keeps_the_head_contract():
    model, x = small_yolov8(), torch.rand(1, 3, 96, 96)
    before = {name: m.out_channels for name, m in convs(model).items()}
    with torch.no_grad():
        shapes = [o.shape for o in model(x)]
    report = prune(model, x, 0.4, round_to=16)
    after = {name: m.out_channels for name, m in convs(model).items()}
    changed = [name for name in before if after[name] != before[name]]
    assert changed, "nothing was pruned"
    assert all(after[name] % 16 == 0 for name in changed)
    assert all(after[name] == before[name] for name in before if name.startswith("head.") and name.endswith(".2"))
    with torch.no_grad():
        assert [o.shape for o in model(x)] == shapes
    assert report.macs < 0.75 * report.base_macs and report.params < report.base_params


def test_each_pruned_width_is_the_multiple_of_round_to_nearest_its_share():
    """Rounded down, a 32-wide conv loses half its channels at any ratio; to the nearest, only
    the ratio's share, and none is cut to zero."""
    model, x = small_yolov8(), torch.rand(1, 3, 96, 96)
    heads = set(output_convs(model, x))
    before = {name: m.out_channels for name, m in convs(model).items() if m not in heads}
    prune(model, x, 0.3, round_to=16)
    after = {name: m.out_channels for name, m in convs(model).items()}
    nearest = {name: max(16, 16 * round(width * 0.7 / 16)) for name, width in before.items()}
    assert {name: after[name] for name in before} == nearest
    assert any(after[name] < before[name] for name in before) and any(w == 16 for w in nearest.values())


def test_unstructured_pruning_zeroes_weights_but_changes_no_shape_and_no_mac():
    model, x = small_yolov8(), torch.rand(1, 3, 64, 64)
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    before = prune(copy.deepcopy(model), x, 0.0).macs
    sparsity = prune_unstructured(model, x, 0.5)
    assert 0.45 < sparsity <= 0.5  # the spared output convs hold a few percent of the weights
    assert {k: v.shape for k, v in model.state_dict().items()} == shapes
    assert prune(model, x, 0.0).macs == before


def test_ratio_for_macs_picks_the_rounding_step_closest_to_the_goal():
    model, x = small_yolov8(), torch.rand(1, 3, 64, 64)
    ratio = ratio_for_macs(model, x, 0.5, round_to=16, steps=8)
    kept = prune(copy.deepcopy(model), x, ratio, 16).macs_kept
    others = [prune(copy.deepcopy(model), x, r, 16).macs_kept for r in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)]
    assert all(abs(kept - 0.5) <= abs(k - 0.5) + 1e-9 for k in others)
    with pytest.raises(InputError, match="fraction of MACs"):
        ratio_for_macs(model, x, 1.5)


def test_a_saved_variant_is_rebuilt_from_its_weights_alone(tmp_path):
    spec = load_model("yolov8-digits")
    report = prune(spec.module, spec.example_input(), 0.3, 16)
    save_variant(spec.module, spec.name, "p30", {"pruning": report.as_dict(), "recovery": None}, tmp_path)
    rebuilt = load_model("yolov8-digits", variant="p30", weights_dir=tmp_path)
    assert rebuilt.variant == "p30" and "not fine-tuned since pruning" in rebuilt.weights
    x = spec.example_input()
    with torch.no_grad():
        for want, got in zip(spec.module(x), rebuilt.module(x)):
            assert torch.allclose(want, got, atol=0.05 * float(want.abs().max()))  # weights stored as fp16
    with pytest.raises(CheckpointError, match="has no variant 'p99'.*slimdet prune"):
        load_model("yolov8-digits", variant="p99", weights_dir=tmp_path)
    (tmp_path / "yolov8n-p30.pt").write_bytes((tmp_path / "yolov8-digits-p30.pt").read_bytes())
    with pytest.raises(CheckpointError, match="variant of 'yolov8-digits', not of 'yolov8n'"):
        load_model("yolov8n", variant="p30", weights_dir=tmp_path)


def test_head_losses_are_zero_when_the_student_matches_the_teacher_and_positive_otherwise():
    torch.manual_seed(0)
    anchors, dfl = torch.randn(2, 3 * 15, 4, 4) * 3, torch.randn(2, 4 * 16 + 10, 4, 4) * 3
    for loss, maps in ((lambda s, t: anchor_head_loss(s, t, 3), anchors), (lambda s, t: dfl_head_loss(s, t, 16), dfl)):
        assert all(float(v) < 1e-5 for v in loss(maps, maps).values())
        assert all(float(v) > 1e-3 for v in loss(maps + torch.randn_like(maps), maps).values())


def test_distillation_brings_a_pruned_student_closer_to_its_teacher(tmp_path):
    from pipeline.training.train import TrainConfig, train, training_batch

    teacher = load_model("yolov8-digits")  # trained: a random net's heads are near-constant
    student = copy.deepcopy(teacher)
    prune(student.module, teacher.example_input(), 0.4, 16)
    config = TrainConfig(steps=30, batch=4, input_size=96, lr=2e-3, warmup_steps=3, checkpoint_every=1000,
                         bn_batches=2)
    held_out = training_batch(10_000, config)

    def gap():
        student.module.eval()
        with torch.no_grad():
            return float(distillation_objective(student.module, teacher.module, teacher.decoder)(held_out)[0])

    before = gap()
    train(student.module, tmp_path / "run.pt", config, tag="distill",
          objective=distillation_objective(student.module, teacher.module, teacher.decoder),
          batches=lambda step: training_batch(step, config))
    assert gap() < 0.7 * before


def test_photo_batches_are_seeded_crops_of_the_photos():
    batches = photo_batches(assets.SKIMAGE_PHOTOS.paths().values(), 64, 3, seed=1)
    (a,), (b,), (c,) = batches(5), batches(5), batches(6)
    assert a.shape == (3, 3, 64, 64) and 0.0 <= float(a.min()) and float(a.max()) <= 1.0
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_sweep_times_every_copy_and_compares_it_with_the_unpruned_model(tmp_path):
    from pipeline.compress import sweep
    from pipeline.models import ModelSpec

    spec = ModelSpec(name="small", module=small_yolov8(), classes=[str(d) for d in range(10)], input_size=64,
                     decoder={"kind": "dfl", "reg_max": 16})
    rows = sweep.sweep(spec, ratios=(0.4,), round_tos=(16, 1), reps=2, unstructured=(0.5,))
    keys = {(r.kind, r.ratio, r.round_to, r.engine) for r in rows}
    assert keys == {(kind, ratio, round_to, engine) for engine in ("pytorch-eager", "onnxruntime")
                    for kind, ratio, round_to in (("structured", 0.0, 1), ("structured", 0.4, 16),
                                                  ("structured", 0.4, 1), ("unstructured", 0.5, 1))}
    assert all(r.speedup_vs_unpruned == 1.0 for r in rows if r.ratio == 0.0)
    assert all(r.macs_kept < 1.0 for r in rows if r.kind == "structured" and r.ratio)
    assert all(r.macs_kept == 1.0 for r in rows if r.kind == "unstructured")
    assert sweep.plot(rows, tmp_path / "sweep.png", "small").stat().st_size > 10_000


def test_distill_learns_from_photos_unless_the_model_has_labelled_data(tmp_path):
    from pipeline.compress.distill import DATA, distill
    from pipeline.models import ModelSpec
    from pipeline.training.train import TrainConfig

    def spec():
        return ModelSpec(name="small", module=small_yolov8(), classes=[str(d) for d in range(10)], input_size=64,
                         decoder={"kind": "dfl", "reg_max": 16})

    photos = list(assets.SKIMAGE_PHOTOS.paths().values())[:3]
    config = TrainConfig(steps=2, batch=2, input_size=64, warmup_steps=1, bn_batches=1)
    result = distill(spec(), spec(), tmp_path / "run.pt", config, photos=photos, photos_label="three")
    assert result["steps"] == 2 and result["data"] == "3 unlabelled photos (three)"
    assert "small" not in DATA and "yolov8-digits" in DATA
