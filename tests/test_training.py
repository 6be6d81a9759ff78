"""The detection loss and a few real training steps."""

import torch

from pipeline.models.yolov8 import YOLOv8
from pipeline.training.loss import DetectionLoss, TaskAlignedAssigner, box_iou, giou
from pipeline.training.train import TrainConfig, train, training_batch


def test_giou_of_identical_boxes_is_one_and_of_far_apart_boxes_is_negative():
    a = torch.tensor([0.0, 0, 10, 10])
    assert torch.isclose(giou(a, a), torch.tensor(1.0))
    assert giou(a, torch.tensor([20.0, 0, 30, 10])) < 0


def test_assigner_gives_a_box_only_anchors_inside_it_and_its_class():
    anchors = torch.tensor([[4.0, 4.0], [12.0, 4.0], [20.0, 20.0]])
    scores = torch.full((1, 3, 2), 0.5)
    pred = torch.tensor([[[0.0, 0, 8, 8], [8.0, 0, 16, 8], [16.0, 16, 24, 24]]])
    gt = torch.tensor([[[0.0, 0, 16, 8]]])
    boxes, target_scores, fg = TaskAlignedAssigner(top_k=10)(scores, pred, anchors, gt, torch.tensor([[1]]),
                                                              torch.tensor([[True]]))
    assert fg.tolist() == [[True, True, False]]
    assert (target_scores[0, :2, 1] > 0).all() and target_scores[0, :, 0].sum() == 0 and target_scores[0, 2].sum() == 0
    assert torch.equal(boxes[0, 0], gt[0, 0])


def test_a_few_steps_on_one_batch_bring_the_assigned_boxes_onto_the_ground_truth():
    torch.manual_seed(0)
    model = YOLOv8(num_classes=10, width=0.125, depth=0.33)
    images, boxes, labels, mask = training_batch(0, TrainConfig(batch=4, input_size=128))
    loss_fn = DetectionLoss(10, model.reg_max, model.STRIDES)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)

    def assigned_iou():
        with torch.no_grad():
            pred, target, _, fg = loss_fn.assign(model(images), boxes, labels, mask)
        return float(box_iou(pred[fg], target[fg]).mean())

    before = assigned_iou()
    for _ in range(20):
        loss, _ = loss_fn(model(images), boxes, labels, mask)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert before < 0.1 and assigned_iou() > 0.2


def test_training_checkpoints_and_resumes(tmp_path):
    torch.manual_seed(0)
    model = YOLOv8(num_classes=10, width=0.125, depth=0.33)
    ckpt = tmp_path / "ckpt.pt"
    train(model, ckpt, TrainConfig(steps=2, batch=2, input_size=96, checkpoint_every=1, warmup_steps=1))
    assert torch.load(ckpt, weights_only=False)["step"] == 2
    result = train(model, ckpt, TrainConfig(steps=3, batch=2, input_size=96, checkpoint_every=1, warmup_steps=1))
    assert result["steps"] == 3 and torch.load(ckpt, weights_only=False)["step"] == 3


def test_checkpoint_loader_names_each_failure(tmp_path):
    import pytest

    from pipeline.errors import CheckpointError
    from pipeline.models import DIGITS_ARCH, load_checkpoint

    net = YOLOv8(**DIGITS_ARCH)
    with pytest.raises(CheckpointError, match="no checkpoint at .*missing.pt; train one"):
        load_checkpoint(net, tmp_path / "missing.pt", "train one")
    (tmp_path / "corrupt.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupt checkpoint .*corrupt.pt"):
        load_checkpoint(net, tmp_path / "corrupt.pt", "train one")
    torch.save({"model": YOLOv8(num_classes=10, width=0.125).state_dict()}, tmp_path / "narrow.pt")
    with pytest.raises(CheckpointError, match="another architecture.*shape differs"):
        load_checkpoint(net, tmp_path / "narrow.pt", "train one")
    torch.save({"model": net.state_dict()}, tmp_path / "good.pt")
    load_checkpoint(YOLOv8(**DIGITS_ARCH), tmp_path / "good.pt", "train one")


def test_batchnorm_recalibration_sets_running_statistics_to_the_batches_statistics():
    from pipeline.training.train import recalibrate_batchnorm

    torch.manual_seed(0)
    model = YOLOv8(num_classes=10, width=0.125, depth=0.33)
    batches = [training_batch(k, TrainConfig(batch=2, input_size=96))[0] for k in range(2)]
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    inputs = {m: [] for m in norms}
    hooks = [m.register_forward_pre_hook(lambda m, args: inputs[m].append(args[0].detach())) for m in norms]
    recalibrate_batchnorm(model, batches)
    for h in hooks:
        h.remove()
    assert not model.training and all(m.momentum == 0.03 for m in norms)
    for m in norms:  # the plain average over the batches, not an exponential trail
        want = torch.stack([x.mean((0, 2, 3)) for x in inputs[m]]).mean(0)
        assert torch.allclose(m.running_mean, want, atol=1e-5)
