"""The ARM path on the emulated aarch64 device (qemu-user + an arm64 Debian userland): aarch64
libraries give the x86 library's detections, and a real RPC tune survives its device dying.
Nothing here is an ARM timing: the emulated device's timings are emulated."""

import json
import os
import shutil
import subprocess
import threading
import time

import numpy as np
import pytest

from pipeline import assets
from pipeline.build import compile_model
from pipeline.errors import ArtifactError
from pipeline.remote import rpc
from pipeline.remote.emulator import emulated_aarch64
from pipeline.tuning.database import RECORD_FILE, database_dir

from .conftest import REPO

pytestmark = pytest.mark.skipif(shutil.which("aarch64-linux-gnu-gcc") is None or shutil.which("qemu-aarch64") is None,
                                reason="needs Debian's gcc-aarch64-linux-gnu, libc6-dev-arm64-cross, qemu-user")

SIZE = 160  # emulation runs arm64 code ~10x slower than native: small inputs keep CI short
PHOTOS = ("dog.jpg", "horses.jpg")


@pytest.fixture(scope="module")
def board():
    return emulated_aarch64()


def run_on_board(board, artifact, photos, heads):
    """``python -m pipeline.runtime`` inside the emulated arm64 userland: runtime-only TVM, numpy,
    PIL and our runtime package, nothing else (no torch there at all)."""
    proc = board.run(["-m", "pipeline.runtime", artifact.metadata_path, *photos, "--heads", heads],
                     capture_output=True, text=True, timeout=900,
                     env={**os.environ, "SLIMDET_DEVICE_PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [json.loads(line) for line in proc.stdout.splitlines()], np.load(heads)


def detections_and_heads_on_this_host(artifact, photos):
    from pipeline.runtime.predictor import Predictor
    from pipeline.runtime.preprocess import load_image

    predictor = Predictor(artifact.metadata_path)
    heads, lines = {}, []
    for i, path in enumerate(photos):
        image = load_image(path)
        x, _ = predictor.preprocess(image)
        heads.update({f"{i}_{k}": m for k, m in enumerate(predictor.run_library(x[None]))})
        lines.append([(d.label, round(d.score, 4), [round(v, 2) for v in d.box]) for d in predictor.predict(image)])
    return lines, heads


@pytest.mark.parametrize("model", ["yolov3-tiny", "yolov8n"])
def test_aarch64_library_on_the_emulated_board_matches_the_x86_library(board, tmp_path, model):
    photos = [assets.photo(name) for name in PHOTOS]
    arm = compile_model(model, "arm-aarch64", tmp_path, input_size=SIZE, tuned=False)
    x86 = compile_model(model, "x86", tmp_path, input_size=SIZE, tuned=False)
    assert arm.metadata["isa"] == "aarch64" and arm.library.read_bytes()[18] == 0xB7  # ELF e_machine: AArch64
    with pytest.raises(ArtifactError, match="aarch64 code.*this host is x86_64"):
        from pipeline.runtime.predictor import Predictor

        Predictor(arm.metadata_path)
    board_lines, board_heads = run_on_board(board, arm, photos, tmp_path / "heads.npz")
    host_lines, host_heads = detections_and_heads_on_this_host(x86, photos)
    assert sorted(board_heads.files) == sorted(host_heads)
    for key, expected in host_heads.items():
        np.testing.assert_allclose(board_heads[key], expected, atol=1e-3, rtol=0)
    board_dets = [[(d["label"], d["score"], d["box"]) for d in line["detections"]] for line in board_lines]
    assert [[d[0] for d in line] for line in board_dets] == [[d[0] for d in line] for line in host_lines]
    if model == "yolov3-tiny":  # yolov8n's weights are seeded random: it detects nothing, its heads still compare
        assert any(board_dets), "no detections at all: the comparison would prove nothing"
    for board_line, host_line in zip(board_dets, host_lines):
        for (_, s1, b1), (_, s2, b2) in zip(board_line, host_line):
            assert abs(s1 - s2) < 1e-3 and np.allclose(b1, b2, atol=0.5)


def test_rpc_tune_on_the_emulated_device_survives_its_death_resumes_and_compiles(board, tmp_path):
    """A real MetaSchedule tune over a loopback tracker, of the int8 digits model for the
    Raspberry Pi 5 (the emulated core has its dot product): the device is SIGKILLed once it has
    measured something; the tune stops and keeps those records; with the device back, the same
    tune resumes to its budget, and the records compile into an aarch64 library whose tuned conv
    is sdot code and whose head maps are the x86 int8 library's, bit for bit."""
    from pipeline.tuning.tune import tune

    root = tmp_path / "schedules"
    args = dict(model="yolov8-digits", variant="int8", target="arm-rpi5", trials=4, trials_per_iter=2,
                population=64, max_tasks=1, root=root)
    records = database_dir("arm-rpi5", "yolov8-digits", "int8", root) / RECORD_FILE
    tracker = rpc.start_tracker()
    try:
        device = rpc.start_device(tracker.address, "ci-board", emulate="aarch64")
        outcome = {}
        worker = threading.Thread(target=lambda: outcome.update(report=tune(
            rpc_tracker=tracker.address, rpc_key="ci-board", **args)))
        worker.start()
        deadline = time.monotonic() + 900
        while not (records.exists() and records.read_text().count("\n") >= 1) and worker.is_alive():
            assert time.monotonic() < deadline, "the emulated device measured nothing in 15 minutes"
            time.sleep(1)
        device.kill()
        worker.join(900)
        first = outcome["report"]
        assert first.device_lost and 1 <= first.trials_run < 4
        kept = records.read_text().count("\n")
        assert kept == first.trials_run  # measured trials kept; the unmeasured ones dropped

        with pytest.raises(rpc.RPCError, match="no device is registered under key 'ci-board'"):
            tune(rpc_tracker=tracker.address, rpc_key="ci-board", **args)

        device = rpc.start_device(tracker.address, "ci-board", emulate="aarch64")
        second = tune(rpc_tracker=tracker.address, rpc_key="ci-board", **args)
        device.stop()
    finally:
        tracker.stop()
    assert not second.device_lost and second.trials_before >= 1 and second.trials_before + second.trials_run == 4
    assert records.read_text().count("\n") > kept
    meta = json.loads((records.parent / "meta.json").read_text())
    assert meta["target"]["mtriple"] == "aarch64-linux-gnu" and "ci-board" in meta["measured_on"]

    arm = compile_model("yolov8-digits", "arm-rpi5", tmp_path / "arm", schedules_root=root, variant="int8")
    assert arm.metadata["tuning"]["tuned_tasks"] == 1 and arm.metadata["tuning"]["int8_kernel"] == "neon-sdot-4x4"
    disassembly = subprocess.run(["aarch64-linux-gnu-objdump", "-d", arm.library], capture_output=True, text=True)
    assert "sdot" in disassembly.stdout
    x86 = compile_model("yolov8-digits", "x86", tmp_path / "x86", variant="int8")
    photos = [assets.photo("dog.jpg")]
    _, board_heads = run_on_board(board, arm, photos, tmp_path / "tuned-heads.npz")
    _, host_heads = detections_and_heads_on_this_host(x86, photos)
    for key, expected in host_heads.items():
        np.testing.assert_array_equal(board_heads[key], expected)


def test_an_unreachable_tracker_and_a_board_target_without_one_are_clear_errors():
    from pipeline.tuning.measure import TuneTargetError
    from pipeline.tuning.tune import tune

    with pytest.raises(rpc.RPCError, match="no RPC tracker answers at 127.0.0.1:1"):
        tune("yolov3-tiny", "arm-rpi4", input_size=SIZE, trials=2, rpc_tracker="127.0.0.1:1", rpc_key="rpi4")
    with pytest.raises(TuneTargetError, match="arm-rpi4 code does not run on this x86_64 host.*--rpc-tracker"):
        tune("yolov3-tiny", "arm-rpi4", input_size=SIZE, trials=2)


# Runs a library's ``main`` on the board: argument arrays from an .npz, the last one written back.
RUN_KERNEL = """import sys, numpy as np, tvm
lib, saved = tvm.runtime.load_module(sys.argv[1]), np.load(sys.argv[2])
args = [tvm.runtime.tensor(saved[f"arr_{i}"]) for i in range(len(saved.files))]
lib["main"](*args)
np.save(sys.argv[3], args[-1].numpy())
"""


def test_dot_product_kernel_tensorizes_to_sdot_and_computes_exactly_on_the_emulated_board(board, tmp_path):
    """arm-rpi5's int8 kernel: every design space of a packed u8 x i8 conv tensorizes into sdot
    code, which runs on the emulated ARMv8.2 core and gives numpy's int32 sums exactly."""
    import tvm
    from tvm.support.cc import cross_compiler

    from pipeline import targets
    from pipeline.tuning.tasks import LATEST_INT8_REVISION, GraphForm

    from .test_int8_dot import integer_conv_case, postprocessed_spaces

    preset = targets.PRESETS["arm-rpi5"]
    mod, args_for, want = integer_conv_case(preset.int8_kernel)
    form = GraphForm(preset.conv_layout, preset.int8_kernel, LATEST_INT8_REVISION)
    task, spaces = postprocessed_spaces(mod, form, targets.target_json(preset))
    assert "u8i8_packed" in task.task_name and spaces
    np.savez(tmp_path / "args.npz", *args_for(task.dispatched[0]["main"].params))
    for i, sch in enumerate(spaces):
        assert "tensorize(" in str(sch.trace)
        lib = tvm.compile(sch.mod, target=tvm.target.Target(targets.target_json(preset)))
        assert lib.mod.inspect_source("asm").count("sdot") > 0
        lib.export_library(str(tmp_path / f"space{i}.so"), fcompile=cross_compiler(preset.cross_compiler))
        proc = board.run(["-c", RUN_KERNEL, tmp_path / f"space{i}.so", tmp_path / "args.npz", tmp_path / f"out{i}.npy"],
                         capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        np.testing.assert_array_equal(np.load(tmp_path / f"out{i}.npy"), want)
