import pytest

from pipeline import targets
from pipeline.errors import UnknownTargetError


@pytest.mark.parametrize("flags, expected", [
    ({"avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni"}, "x86-avx512-vnni"),
    ({"avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq"}, "x86-avx512"),
    ({"avx2", "fma"}, "x86-avx2"),
])
def test_x86_alias_resolves_to_widest_preset_the_host_has(flags, expected):
    assert targets.resolve_preset("x86", flags).name == expected


def test_host_without_avx2_gets_a_clear_error():
    with pytest.raises(UnknownTargetError, match="AVX2"):
        targets.resolve_preset("x86", {"sse4_2"})


def test_unknown_target_names_the_known_ones():
    with pytest.raises(UnknownTargetError, match="unknown target 'riscv'.*x86-avx2"):
        targets.resolve_preset("riscv")


def test_target_json_is_a_dict_tvm_accepts():
    import tvm

    preset = targets.PRESETS["x86-avx2"]
    target = tvm.target.Target(targets.target_json(preset, num_cores=2))
    assert target.kind.name == "llvm" and target.attrs["mcpu"] == "haswell"
    assert int(target.attrs["num-cores"]) == 2


def test_running_a_wider_isa_than_the_host_is_refused():
    with pytest.raises(UnknownTargetError, match="avx512_vnni"):
        targets.check_host_can_run(targets.PRESETS["x86-avx512-vnni"], {"avx2", "fma"})
    targets.check_host_can_run(targets.PRESETS["x86-avx2"], {"avx2", "fma"})


def test_arm_alias_is_the_generic_aarch64_preset_and_boards_carry_their_core_counts():
    import tvm

    assert targets.resolve_preset("arm").name == "arm-aarch64"
    rpi4 = targets.PRESETS["arm-rpi4"]
    tjson = targets.target_json(rpi4)
    assert tjson["num-cores"] == 4 and tjson["mtriple"] == "aarch64-linux-gnu" and tjson["mcpu"] == "cortex-a72"
    assert tvm.target.Target(tjson).kind.name == "llvm"
    assert rpi4.cross_compiler == "aarch64-linux-gnu-gcc" and rpi4.isa == "aarch64"
    assert "+dotprod" in targets.PRESETS["arm-rpi5"].target["mattr"]
    assert "asimddp" in targets.PRESETS["arm-rpi5"].cpu_flags


def test_code_for_another_isa_is_refused_before_it_runs():
    with pytest.raises(UnknownTargetError, match="arm-rpi4 runs on aarch64.*this host is x86_64"):
        targets.check_host_can_run(targets.PRESETS["arm-rpi4"], set(), isa="x86_64")
    targets.check_host_can_run(targets.PRESETS["arm-aarch64"], set(), isa="aarch64")
    with pytest.raises(UnknownTargetError, match="asimddp"):
        targets.check_host_can_run(targets.PRESETS["arm-rpi5"], {"asimd"}, isa="aarch64")


def test_aarch64_features_come_from_the_hwcap_word(tmp_path):
    import struct

    auxv = tmp_path / "auxv"
    # AT_PAGESZ, then AT_HWCAP with fp, asimd and asimddp (bits 0, 1, 20), then AT_NULL
    auxv.write_bytes(struct.pack("<6Q", 6, 4096, targets.AT_HWCAP, 1 | 2 | 1 << 20, 0, 0))
    assert targets.aarch64_hwcaps(auxv) == {"fp", "asimd", "asimddp"}
    assert targets.aarch64_hwcaps(tmp_path / "missing") == set()


VNNI_HOST = {"avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni"}


def test_compiling_for_x86_takes_the_widest_preset_with_a_tuning_database(tmp_path):
    from pipeline.build import compile_preset
    from pipeline.models import load_model
    from pipeline.tuning.database import META_FILE, database_dir

    spec = load_model("yolov3-tiny", 96)
    assert compile_preset("x86", spec, schedules_root=tmp_path, flags=VNNI_HOST).name == "x86-avx512-vnni"
    avx2_db = database_dir("x86-avx2", "yolov3-tiny", "fp32", tmp_path)
    avx2_db.mkdir(parents=True)
    (avx2_db / META_FILE).write_text("{}")
    assert compile_preset("x86", spec, schedules_root=tmp_path, flags=VNNI_HOST).name == "x86-avx2"
    # untuned builds, and presets named outright, are what was asked for
    assert compile_preset("x86", spec, tuned=False, schedules_root=tmp_path, flags=VNNI_HOST).name == "x86-avx512-vnni"
    assert compile_preset("x86-avx512", spec, schedules_root=tmp_path, flags=VNNI_HOST).name == "x86-avx512"
