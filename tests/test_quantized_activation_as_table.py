"""QuantizedActivationAsTable (+ LookupTablesElementwise, ScalarsAndTablesNotLayoutFree): a
quantized SiLU becomes one table lookup per element with ONNX Runtime's numbers,
arithmetic-only activations stay arithmetic, and in a tuning graph the lookups fuse into the conv
kernels with their tables left unpacked."""

import numpy as np
import pytest
import torch
from torch import nn

tvm = pytest.importorskip("tvm")

from tvm import tirx  # noqa: E402

from pipeline import targets  # noqa: E402
from pipeline.frontend import import_onnx  # noqa: E402
from pipeline.passes import lower_int8  # noqa: E402
from pipeline.passes.quantized_activation_as_table import LOOKUP_TABLE, quantized_activation_as_table  # noqa: E402
from pipeline.tuning.tasks import GraphForm, fuse_for_tuning  # noqa: E402

from .qdq import ort_run, output_step, quantized_onnx, tvm_run  # noqa: E402
from .test_per_tensor_qdq_as_arithmetic import calls  # noqa: E402

SHAPE = (1, 3, 16, 16)


def lookups(mod) -> list:
    return [gvar.name_hint for gvar, func in mod.functions_items()
            if isinstance(func, tirx.PrimFunc) and func.attrs and LOOKUP_TABLE in func.attrs]


def quantized(activation, tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), activation(), nn.Conv2d(16, 16, 3, padding=1), activation())
    path = quantized_onnx(model, SHAPE, tmp_path / "m.onnx")
    return path, lower_int8(import_onnx(path, "m", SHAPE))


def test_silu_becomes_a_lookup_with_onnx_runtimes_numbers(tmp_path):
    path, mod = quantized(nn.SiLU, tmp_path)
    assert len(calls(mod, "relax.sigmoid")) == 2
    tabled = quantized_activation_as_table(mod)
    assert calls(tabled, "relax.sigmoid") == []
    assert len(lookups(tabled)) == 1  # both layers' maps have one shape: one lookup kernel, two tables
    x = np.random.default_rng(1).random(SHAPE, dtype=np.float32)
    ours, arithmetic, ort = tvm_run(tabled, x), tvm_run(mod, x), ort_run(path, x)[0]
    step = output_step(path)
    np.testing.assert_allclose(ours, ort, atol=step * 1.01, rtol=0)
    np.testing.assert_allclose(ours, arithmetic, atol=step * 1.01, rtol=0)
    assert np.mean(ours == arithmetic) > 0.99  # one step apart only where float32 rounding ties differ


def test_activations_without_a_transcendental_stay_arithmetic(tmp_path):
    _, mod = quantized(lambda: nn.LeakyReLU(0.1), tmp_path)
    assert lookups(quantized_activation_as_table(mod)) == []


def test_lookups_fuse_into_the_conv_kernels(tmp_path):
    _, mod = quantized(nn.SiLU, tmp_path)
    target = tvm.target.Target(targets.target_json(targets.PRESETS["x86-avx2"]))
    fused = fuse_for_tuning(mod, target, GraphForm("NHWC", "avx2-8x4", 3))
    kernels = [gvar.name_hint for gvar, func in fused.functions_items() if isinstance(func, tirx.PrimFunc)]
    with_lookup = [name for name in kernels if "lookup" in name]
    assert len(with_lookup) == 2 and all("conv2d" in name for name in with_lookup)
    assert not any("sigmoid" in name for name in kernels)
    for name in with_lookup:  # a table read where the data says has no layout for the tuner to pack
        func = fused[name]
        tables = [i for i, p in enumerate(func.params) if [int(d) for d in p.ty.shape] == [256]]
        assert len(tables) == 1 and tables[0] not in [int(i) for i in func.attrs["layout_free_buffers"]]
