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
