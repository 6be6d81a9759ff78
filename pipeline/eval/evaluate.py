"""Stage 7 for accuracy: mAP of any engine through the same pre/post-processing.

Two measures:
- true mAP on the labelled digits test split (models trained on it);
- fidelity mAP on real photos, for models with no labels on our data (yolov3-tiny on COCO
  classes): the fp32 PyTorch detections at conf >= 0.25 are the ground truth, and a variant's
  detections are scored against them. 1.0 means the variant finds what fp32 PyTorch finds.
"""

import sys

from PIL import Image

from ..errors import InputError
from ..runtime.predictor import Detector
from .coco import coco_map, reference_ground_truth, to_coco_results

# mAP is computed over the whole score range; the deployment threshold would truncate the curve.
EVAL_CONF = 0.001
EVAL_IOU = 0.6


def detector_for(spec, run, conf_threshold=EVAL_CONF, iou_threshold=EVAL_IOU) -> Detector:
    """A Detector for ``spec``'s pre/post-processing around any engine's ``run``."""
    return Detector(run, spec.input_size, spec.preprocess, spec.decoder, spec.classes, conf_threshold, iou_threshold)


def detect_all(detector: Detector, images: list, progress: str = "") -> list:
    """COCO results for ``images`` (PIL images; image ids 1..N)."""
    results = []
    for i, image in enumerate(images, start=1):
        results += to_coco_results(i, detector.predict(image))
        if progress and (i % 50 == 0 or i == len(images)):
            print(f"[eval] {progress}: {i}/{len(images)} images", file=sys.stderr, flush=True)
    return results


def labelled_map(detector: Detector, samples, ground_truth: dict, progress: str = "") -> dict:
    images = [Image.fromarray(s.image) for s in samples]
    return coco_map(ground_truth, detect_all(detector, images, progress))


def fidelity_map(reference: Detector, variant: Detector, images: list, progress: str = "") -> dict:
    """mAP of ``variant`` against ``reference``'s confident detections on ``images``."""
    ref = detect_all(reference, images, f"{progress} reference" if progress else "")
    gt = reference_ground_truth([(i, im.size[0], im.size[1]) for i, im in enumerate(images, start=1)], ref)
    if not gt["annotations"]:
        raise ValueError("the reference found nothing at conf >= 0.25 on these images: fidelity is undefined")
    return coco_map(gt, detect_all(variant, images, progress))


def photo_paths(photos: str = "all") -> list:
    """``all`` the real photos, or one bundle: ``darknet`` (held out from distillation) or ``skimage``."""
    from .. import assets

    bundles = {"darknet": assets.DARKNET_PHOTOS, "skimage": assets.SKIMAGE_PHOTOS}
    if photos == "all":
        return sorted(assets.all_photos())
    if photos not in bundles:
        raise InputError(f"unknown photo set {photos!r}; known: all, {', '.join(bundles)}")
    return sorted(bundles[photos].paths().values())


def real_photo_set(crops_per_photo: int = 2, seed: int = 0, photos: str = "all") -> list:
    """The real photos, each whole and as ``crops_per_photo`` seeded crops (half to full side):
    more object scales and positions than 18 photos alone give."""
    import numpy as np

    from ..runtime.preprocess import load_image

    rng = np.random.default_rng(seed)
    images = []
    for path in photo_paths(photos):
        image = load_image(path)
        images.append(image)
        w, h = image.size
        for _ in range(crops_per_photo):
            cw, ch = int(w * rng.uniform(0.5, 1.0)), int(h * rng.uniform(0.5, 1.0))
            x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            images.append(image.crop((x, y, x + cw, y + ch)))
    return images


def fidelity_report(model: str, target: str = "x86", engines=("tvm", "onnxruntime"), input_size=None,
                    workdir=None, variant: str = "fp32", photos: str = "all") -> dict:
    """Fidelity mAP of each engine running ``variant`` against fp32 eager PyTorch running the
    model as built, on the real photos."""
    import tempfile
    from pathlib import Path

    from ..bench.harness import make_engines
    from ..models import load_model

    base, spec = load_model(model, input_size), load_model(model, input_size, variant)
    workdir = Path(workdir or tempfile.mkdtemp(prefix="slimdet-eval-"))
    built, unavailable, _ = make_engines(spec, workdir / variant, 1, target, engines)
    fp32, _, _ = make_engines(base, workdir / "fp32", 1, target, ("pytorch-eager",))
    if unavailable:
        raise RuntimeError(f"engines unavailable: {unavailable}")
    images = real_photo_set(photos=photos)
    reference = detector_for(base, fp32["pytorch-eager"])
    scores = {name: fidelity_map(reference, detector_for(spec, built[name]), images, progress=name)
              for name in engines}
    return {"model": spec.name, "variant": variant, "weights": spec.weights, "input_size": spec.input_size,
            "photos": photos, "images": len(images), "reference": "pytorch-eager fp32 (unpruned)",
            "fidelity": scores}


# Models trained on our labelled data get true mAP on its held-out test split; others fidelity.
LABELLED_TEST_SETS = {"yolov8-digits": "digits"}


def labelled_report(model: str, target: str = "x86", engines=("pytorch-eager", "tvm", "onnxruntime"),
                    test_images: int = 500, input_size=None, workdir=None, variant: str = "fp32") -> dict:
    """True mAP of each engine on the digits test split, through the same pre/post-processing."""
    import tempfile
    from pathlib import Path

    from ..bench.harness import make_engines
    from ..data import digits
    from ..models import load_model

    spec = load_model(model, input_size, variant)
    workdir = Path(workdir or tempfile.mkdtemp(prefix="slimdet-eval-"))
    built, unavailable, _ = make_engines(spec, workdir, 1, target, engines)
    if unavailable:
        raise RuntimeError(f"engines unavailable: {unavailable}")
    samples = [digits.make_sample("test", i, spec.input_size) for i in range(test_images)]
    gt = digits.coco_ground_truth(samples, spec.input_size)
    scores = {name: labelled_map(detector_for(spec, built[name]), samples, gt, progress=name) for name in engines}
    return {"model": spec.name, "variant": variant, "weights": spec.weights, "input_size": spec.input_size,
            "images": len(samples), "data": "digits test split (seed 0)", "map": scores}
