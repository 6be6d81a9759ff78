"""The digits detection dataset: exact boxes, determinism, disjoint splits."""

import numpy as np
import pytest

from pipeline.data import digits


def test_a_pasted_digit_box_is_the_tight_bound_of_its_strokes():
    glyphs, _ = digits.mnist_digits()
    rng = np.random.default_rng(3)
    for k in range(20):
        canvas = np.full((160, 160, 3), 128.0, np.float32)
        box = digits.paste_digit(rng, canvas, glyphs[k], [])
        assert box is not None
        change = np.abs(canvas - 128.0).sum(-1)
        # change = alpha * |colour - background|, and a resized MNIST glyph peaks above alpha 0.84:
        # a pixel changed by more than 0.3 * the peak change has alpha > MASK_THRESHOLD, so is a stroke.
        rows, cols = np.nonzero(change > 0.3 * change.max())
        x1, y1, x2, y2 = box
        assert rows.min() >= y1 and rows.max() < y2 and cols.min() >= x1 and cols.max() < x2
        strong = change > 0
        assert strong[y1, x1:x2].any() and strong[y2 - 1, x1:x2].any()
        assert strong[y1:y2, x1].any() and strong[y1:y2, x2 - 1].any()


def test_digits_never_overlap_and_labels_are_digit_classes():
    for i in range(10):
        s = digits.make_sample("train", i, size=256)
        assert s.image.shape == (256, 256, 3) and s.image.dtype == np.uint8
        assert len(s.boxes) == len(s.labels) >= 1 and set(s.labels.tolist()) <= set(range(10))
        b = s.boxes
        for a in range(len(b)):
            for c in range(a + 1, len(b)):
                assert b[a][2] <= b[c][0] or b[c][2] <= b[a][0] or b[a][3] <= b[c][1] or b[c][3] <= b[a][1]


def test_samples_are_deterministic_by_seed_and_split():
    a, b = digits.make_sample("val", 7), digits.make_sample("val", 7)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.boxes, b.boxes)
    assert not np.array_equal(a.image, digits.make_sample("test", 7).image)
    assert not np.array_equal(a.image, digits.make_sample("val", 7, seed=1).image)


def test_test_digits_are_strokes_the_train_split_never_uses():
    train, val, test = (set(digits.split_digit_indices(s).tolist()) for s in ("train", "val", "test"))
    assert not train & test and not val & test and not train & val
    _, labels = digits.mnist_digits()
    assert np.bincount(labels[sorted(test)], minlength=10).tolist() == [50] * 10


def test_coco_ground_truth_has_xywh_boxes():
    samples = [digits.make_sample("test", i, size=128) for i in range(3)]
    gt = digits.coco_ground_truth(samples, 128)
    assert [im["id"] for im in gt["images"]] == [1, 2, 3]
    ann = gt["annotations"][0]
    x1, y1, x2, y2 = samples[0].boxes[0]
    assert ann["bbox"] == pytest.approx([x1, y1, x2 - x1, y2 - y1]) and ann["image_id"] == 1


def test_unknown_split_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        digits.make_sample("dev", 0)
