"""YOLOv8 detection loss: task-aligned assignment, IoU + DFL box loss, BCE class loss.

The head returns raw maps per level, ``[B, 4 * reg_max + C, H, W]``: box distances to the four
sides as distributions over ``reg_max`` bins (in stride units), then class logits. The same
layout the runtime decodes (``pipeline/runtime/decode.py: decode_dfl``).
"""

import torch
import torch.nn.functional as F

EPS = 1e-9


def flatten_maps(maps, reg_max):
    """(box logits [B, A, 4, reg_max], class logits [B, A, C], anchor centres per level [HW, 2]
    in grid cells), anchors ordered level by level, row-major, as ``decode_dfl`` reads them."""
    box, cls, centres = [], [], []
    for fmap in maps:
        b, _, h, w = fmap.shape
        flat = fmap.flatten(2).transpose(1, 2)  # [B, HW, C]
        box.append(flat[..., : 4 * reg_max].reshape(b, h * w, 4, reg_max))
        cls.append(flat[..., 4 * reg_max:])
        ys, xs = torch.meshgrid(torch.arange(h, dtype=fmap.dtype), torch.arange(w, dtype=fmap.dtype), indexing="ij")
        centres.append(torch.stack([xs.flatten() + 0.5, ys.flatten() + 0.5], -1))
    return torch.cat(box, 1), torch.cat(cls, 1), centres


def _areas_and_inter(a, b):
    inter = (torch.minimum(a[..., 2:], b[..., 2:]) - torch.maximum(a[..., :2], b[..., :2])).clamp(min=0).prod(-1)
    area_a = (a[..., 2:] - a[..., :2]).clamp(min=0).prod(-1)
    area_b = (b[..., 2:] - b[..., :2]).clamp(min=0).prod(-1)
    return inter, area_a + area_b - inter


def box_iou(a, b):
    """Element-wise IoU of xyxy boxes broadcast together."""
    inter, union = _areas_and_inter(a, b)
    return inter / (union + EPS)


def giou(a, b):
    """Generalised IoU: IoU minus the share of the enclosing box that neither box covers."""
    inter, union = _areas_and_inter(a, b)
    hull = (torch.maximum(a[..., 2:], b[..., 2:]) - torch.minimum(a[..., :2], b[..., :2])).clamp(min=0).prod(-1)
    return inter / (union + EPS) - (hull - union) / (hull + EPS)


class TaskAlignedAssigner:
    """Each ground-truth box takes the ``top_k`` anchors inside it with the highest
    ``score^alpha * IoU^beta``; an anchor claimed by several boxes goes to the best-overlapping one.
    Class targets are that alignment, normalised so each box's best anchor reaches its best IoU."""

    def __init__(self, top_k=10, alpha=1.0, beta=6.0):
        self.top_k, self.alpha, self.beta = top_k, alpha, beta

    @torch.no_grad()
    def __call__(self, scores, boxes, anchors, gt_boxes, gt_labels, gt_mask):
        # scores [B, A, C] (sigmoid), boxes [B, A, 4] px, anchors [A, 2] px,
        # gt_boxes [B, M, 4], gt_labels [B, M], gt_mask [B, M] (real boxes, not padding)
        b, a, c = scores.shape
        m = gt_boxes.shape[1]
        x, y = anchors[:, 0], anchors[:, 1]
        inside = ((x[None, None] > gt_boxes[..., 0:1]) & (x[None, None] < gt_boxes[..., 2:3]) &
                  (y[None, None] > gt_boxes[..., 1:2]) & (y[None, None] < gt_boxes[..., 3:4]) &
                  gt_mask[..., None])  # [B, M, A]
        overlaps = box_iou(gt_boxes[:, :, None], boxes[:, None]).clamp(min=0) * inside
        cls_scores = scores.gather(2, gt_labels[:, None, :].expand(b, a, m).clamp(min=0)).transpose(1, 2)
        align = cls_scores.pow(self.alpha) * overlaps.pow(self.beta) * inside
        top = align.topk(min(self.top_k, a), dim=-1).indices
        chosen = torch.zeros_like(inside).scatter_(-1, top, True) & inside & (align > 0)
        # One box per anchor: the best overlap among the boxes that chose it.
        several = chosen.sum(1, keepdim=True) > 1
        best = F.one_hot(overlaps.argmax(1), m).transpose(1, 2).bool()
        chosen = torch.where(several, best & inside, chosen)
        fg = chosen.any(1)  # [B, A]
        gt_index = chosen.float().argmax(1)  # [B, A]
        target_boxes = gt_boxes.gather(1, gt_index[..., None].expand(b, a, 4))
        target_labels = gt_labels.gather(1, gt_index)
        align = align * chosen
        norm = (align * overlaps.amax(-1, keepdim=True) / (align.amax(-1, keepdim=True) + EPS)).amax(1)  # [B, A]
        target_scores = F.one_hot(target_labels.clamp(min=0), c).float() * (norm * fg)[..., None]
        return target_boxes, target_scores, fg


