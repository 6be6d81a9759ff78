"""Static int8 post-training quantization into a Q/DQ ONNX model, calibrated on real images.

ONNX Runtime's ``quantize_static`` in QDQ format (QOperator ops such as QLinearConv do not import
into Relax): weights int8, symmetric, per output channel; activations uint8, asymmetric, per
tensor, their ranges calibrated by min-max, percentile or entropy over real images preprocessed
exactly as at deployment. The quantized graph holds only the network up to the raw head maps: box
decoding stays outside in float (inside one int8 graph, coordinates concatenated with
probabilities share one scale, and fidelity collapsed from 0.96 to 0.09 in an experiment).

``reduce_range`` keeps weights in 7 bits: x86 without VNNI multiplies u8 x i8 pairs with
``vpmaddubsw``, whose 16-bit sums saturate for 8-bit weights (2 x 255 x 127 > 32767).

The result is a variant: ``<model>-<variant>.onnx`` beside the pruned variants' weights, with how
it was made in the file's metadata; its name is the base variant's plus ``-int8``.
"""

import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError

INT8_SUFFIX = "int8"
CALIBRATION_METHODS = ("minmax", "percentile", "entropy")


@dataclass
class QuantizeReport:
    variant: str
    base_variant: str
    method: str
    calibration: str  # what the calibration images were
    images: int
    reduce_range: bool
    seconds: float
    file_mb: float
    quantized_convs: int
    convs: int


def int8_variant(base_variant: str) -> str:
    return INT8_SUFFIX if base_variant == "fp32" else f"{base_variant}-{INT8_SUFFIX}"


def base_of(variant: str):
    """The variant an int8 variant was quantized from, or None if ``variant`` is not int8."""
    if variant == INT8_SUFFIX:
        return "fp32"
    if variant.endswith(f"-{INT8_SUFFIX}"):
        return variant[: -len(INT8_SUFFIX) - 1]
    return None


class _Reader:
    """ONNX Runtime's calibration data reader over preprocessed images, with progress."""

    def __init__(self, input_name: str, images: list, stream):
        self.input_name, self.images, self.stream, self.done = input_name, images, stream, 0

    def get_next(self):
        if self.done == len(self.images):
            return None
        self.done += 1
        if self.done % 8 == 0 or self.done == len(self.images):
            print(f"[quantize] calibration {self.done}/{len(self.images)} images", file=self.stream, flush=True)
        return {self.input_name: self.images[self.done - 1][None]}


def calibration_images(spec, pil_images: list) -> list:
    """CHW float32 arrays, letterboxed with the model's deployment preprocessing."""
    from ..runtime.preprocess import letterbox

    return [letterbox(image, spec.input_size, spec.preprocess)[0] for image in pil_images]


def _photo_calibration(spec, count: int):
    from ..eval.evaluate import photo_paths, real_photo_set

    photos = len(photo_paths("skimage"))
    images = real_photo_set(crops_per_photo=max(0, -(-count // photos) - 1), photos="skimage")[:count]
    return images, "scikit-image photos and seeded crops (the darknet photos held out for fidelity)"


def _digits_calibration(spec, count: int):
    from PIL import Image

    from ..data import digits

    return ([Image.fromarray(digits.make_sample("train", i, spec.input_size).image) for i in range(count)],
            "digits train split")


# Where each model's calibration images come from when the user gives none: its own training
# data where it has some, else real photos.
CALIBRATION = {"yolov8-digits": _digits_calibration}


def default_calibration(spec, count: int) -> tuple:
    """(PIL images, description) to calibrate ``spec`` on."""
    return CALIBRATION.get(spec.name, _photo_calibration)(spec, count)


def _export_float(spec, path: Path) -> None:
    """The float graph ONNX Runtime quantizes: batch dimension symbolic, shapes inferred."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from ..models.onnx_export import export_onnx

    raw = export_onnx(spec, path.with_suffix(".raw.onnx"), dynamic_batch=True)
    # Symbolic shape inference cannot follow the batch through Resize; ONNX shape inference does.
    quant_pre_process(str(raw), str(path), skip_symbolic_shape=True)


def _count_convs(model) -> tuple:
    """(convs with both data and weights dequantized from integers, all convs) of a Q/DQ model."""
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    produced_by_dq = {o for n in model.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    return sum(1 for n in convs if n.input[0] in produced_by_dq and n.input[1] in produced_by_dq), len(convs)


def quantize(spec, images: list, out_path: Path, method: str = "minmax", reduce_range: bool = True,
             calibration: str = "", stream=sys.stderr) -> QuantizeReport:
    """Quantize ``spec``'s network, calibrated on ``images`` (PIL), into the Q/DQ ONNX ``out_path``."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    from ..fsutil import atomic_write_via

    methods = dict(zip(CALIBRATION_METHODS, (CalibrationMethod.MinMax, CalibrationMethod.Percentile,
                                             CalibrationMethod.Entropy)))
    if method not in methods:
        raise InputError(f"unknown calibration method {method!r}; known: {', '.join(CALIBRATION_METHODS)}")
    if not images:
        raise InputError("quantization needs at least one calibration image")
    start = time.perf_counter()
    variant = int8_variant(spec.variant)
    with tempfile.TemporaryDirectory(prefix="slimdet-quantize-") as tmp:
        float_path = Path(tmp) / "float.onnx"
        _export_float(spec, float_path)
        reader = _Reader("images", calibration_images(spec, images), stream)
        counted = []  # (quantized convs, convs) of the model as written

        def write(tmp_out):
            quantize_static(str(float_path), tmp_out, reader, quant_format=QuantFormat.QDQ, per_channel=True,
                            reduce_range=reduce_range, activation_type=QuantType.QUInt8,
                            weight_type=QuantType.QInt8, calibrate_method=methods[method],
                            extra_options={"CalibTensorRangeSymmetric": False})
            model = onnx.load(tmp_out)
            info = {"base": spec.name, "variant": variant, "base_variant": spec.variant,
                    "input_size": spec.input_size, "method": method, "reduce_range": reduce_range,
                    "calibration": f"{len(images)} images: {calibration}"}
            onnx.helper.set_model_props(model, {"slimdet": json.dumps(info)})
            onnx.save(model, tmp_out)
            counted.extend(_count_convs(model))

        atomic_write_via(out_path, write)
    quantized, convs = counted
    return QuantizeReport(variant=variant, base_variant=spec.variant, method=method, calibration=calibration,
                          images=len(images), reduce_range=reduce_range,
                          seconds=round(time.perf_counter() - start, 1),
                          file_mb=round(out_path.stat().st_size / 2**20, 2), quantized_convs=quantized,
                          convs=convs)


def read_info(path: Path) -> dict:
    """How a Q/DQ variant file was made (its ``slimdet`` metadata); errors name the file."""
    import onnx

    from ..errors import CheckpointError

    try:
        model = onnx.load(str(path), load_external_data=False)
    except FileNotFoundError:
        raise CheckpointError(f"no int8 model at {path}") from None
    except Exception as e:
        raise CheckpointError(f"corrupt int8 model {path}: {type(e).__name__}: {str(e)[:200]}") from None
    props = {p.key: p.value for p in model.metadata_props}
    if "slimdet" not in props:
        raise CheckpointError(f"{path} was not made by `slimdet quantize` (no slimdet metadata)")
    return json.loads(props["slimdet"])
