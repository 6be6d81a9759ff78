"""IntegerMaxPool2d: a max-pool between Q/DQ on one grid runs on the integers, exactly."""

import numpy as np
import pytest
import torch
from torch import nn

tvm = pytest.importorskip("tvm")

from pipeline.frontend import import_onnx  # noqa: E402
from pipeline.passes.integer_max_pool2d import integer_max_pool2d  # noqa: E402

from .qdq import ort_run, quantized_onnx, tvm_run  # noqa: E402

SHAPE = (1, 3, 16, 16)


def pool_dtypes(mod) -> list:
    found = []
    tvm.relax.analysis.post_order_visit(mod["main"], lambda e: isinstance(e, tvm.relax.Call) and isinstance(
        e.op, tvm.ir.Op) and e.op.name == "relax.nn.max_pool2d" and found.append(str(e.ty.dtype)))
    return found


def test_pools_run_on_uint8_with_the_same_output(tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.LeakyReLU(0.1), nn.MaxPool2d(2, 2),
                        nn.Conv2d(8, 8, 3, padding=1), nn.MaxPool2d(3, 1, padding=1), nn.Conv2d(8, 4, 1))
    path = quantized_onnx(net, SHAPE, tmp_path / "pools.onnx")
    mod = import_onnx(path, "pools", SHAPE)
    lowered = integer_max_pool2d(mod)
    assert pool_dtypes(mod) == ["float32", "float32"]
    assert pool_dtypes(lowered) == ["uint8", "uint8"]
    x = np.random.default_rng(2).random(SHAPE, dtype=np.float32)
    np.testing.assert_array_equal(tvm_run(lowered, x), ort_run(path, x)[0])
