"""Where tuning trials are measured: this machine, boards behind an RPC tracker, or the
emulated aarch64 device (whose timings are EMULATED and never stand for an ARM board)."""

import sys
from contextlib import contextmanager
from dataclasses import dataclass

from ..errors import SlimdetError
from ..targets import host_isa

# A board's measurement includes uploading the library and a session start: far slower than local.
RPC_SESSION_TIMEOUT_S = 120
EMULATED_SESSION_TIMEOUT_S = 300
# What MetaSchedule's runner reports when the device behind the key is gone (see session_on_a_device).
DEVICE_GONE_MARKERS = ("Unable to find servers", "Connection reset", "Broken pipe", "connection closed",
                       "RPCSessionTimeoutError", "Connection refused", "Socket")


class TuneTargetError(SlimdetError):
    pass


@dataclass
class Measurement:
    runner: object
    label: str  # said in the progress header and stored in meta.json
    remote: bool = False
    emulated: bool = False


def mean_seconds(run_secs) -> float | None:
    """A measurement's (or a tuning record's) mean time in seconds; None when it has none."""
    secs = [float(s) for s in run_secs or []]
    return sum(secs) / len(secs) if secs else None


def evaluator_config():
    from tvm.s_tir import meta_schedule as ms

    return ms.runner.EvaluatorConfig(number=3, repeat=1, min_repeat_ms=50, enable_cpu_cache_flush=False)


def session_on_a_device(rpc_config):
    """Like upstream's, but fails at once when no device is registered under the key, instead of
    queueing at the tracker until the session times out: a dead board ends the tune in seconds."""
    rpc_config.count_num_servers(allow_missing=False)
    return rpc_config.connect_server()


def rpc_runner(tracker: str, key: str, devices: int, session_timeout: float):
    from tvm.s_tir import meta_schedule as ms

    from ..remote.rpc import parse_address

    host, port = parse_address(tracker)
    config = ms.runner.RPCConfig(tracker_host=host, tracker_port=port, tracker_key=key,
                                 session_timeout_sec=int(session_timeout))
    # One worker per registered board: a farm under one key measures in parallel.
    return ms.runner.RPCRunner(config, evaluator_config(), max_workers=devices,
                               f_create_session=session_on_a_device)


@contextmanager
def measurement(preset, rpc_tracker: str | None = None, rpc_key: str | None = None, emulate: bool = False):
    """The runner for a tune of ``preset``: local when this host runs its code, else over RPC; with
    ``emulate``, a loopback tracker and an emulated aarch64 device started for the tune."""
    from tvm.s_tir import meta_schedule as ms

    from ..remote import rpc

    if emulate:
        if preset.isa != "aarch64":
            raise TuneTargetError(f"only aarch64 targets can be tuned on the emulated device, not {preset.name}")
        print("[tune] starting a loopback RPC tracker and the EMULATED aarch64 device (qemu-user); its "
              "timings are emulated, not ARM timings", file=sys.stderr, flush=True)
        with rpc.emulated_farm() as (tracker, key, _device):
            yield Measurement(rpc_runner(tracker, key, 1, EMULATED_SESSION_TIMEOUT_S),
                              f"EMULATED aarch64 device (qemu-user) via {tracker}", remote=True, emulated=True)
        return
    if rpc_tracker:
        if not rpc_key:
            raise TuneTargetError("--rpc-tracker needs --rpc-key: the key the devices registered under")
        devices = rpc.wait_for_devices(rpc_tracker, rpc_key, timeout=10)
        yield Measurement(rpc_runner(rpc_tracker, rpc_key, devices, RPC_SESSION_TIMEOUT_S),
                          f"{devices} device(s) under key {rpc_key!r} at {rpc_tracker}", remote=True)
        return
    local = _local_device(preset)
    if local is None:
        hint = " (or --target arm to tune on the emulated aarch64 device)" if preset.isa == "aarch64" else ""
        raise TuneTargetError(f"{preset.name} code does not run on this {host_isa()} host: tune it on the device, "
                              f"with --rpc-tracker HOST:PORT --rpc-key KEY{hint}")
    yield Measurement(ms.runner.LocalRunner(timeout_sec=60, evaluator_config=evaluator_config()), local)


def _local_device(preset) -> str | None:
    """What on this host runs ``preset``'s code ("this machine", "this machine's NVIDIA H100 80GB HBM3 (sm_90)"), or None."""
    if preset.isa != host_isa():
        return None
    if preset.device == "cuda":
        import tvm

        from ..cuda import local_gpu_arch

        if local_gpu_arch(tvm) != preset.gpu_arch:
            return None
        return f"this machine's {tvm.cuda(0).device_name} ({preset.gpu_arch})"
    return "this machine"


def device_gone(error_msg: str | None) -> bool:
    return bool(error_msg) and any(marker in error_msg for marker in DEVICE_GONE_MARKERS)
