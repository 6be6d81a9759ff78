"""Recovery after pruning: fine-tune the pruned student to reproduce the unpruned teacher's head
outputs (knowledge distillation), on unlabelled real photos or, for a model trained on our
labelled data, together with the supervised loss.

The distillation loss follows what each head's numbers mean, so no logit far below zero (an
empty cell) outweighs the cells with objects:
- anchor heads (yolov3-tiny): objectness and class probabilities as soft targets (BCE), box
  offsets by squared error weighted by the teacher's objectness;
- DFL heads (YOLOv8): the box-bin distributions by KL divergence and the class probabilities by
  BCE, weighted by the teacher's best class probability.
"""

import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..training.train import TrainConfig, detection_objective, train, training_batch

# Boxes count in proportion to the teacher's confidence, and every cell a little.
FLOOR_WEIGHT = 0.05


def _weighted_mean(loss, weight):
    return (loss * weight).sum() / weight.sum().clamp_min(1e-6)


def bernoulli_kl(student_logits, teacher_prob):
    """KL(teacher || student) per element for independent sigmoid outputs: the soft-target BCE
    less the teacher's own entropy, so it is 0 where the student matches."""
    t = teacher_prob.clamp(1e-6, 1 - 1e-6)
    return (F.binary_cross_entropy_with_logits(student_logits, teacher_prob, reduction="none")
            + t * t.log() + (1 - t) * (1 - t).log())


def anchor_head_loss(student, teacher, num_anchors: int):
    """KD on darknet YOLO maps ``[B, A*(5+C), H, W]`` (tx, ty, tw, th, objectness, classes)."""
    b, _, h, w = student.shape
    s, t = student.view(b, num_anchors, -1, h, w), teacher.view(b, num_anchors, -1, h, w)
    t_obj = torch.sigmoid(t[:, :, 4])
    weight = (t_obj + FLOOR_WEIGHT).unsqueeze(2)
    box = _weighted_mean(((s[:, :, :4] - t[:, :, :4]) ** 2).sum(2, keepdim=True), weight)
    obj = bernoulli_kl(s[:, :, 4], t_obj).mean()
    cls = _weighted_mean(bernoulli_kl(s[:, :, 5:], torch.sigmoid(t[:, :, 5:])).sum(2, keepdim=True), weight)
    return {"box_kd": box, "obj_kd": obj, "cls_kd": cls}


def dfl_head_loss(student, teacher, reg_max: int):
    """KD on YOLOv8 maps ``[B, 4*reg_max + C, H, W]`` (box-bin logits, then class logits)."""
    b, _, h, w = student.shape
    n_box = 4 * reg_max
    t_cls = torch.sigmoid(teacher[:, n_box:])
    weight = t_cls.amax(1, keepdim=True) + FLOOR_WEIGHT  # [B, 1, H, W]
    s_bins = F.log_softmax(student[:, :n_box].view(b, 4, reg_max, h, w), 2)
    t_bins = F.softmax(teacher[:, :n_box].view(b, 4, reg_max, h, w), 2)
    kl = (t_bins * (t_bins.clamp_min(1e-9).log() - s_bins)).sum((1, 2)).unsqueeze(1)  # [B, 1, H, W]
    box = _weighted_mean(kl, weight)
    cls = _weighted_mean(bernoulli_kl(student[:, n_box:], t_cls).sum(1, keepdim=True), weight)
    return {"dfl_kd": box, "cls_kd": cls}


def head_loss(decoder: dict):
    """The KD loss for one head map, chosen by the model's decoder (data, not an if-chain)."""
    kinds = {
        "anchors": lambda s, t: anchor_head_loss(s, t, len(decoder["anchors"][0])),
        "dfl": lambda s, t: dfl_head_loss(s, t, decoder["reg_max"]),
    }
    return kinds[decoder["kind"]]


def distillation_objective(student, teacher, decoder: dict, supervised=None, kd_weight: float = 1.0):
    """``batch -> (total, parts)``: the KD loss over every head map, plus ``supervised(batch)``
    (the labelled loss) when given."""
    per_map = head_loss(decoder)
    teacher.eval()

    def objective(batch):
        images = batch[0]
        with torch.no_grad():
            targets = teacher(images)
        outputs = student(images)
        parts = {}
        for s, t in zip(outputs, targets):
            for name, value in per_map(s, t).items():
                parts[name] = parts.get(name, 0.0) + value / len(outputs)
        total = kd_weight * sum(parts.values())
        if supervised is not None:
            sup_total, sup_parts = supervised(batch)
            total = total + sup_total
            parts.update(sup_parts)
        return total, parts

    return objective


def photo_batches(paths, size: int, batch: int, seed: int = 0):
    """``step -> (images,)``: seeded random crops (a third to all of the shorter side, any
    aspect), flips and brightness changes of the given real photos, resized to ``size``."""
    photos = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(paths)]

    def crop(rng):
        photo = photos[rng.integers(len(photos))]
        h, w = photo.shape[:2]
        ch, cw = (int(rng.uniform(0.33, 1.0) * d) for d in (h, w))
        y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
        image = np.asarray(Image.fromarray(photo[y:y + ch, x:x + cw]).resize((size, size), Image.BILINEAR),
                           np.float32) / 255.0
        image = image[:, ::-1] if rng.random() < 0.5 else image
        return np.clip(image * rng.uniform(0.7, 1.3), 0.0, 1.0)

    def batches(step):
        rng = np.random.default_rng([seed, step])
        images = np.stack([crop(rng) for _ in range(batch)])
        return (torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(),)

    return batches


# Where each model's distillation images come from: labelled digits (KD + labels) or photos (KD alone).
def _digits_data(student, teacher, spec, config, photos, photos_label):
    return (distillation_objective(student, teacher, spec.decoder, detection_objective(student)),
            lambda step: training_batch(step, config), "digits train split + labels")


def _photo_data(student, teacher, spec, config, photos, photos_label):
    return (distillation_objective(student, teacher, spec.decoder),
            photo_batches(photos, config.input_size, config.batch, config.seed),
            f"{len(photos)} unlabelled photos ({photos_label})")


DATA = {"yolov8-digits": _digits_data}


def distill(student_spec, teacher_spec, checkpoint: Path, config: TrainConfig, photos=(),
            photos_label: str = "", stream=sys.stderr) -> dict:
    """Fine-tune ``student_spec.module`` in place against ``teacher_spec.module``; the result
    says what data it learnt from."""
    data = DATA.get(student_spec.name, _photo_data)
    objective, batches, description = data(student_spec.module, teacher_spec.module, student_spec, config,
                                           list(photos), photos_label)
    result = train(student_spec.module, checkpoint, config, stream, objective=objective, batches=batches,
                   tag="distill")
    return {**result, "data": description}
