"""WinogradConv2d: fp32 3x3 stride-1 NHWC convs as F(4x4, 3x3) compute what the direct convs do."""

import numpy as np
import pytest
import torch
from torch import nn

tvm = pytest.importorskip("tvm")

from tvm import relax  # noqa: E402

from pipeline.frontend import import_torch  # noqa: E402
from pipeline.passes.winograd_conv2d import transform_kernel, transform_matrices, winograd_conv2d  # noqa: E402

from .test_integer_conv2d import conv_dtypes  # noqa: E402


SHAPE = (1, 5, 18, 18)


def convs():
    """3x3 stride-1 convs (padded, unpadded: 16 outputs, not a whole number of 4x4 tiles) that
    rewrite; a strided, a 1x1 and a grouped one that do not."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(5, 16, 3, padding=1), nn.SiLU(),
        nn.Conv2d(16, 24, 3), nn.SiLU(),
        nn.Conv2d(24, 16, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(16, 8, 1),
        nn.Conv2d(8, 8, 3, padding=1, groups=2),
    ).eval()


def nhwc(module):
    mod = import_torch(module, torch.rand(SHAPE), "convs")
    return relax.transform.ConvertLayout({"relax.nn.conv2d": ["NHWC", "OHWI"]})(mod)


def run(mod, x):
    vm = relax.VirtualMachine(tvm.compile(mod, target=tvm.target.Target({"kind": "llvm"})), tvm.cpu())
    return vm["main"](tvm.runtime.tensor(x))[0].numpy()  # imported torch modules return a tuple


def test_transforms_invert_a_one_dimensional_convolution():
    """A^T [(G g) * (B^T d)] is the valid correlation of d with g: the matrices are Winograd's."""
    a, b, g = transform_matrices(4)
    rng = np.random.default_rng(0)
    d, k = rng.standard_normal(6), rng.standard_normal(3)
    assert np.allclose(a.T @ ((g @ k) * (b.T @ d)), np.correlate(d, k, "valid"))
    assert transform_kernel(rng.standard_normal((2, 3, 3, 5)).astype(np.float32), 4).shape == (6, 6, 2, 5)


def test_winograd_convs_compute_what_the_direct_convs_do():
    before = nhwc(convs())
    after = winograd_conv2d()(before)
    assert len(conv_dtypes(before)) - len(conv_dtypes(after)) == 2
    assert len([g for g, _ in after.functions_items() if "winograd" in g.name_hint]) == 2
    x = np.random.default_rng(1).random(SHAPE, dtype=np.float32)
    want, got = run(before, x), run(after, x)
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()
