"""Raw head maps -> boxes, in numpy only (the deploy runtime has no torch).

Two decoder kinds, named in the artifact metadata:
- ``anchors``: YOLOv3-style maps of ``A * (5 + C)`` channels: sigmoid xy offsets, exp wh times
  anchor sizes, sigmoid objectness times sigmoid class scores.
- ``dfl``: YOLOv8-style maps of ``4 * reg_max + C`` channels: a softmax over ``reg_max`` bins
  gives left/top/right/bottom distances from the cell centre, class scores are sigmoids.
"""

import numpy as np


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _grid(h, w):
    ys, xs = np.meshgrid(np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32), indexing="ij")
    return xs, ys


def decode_anchors(maps, input_size, anchors):
    """Per image: (boxes xyxy [N, 4], scores [N, C]) from YOLOv3-style head maps."""
    boxes, scores = [], []
    for fmap, level_anchors in zip(maps, anchors):
        n_anchor = len(level_anchors)
        _, h, w = fmap.shape
        stride = input_size / h
        p = fmap.reshape(n_anchor, -1, h, w)
        xs, ys = _grid(h, w)
        aw = np.asarray(level_anchors, np.float32)[:, 0, None, None]
        ah = np.asarray(level_anchors, np.float32)[:, 1, None, None]
        cx = (_sigmoid(p[:, 0]) + xs) * stride
        cy = (_sigmoid(p[:, 1]) + ys) * stride
        bw = np.exp(np.clip(p[:, 2], -20, 20)) * aw
        bh = np.exp(np.clip(p[:, 3], -20, 20)) * ah
        conf = _sigmoid(p[:, 4:5]) * _sigmoid(p[:, 5:])
        boxes.append(np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], -1).reshape(-1, 4))
        scores.append(conf.transpose(0, 2, 3, 1).reshape(-1, conf.shape[1]))
    return np.concatenate(boxes), np.concatenate(scores)


def decode_dfl(maps, input_size, reg_max):
    """Per image: (boxes xyxy [N, 4], scores [N, C]) from YOLOv8-style head maps."""
    boxes, scores = [], []
    bins = np.arange(reg_max, dtype=np.float32)
    for fmap in maps:
        c, h, w = fmap.shape
        stride = input_size / h
        dist = fmap[: 4 * reg_max].reshape(4, reg_max, h * w)
        dist = np.exp(dist - dist.max(1, keepdims=True))
        dist = (dist / dist.sum(1, keepdims=True) * bins[None, :, None]).sum(1)  # [4, HW]
        xs, ys = _grid(h, w)
        cx, cy = xs.reshape(-1) + 0.5, ys.reshape(-1) + 0.5
        xyxy = np.stack([cx - dist[0], cy - dist[1], cx + dist[2], cy + dist[3]], -1) * stride
        boxes.append(xyxy)
        scores.append(_sigmoid(fmap[4 * reg_max:].reshape(c - 4 * reg_max, -1).T))
    return np.concatenate(boxes), np.concatenate(scores)


def decode(maps, input_size, decoder):
    """Dispatch on the decoder kind recorded in the metadata; ``maps`` are one image's maps."""
    if decoder["kind"] == "anchors":
        return decode_anchors(maps, input_size, decoder["anchors"])
    if decoder["kind"] == "dfl":
        return decode_dfl(maps, input_size, decoder["reg_max"])
    raise ValueError(f"unknown decoder kind {decoder['kind']!r}")


def iou(box, others):
    x1 = np.maximum(box[0], others[:, 0])
    y1 = np.maximum(box[1], others[:, 1])
    x2 = np.minimum(box[2], others[:, 2])
    y2 = np.minimum(box[3], others[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
    return inter / np.maximum(area(box) + area(others) - inter, 1e-9)


def nms(boxes, scores, iou_threshold):
    """Greedy NMS; returns kept indices in descending score order."""
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        order = rest[iou(boxes[i], boxes[rest]) <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def detect(boxes, scores, conf_threshold=0.25, iou_threshold=0.45, max_det=300):
    """Class-aware NMS: every (box, class) pair above the threshold is a candidate, and
    suppression only happens within a class. Returns (xyxy [K, 4], score [K], class_id [K])."""
    box_idx, cls_idx = np.nonzero(scores > conf_threshold)
    cand_scores = scores[box_idx, cls_idx]
    cand_boxes = boxes[box_idx]
    # Offsetting each class into its own region makes one NMS pass class-aware.
    offset = cls_idx[:, None].astype(np.float32) * (np.abs(boxes).max(initial=1.0) * 2 + 1)
    keep = nms(cand_boxes + offset, cand_scores, iou_threshold)[:max_det]
    return cand_boxes[keep], cand_scores[keep], cls_idx[keep]