class DetectionLoss:
    def __init__(self, num_classes, reg_max=16, strides=(8, 16, 32), box_gain=7.5, cls_gain=0.5, dfl_gain=1.5):
        self.num_classes, self.reg_max, self.strides = num_classes, reg_max, strides
        self.gains = (box_gain, cls_gain, dfl_gain)
        self.assigner = TaskAlignedAssigner()

    def decode(self, maps):
        """(box logits [B, A, 4, reg_max], class logits [B, A, C], anchors [A, 2] px, strides [A],
        predicted boxes [B, A, 4] px xyxy), as the runtime decodes them."""
        box_logits, cls_logits, centres = flatten_maps(maps, self.reg_max)
        anchors = torch.cat([ctr * s for ctr, s in zip(centres, self.strides)])
        stride = torch.cat([torch.full((len(ctr),), float(s)) for ctr, s in zip(centres, self.strides)])
        bins = torch.arange(self.reg_max, dtype=box_logits.dtype)
        dist = (box_logits.softmax(-1) * bins).sum(-1) * stride[None, :, None]
        pred_boxes = torch.cat([anchors - dist[..., :2], anchors + dist[..., 2:]], -1)
        return box_logits, cls_logits, anchors, stride, pred_boxes

    def assign(self, maps, gt_boxes, gt_labels, gt_mask):
        """(predicted boxes, target boxes, target scores, foreground mask) for a batch."""
        _, cls_logits, anchors, _, pred_boxes = self.decode(maps)
        return (pred_boxes, *self.assigner(cls_logits.detach().sigmoid(), pred_boxes.detach(), anchors,
                                           gt_boxes, gt_labels, gt_mask))

    def __call__(self, maps, gt_boxes, gt_labels, gt_mask):
        """Total loss and its (box, cls, dfl) parts for a batch; boxes in input pixels, xyxy.
        It need not fall monotonically: class targets are the alignment, which grows as boxes improve."""
        box_logits, cls_logits, anchors, stride, pred_boxes = self.decode(maps)
        target_boxes, target_scores, fg = self.assigner(cls_logits.detach().sigmoid(), pred_boxes.detach(), anchors,
                                                        gt_boxes, gt_labels, gt_mask)
        score_sum = target_scores.sum().clamp(min=1.0)
        loss_cls = F.binary_cross_entropy_with_logits(cls_logits, target_scores, reduction="sum") / score_sum
        if not fg.any():
            zero = box_logits.sum() * 0
            return loss_cls * self.gains[1], (zero, loss_cls.detach(), zero)
        weight = target_scores.sum(-1)[fg]
        loss_box = ((1 - giou(pred_boxes[fg], target_boxes[fg])) * weight).sum() / score_sum
        # DFL: the target distance (stride units) split between its two neighbouring bins.
        target_dist = torch.cat([anchors[None] - target_boxes[..., :2], target_boxes[..., 2:] - anchors[None]], -1)
        target_dist = (target_dist / stride[None, :, None])[fg].clamp(0, self.reg_max - 1 - 0.01)
        left = target_dist.floor().long()
        w_right = target_dist - left
        logits = box_logits[fg]  # [N, 4, reg_max]
        dfl = (F.cross_entropy(logits.transpose(1, 2), left, reduction="none") * (1 - w_right) +
               F.cross_entropy(logits.transpose(1, 2), left + 1, reduction="none") * w_right).mean(-1)
        loss_dfl = (dfl * weight).sum() / score_sum
        box_gain, cls_gain, dfl_gain = self.gains
        total = box_gain * loss_box + cls_gain * loss_cls + dfl_gain * loss_dfl
        return total, (loss_box.detach(), loss_cls.detach(), loss_dfl.detach())
