"""Small Q/DQ ONNX models made by ONNX Runtime's static quantizer: the int8 passes' test inputs."""

import numpy as np
import torch


def quantized_onnx(module: torch.nn.Module, shape, path, reduce_range=True, calibration_batches=4):
    """``module`` exported to ONNX and quantized statically (QDQ, per-channel int8 weights, uint8
    activations) on seeded random calibration inputs; returns the path."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    float_path = path.with_suffix(".float.onnx")
    torch.onnx.export(module.eval(), (torch.rand(shape),), str(float_path), dynamo=False, opset_version=17,
                      input_names=["x"], output_names=["y"])
    rng = np.random.default_rng(0)
    batches = iter([{"x": rng.random(shape, dtype=np.float32)} for _ in range(calibration_batches)])

    class Reader:
        def get_next(self):
            return next(batches, None)

    quantize_static(str(float_path), str(path), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    reduce_range=reduce_range, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return path


def ort_run(path, x, input_name: str = "x") -> list:
    """Every output of ONNX Runtime running the Q/DQ model at ``path`` on ``x``."""
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {input_name: x})


def tvm_run(mod, x):
    import tvm
    from tvm import relax

    vm = relax.VirtualMachine(tvm.compile(mod, target=tvm.target.Target({"kind": "llvm"})), tvm.cpu())
    return vm["main"](tvm.runtime.tensor(x)).numpy()


def output_step(path) -> float:
    """The quantization step of the model's output: the tolerance of an integer rewrite."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    last_dq = [n for n in model.graph.node if n.op_type == "DequantizeLinear" and "y" in n.output]
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    return float(inits[last_dq[0].input[1]]) if last_dq else 0.0
