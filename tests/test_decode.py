import numpy as np
from PIL import Image

from pipeline.runtime.decode import decode_anchors, decode_dfl, detect, nms
from pipeline.runtime.preprocess import letterbox


def test_nms_keeps_best_of_overlapping_boxes_and_separate_ones():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], np.float32)
    scores = np.array([0.9, 0.8, 0.7], np.float32)
    assert nms(boxes, scores, 0.5).tolist() == [0, 2]


def test_detect_is_class_aware():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11]], np.float32)
    scores = np.array([[0.9, 0.0], [0.0, 0.8]], np.float32)  # same place, different classes
    xyxy, conf, cls = detect(boxes, scores, 0.25, 0.45)
    assert sorted(cls.tolist()) == [0, 1] and len(conf) == 2


def test_dfl_decoding_of_a_hand_made_map():
    reg_max, h, w = 4, 2, 2
    fmap = np.full((4 * reg_max + 1, h, w), -30.0, np.float32)
    # Cell (0, 0): all four distances concentrated on bin 2 -> box centre 0.5 +- 2 cells.
    for side in range(4):
        fmap[side * reg_max + 2, 0, 0] = 30.0
    fmap[4 * reg_max, 0, 0] = 10.0  # confident class logit
    boxes, scores = decode_dfl([fmap], input_size=16, reg_max=reg_max)  # stride 8
    np.testing.assert_allclose(boxes[0], [(0.5 - 2) * 8, (0.5 - 2) * 8, (0.5 + 2) * 8, (0.5 + 2) * 8], atol=1e-4)
    assert scores[0, 0] > 0.99 and scores[1, 0] < 1e-6


def test_anchor_decoding_of_a_hand_made_map():
    fmap = np.zeros((1 * (5 + 1), 1, 1), np.float32)  # one anchor, one class, 1x1 grid
    boxes, scores = decode_anchors([fmap], input_size=32, anchors=[[[10, 20]]])
    np.testing.assert_allclose(boxes[0], [16 - 5, 16 - 10, 16 + 5, 16 + 10], atol=1e-5)
    np.testing.assert_allclose(scores[0, 0], 0.25, atol=1e-6)


def test_letterbox_round_trip_maps_boxes_back_to_the_image():
    image = Image.new("RGB", (200, 100))
    x, lb = letterbox(image, 64, {"pad_value": 0.5, "scale": 1 / 255.0})
    assert x.shape == (3, 64, 64) and lb.pad_y == 16 and lb.pad_x == 0
    assert abs(float(x[0, 0, 0]) - 0.5) < 1e-6  # padding carries the model's pad value
    back = lb.to_image(np.array([[0, 16, 64, 48]], np.float32), 200, 100)
    np.testing.assert_allclose(back[0], [0, 0, 200, 100], atol=1e-4)
