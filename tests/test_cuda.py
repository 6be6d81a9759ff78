"""CUDA libraries built ahead of time on this GPU-less machine: real sm_90 machine code inside,
the arch in the metadata, and a clear refusal to run where that GPU is absent."""

import json
import struct

import pytest

from pipeline import targets
from pipeline.build import compile_model
from pipeline.cuda import check_device_code, fatbin_entries
from pipeline.errors import ArtifactError, BuildError


def fatbin(*entries) -> bytes:
    """A fatbin as nvcc lays it out: header, then per entry a 64-byte header and its payload."""
    body = b""
    for kind, arch, payload in entries:
        header = struct.pack("<HHIQ", kind, 0x0101, 64, len(payload)) + bytes(12) + struct.pack("<I", arch)
        body += header.ljust(64, b"\0") + payload
    return struct.pack("<IHHQ", 0xBA55ED50, 1, 16, len(body)) + body


def test_fatbin_reader_lists_every_entry_of_every_fatbin(tmp_path):
    blob = (b"host code" + fatbin((2, 90, b"\x7fELF" + bytes(60)), (1, 90, b".version 8.0\0"))
            + b"more host code" + fatbin((2, 86, b"\x7fELF" + bytes(28))))
    (tmp_path / "lib.so").write_bytes(blob)
    assert fatbin_entries(tmp_path / "lib.so") == [("elf", "sm_90"), ("ptx", "sm_90"), ("elf", "sm_86")]
    check_device_code(tmp_path / "lib.so", "sm_86")
    with pytest.raises(BuildError, match="no compiled sm_75 code .*elf sm_90, ptx sm_90, elf sm_86"):
        check_device_code(tmp_path / "lib.so", "sm_75")
    (tmp_path / "source.so").write_bytes(b"extern \"C\" __global__ void conv(float* x) {}")
    with pytest.raises(BuildError, match="no fatbin at all"):
        check_device_code(tmp_path / "source.so", "sm_90")


def test_cuda_presets_are_valid_targets_without_cpu_core_counts():
    import tvm

    cuda = [p for p in targets.PRESETS.values() if p.device == "cuda"]
    assert {p.name for p in cuda} >= {"cuda-sm75", "cuda-sm86", "cuda-sm87", "cuda-sm89", "cuda-sm90"}
    for preset in cuda:
        tjson = targets.target_json(preset)
        assert "num-cores" not in tjson and tjson["arch"] == preset.gpu_arch
        assert str(tvm.target.Target(tjson).kind) == "cuda"
    assert targets.PRESETS["cuda-sm87"].target["host"]["mtriple"] == "aarch64-linux-gnu"  # Jetson hosts are ARM


@pytest.fixture(scope="module", params=["yolov3-tiny", "yolov8n"])
def sm90_artifact(request, tmp_path_factory):
    """Each default model built once for sm_90 (about half a minute each), shared by the tests below."""
    return compile_model(request.param, "cuda-sm90", tmp_path_factory.mktemp(request.param), input_size=320,
                         tuned=False)


def test_cuda_library_carries_sm90_machine_code_and_names_its_arch(sm90_artifact):
    meta = json.loads(sm90_artifact.metadata_path.read_text())
    assert meta["device"] == "cuda" and meta["gpu_arch"] == "sm_90" and meta["target"]["arch"] == "sm_90"
    entries = fatbin_entries(sm90_artifact.library)
    assert ("elf", "sm_90") in entries and all(arch == "sm_90" for _, arch in entries)
    assert b"__global__" not in sm90_artifact.library.read_bytes()  # no CUDA source left for the deploy host


def test_a_cuda_library_refuses_to_run_without_its_gpu(sm90_artifact):
    from pipeline.runtime.predictor import Predictor

    with pytest.raises(ArtifactError, match="CUDA library for sm_90; this host has no CUDA GPU"):
        Predictor(sm90_artifact.metadata_path)


def small_conv_module():
    """Conv + leaky ReLU + max-pool: the op kinds the detectors are made of, small enough to tune."""
    import torch

    from pipeline.frontend import import_torch

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.LeakyReLU(0.1), torch.nn.MaxPool2d(2))
    return import_torch(net.eval(), torch.rand(1, 3, 32, 32), "small-conv")


def test_metaschedule_can_tune_for_every_cuda_preset():
    """MetaSchedule's GPU rules refuse a target without thread-block limits (AutoBind: "missing
    attribute max_threads_per_block"); found on the H100, where no tune could start."""
    import tvm

    from pipeline.tuning.tasks import extract_tasks
    from pipeline.tuning.tune import tune_contexts

    mod = small_conv_module()
    for preset in (p for p in targets.PRESETS.values() if p.device == "cuda"):
        tasks = extract_tasks(mod, tvm.target.Target(targets.target_json(preset)))
        contexts = tune_contexts(tasks, seed=0)
        assert all(ctx.generate_design_space() for ctx in contexts), preset.name


def test_tuning_a_gpu_preset_needs_its_gpu_or_a_tracker():
    from pipeline.tuning.measure import TuneTargetError, measurement

    with pytest.raises(TuneTargetError, match="cuda-sm90 code does not run on this .* --rpc-tracker"):
        with measurement(targets.PRESETS["cuda-sm90"]):
            pass


def test_functions_without_records_get_gpu_default_schedules_and_cuda_graphs_build(tmp_path):
    """Compiling with a database that covers nothing: every kernel falls back to dlight's schedules
    (unbound GPU loops do not build at all), with Relax CUDA graphs on."""
    import tvm
    from tvm.s_tir import meta_schedule as ms

    from pipeline.cuda import nvcc_build
    from pipeline.tuning.tasks import compile_with_database

    target = tvm.target.Target(targets.target_json(targets.PRESETS["cuda-sm90"]))
    with nvcc_build(target):
        executable = compile_with_database(small_conv_module(), target, ms.database.MemoryDatabase(),
                                           pass_config={"relax.backend.use_cuda_graph": True})
    executable.export_library(tmp_path / "small.so")
    check_device_code(tmp_path / "small.so", "sm_90")
