import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from pipeline.errors import InputError, UnsupportedOpError
from pipeline.frontend import import_onnx, import_torch
from pipeline.models import load_model
from pipeline.models.onnx_export import export_onnx


class UsesLgamma(torch.nn.Module):
    def forward(self, x):
        return torch.lgamma(x.abs() + 1)


def test_unsupported_torch_op_is_named_with_the_model():
    with pytest.raises(UnsupportedOpError, match=r"my-detector: .*no converter for: lgamma"):
        import_torch(UsesLgamma(), torch.rand(1, 3, 8, 8), "my-detector")


def test_unsupported_onnx_op_is_named_with_the_model():
    node = helper.make_node("DeformConv", ["x", "w", "offset"], ["y"])
    graph = helper.make_graph([node], "g", [
        helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 1, 4, 4]) for n in ("x", "w", "offset")],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 4, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    with pytest.raises(UnsupportedOpError, match="user-net: .*DeformConv"):
        import_onnx(model, "user-net")


def test_missing_or_corrupt_onnx_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        import_onnx(tmp_path / "absent.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not protobuf \x00\xff")
    with pytest.raises(InputError, match="cannot read ONNX"):
        import_onnx(bad)


def test_onnx_import_compiles_and_matches_pytorch(tmp_path):
    import tvm
    from tvm import relax

    spec = load_model("yolov3-tiny", 128)
    path = export_onnx(spec, tmp_path / "y3t.onnx")
    mod = import_onnx(path, input_shape=(1, 3, 128, 128))
    vm = relax.VirtualMachine(tvm.compile(mod, tvm.target.Target({"kind": "llvm", "mcpu": "haswell"})), tvm.cpu())
    x = spec.example_input()
    got = vm["main"](tvm.runtime.tensor(x.numpy()))
    with torch.no_grad():
        want = spec.module(x)
    for g, w in zip(got, want):
        assert np.abs(g.numpy() - w.numpy()).max() < 1e-3
