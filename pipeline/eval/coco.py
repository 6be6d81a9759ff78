"""mAP with pycocotools, the reference implementation, on in-memory COCO dicts."""

import contextlib
import copy
import io

import numpy as np


@contextlib.contextmanager
def _quiet():
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def coco_map(ground_truth: dict, detections: list) -> dict:
    """``ground_truth``: a COCO dict (images, annotations, categories); ``detections``: COCO
    results (image_id, category_id, bbox [x, y, w, h], score). Returns mAP@0.5 and
    mAP@0.5:0.95 over all categories that have ground truth, COCO's rules (100 detections an
    image at most, highest scores first)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if not ground_truth["annotations"]:
        raise ValueError("ground truth has no boxes: mAP is undefined")
    if not detections:
        return {"map50": 0.0, "map": 0.0, "detections": 0}
    with _quiet():
        gt = COCO()
        gt.dataset = copy.deepcopy(ground_truth)
        gt.createIndex()
        dt = gt.loadRes(copy.deepcopy(detections))
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {"map": float(ev.stats[0]), "map50": float(ev.stats[1]), "detections": len(detections)}


def to_coco_results(image_id: int, detections) -> list:
    """Our ``Detection`` objects (x1, y1, x2, y2) as COCO results."""
    out = []
    for d in detections:
        x1, y1, x2, y2 = d.box
        out.append({"image_id": image_id, "category_id": int(d.class_id), "score": float(d.score),
                    "bbox": [x1, y1, x2 - x1, y2 - y1]})
    return out


def reference_ground_truth(images: list, reference: list, conf_threshold: float = 0.25) -> dict:
    """Fidelity ground truth: a reference model's detections at ``conf >= conf_threshold`` as
    the boxes to find. ``images``: (id, width, height); ``reference``: COCO results."""
    anns = [{"id": i + 1, "image_id": r["image_id"], "category_id": r["category_id"], "bbox": r["bbox"],
             "area": float(np.prod(r["bbox"][2:])), "iscrowd": 0}
            for i, r in enumerate(r for r in reference if r["score"] >= conf_threshold)]
    categories = sorted({a["category_id"] for a in anns} | {r["category_id"] for r in reference})
    return {"images": [{"id": i, "width": w, "height": h} for i, w, h in images], "annotations": anns,
            "categories": [{"id": c} for c in categories]}
