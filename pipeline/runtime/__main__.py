"""Run an exported library on images, on the device itself: TVM runtime, numpy and PIL only.

    python -m pipeline.runtime model.json photo.jpg [photo2.jpg ...] [--heads heads.npz]

Prints one JSON line of detections per image; ``--heads`` also saves each image's raw head maps
(``<image index>_<head index>``), which is how the x86 and the aarch64 libraries are compared.
"""

import argparse
import json
import sys

import numpy as np

from ..errors import exit_status
from .predictor import Predictor
from .preprocess import load_image


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.runtime", description=__doc__.splitlines()[0])
    parser.add_argument("artifact", help="the library's metadata .json")
    parser.add_argument("images", nargs="+")
    parser.add_argument("--conf", type=float, default=0.25)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--heads", help="save raw head maps to this .npz")
    return exit_status(_detect, parser.parse_args(argv), "python -m pipeline.runtime")


def _detect(args):
    predictor = Predictor(args.artifact, conf_threshold=args.conf, threads=args.threads)
    heads = {}
    for i, path in enumerate(args.images):
        image = load_image(path)
        detections = predictor.predict(image)
        if args.heads:
            x, _ = predictor.preprocess(image)
            heads.update({f"{i}_{k}": m for k, m in enumerate(predictor.run_library(x[None]))})
        print(json.dumps({"image": path, "detections": [
            {"box": [round(v, 2) for v in d.box], "score": round(d.score, 4), "label": d.label} for d in detections]}))
    if args.heads:
        np.savez(args.heads, **heads)


if __name__ == "__main__":
    sys.exit(main())
