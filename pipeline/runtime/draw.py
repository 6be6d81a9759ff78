"""Draw detections onto an image and save it as PNG."""

from PIL import Image, ImageDraw

from ..fsutil import atomic_write_via

PALETTE = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
           (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 190)]


def draw_detections(image: Image.Image, detections) -> Image.Image:
    canvas = image.convert("RGB").copy()
    pen = ImageDraw.Draw(canvas)
    width = max(2, round(max(canvas.size) / 300))
    for det in detections:
        color = PALETTE[det.class_id % len(PALETTE)]
        pen.rectangle(det.box, outline=color, width=width)
        text = f"{det.label} {det.score:.2f}"
        x, y = det.box[0], max(0, det.box[1] - 12)
        tw = pen.textlength(text)
        pen.rectangle((x, y, x + tw + 4, y + 12), fill=color)
        pen.text((x + 2, y), text, fill=(0, 0, 0))
    return canvas


def save_png(image: Image.Image, path):
    return atomic_write_via(path, lambda tmp: image.save(tmp, format="PNG"))
