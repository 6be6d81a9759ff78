"""Image loading and letterboxing with PIL and numpy, and the inverse box mapping."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import InputError


def load_image(path) -> Image.Image:
    path = Path(path)
    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except FileNotFoundError:
        raise InputError(f"image not found: {path}") from None
    except (UnidentifiedImageError, OSError) as e:
        raise InputError(f"cannot read image {path}: {e}") from None


@dataclass(frozen=True)
class Letterbox:
    """Where the resized image sits inside the square network input."""

    scale: float
    pad_x: int
    pad_y: int

    def to_image(self, boxes, width, height):
        """Map xyxy boxes from network-input pixels back to the original image."""
        out = boxes.copy()
        out[:, [0, 2]] = (out[:, [0, 2]] - self.pad_x) / self.scale
        out[:, [1, 3]] = (out[:, [1, 3]] - self.pad_y) / self.scale
        out[:, [0, 2]] = out[:, [0, 2]].clip(0, width)
        out[:, [1, 3]] = out[:, [1, 3]].clip(0, height)
        return out


def letterbox(image: Image.Image, size: int, preprocess: dict):
    """Resize keeping aspect ratio, pad to ``size`` x ``size``; returns (CHW float32, Letterbox)."""
    w, h = image.size
    scale = min(size / w, size / h)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    resized = np.asarray(image.resize((new_w, new_h), Image.BILINEAR), dtype=np.float32)
    canvas = np.full((size, size, 3), preprocess["pad_value"] / preprocess["scale"], dtype=np.float32)
    pad_x, pad_y = (size - new_w) // 2, (size - new_h) // 2
    canvas[pad_y: pad_y + new_h, pad_x: pad_x + new_w] = resized
    if preprocess.get("channels", "RGB") == "BGR":
        canvas = canvas[..., ::-1]
    chw = np.ascontiguousarray(canvas.transpose(2, 0, 1) * preprocess["scale"], dtype=np.float32)
    return chw, Letterbox(scale, pad_x, pad_y)
