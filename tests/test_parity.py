"""TVM head outputs vs PyTorch, within 1e-3 max abs, in memory and from the exported .so."""

import numpy as np
import pytest
import torch

from pipeline import build

from .conftest import run_deployed


def _torch_outputs(spec, x):
    with torch.no_grad():
        return [o.numpy() for o in spec.module(torch.from_numpy(x))]


def _in_memory(compiled, x):
    import tvm
    from tvm import relax

    vm = relax.VirtualMachine(compiled.executable, tvm.cpu())
    return [o.numpy() for o in vm["main"](tvm.runtime.tensor(x))]


@pytest.mark.parametrize("fixture", ["yolov3_tiny_compiled", "yolov8n_compiled"])
def test_in_memory_module_matches_pytorch(fixture, request):
    compiled = request.getfixturevalue(fixture)
    x = np.random.default_rng(1).random(compiled.input_shape, dtype=np.float32)
    got, want = _in_memory(compiled, x), _torch_outputs(compiled.spec, x)
    assert [g.shape for g in got] == [w.shape for w in want]
    for g, w in zip(got, want):
        assert np.abs(g - w).max() < 1e-3


@pytest.mark.parametrize("fixture", ["yolov3_tiny_compiled", "yolov8n_compiled"])
def test_exported_library_in_a_fresh_process_matches_pytorch(fixture, request, tmp_path):
    compiled = request.getfixturevalue(fixture)
    artifact = build.export(compiled, tmp_path)
    x = np.random.default_rng(2).random(compiled.input_shape, dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    code = (
        "import numpy as np\n"
        "from pipeline.runtime import Predictor\n"
        "p = Predictor(sys.argv[1])\n"
        "outs = p.run(np.load(sys.argv[2]))\n"
        "np.savez(sys.argv[3], *outs)\n")
    proc = run_deployed(code, artifact.metadata_path, tmp_path / "x.npy", tmp_path / "y.npz")
    assert proc.returncode == 0, proc.stderr
    got = np.load(tmp_path / "y.npz")
    want = _torch_outputs(compiled.spec, x)
    for i, w in enumerate(want):
        assert np.abs(got[f"arr_{i}"] - w).max() < 1e-3
