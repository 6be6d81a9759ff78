"""TVM's RPC tracker and device servers: how tuning reaches boards, and how it scales to a farm.

A tracker hands each measurement to a free device registered under a key; several boards under
one key measure in parallel. Everything listens on loopback unless the user names an address.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass

from ..errors import SlimdetError

LOOPBACK = "127.0.0.1"
DEFAULT_TRACKER_PORT = 9190
EMULATED_KEY = "aarch64-emulated"


class RPCError(SlimdetError):
    pass


def parse_address(text: str) -> tuple:
    host, sep, port = str(text).rpartition(":")
    if not sep or not host or not port.isdigit():
        raise RPCError(f"bad RPC tracker address {text!r}: expected HOST:PORT, e.g. 127.0.0.1:9190")
    return host, int(port)


def tracker_summary(tracker: str, timeout: float = 10.0) -> dict:
    """The tracker's view of its devices; one clear error when nothing answers there."""
    host, port = parse_address(tracker)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
        from tvm import rpc

        return rpc.connect_tracker(host, port).summary()
    except (OSError, RuntimeError) as e:
        raise RPCError(f"no RPC tracker answers at {tracker} ({e}). Start one with `slimdet rpc tracker` "
                       f"(or python -m tvm.exec.rpc_tracker) and register devices with it.") from None


def devices_under(tracker: str, key: str) -> int:
    """How many device servers are registered under ``key`` (busy or free)."""
    servers = tracker_summary(tracker).get("server_info", [])
    return sum(1 for server in servers if str(server.get("key", "")).split(":", 1)[-1] == key)


def wait_for_devices(tracker: str, key: str, timeout: float = 120.0, poll: float = 1.0) -> int:
    deadline = time.monotonic() + timeout
    while True:
        count = devices_under(tracker, key)
        if count or time.monotonic() > deadline:
            break
        time.sleep(poll)
    if not count:
        keys = sorted({str(s.get("key", "")).split(":", 1)[-1] for s in tracker_summary(tracker).get("server_info", [])})
        raise RPCError(f"no device is registered under key {key!r} at tracker {tracker} "
                       f"(keys there: {', '.join(keys) or 'none'})")
    return count


def free_port(host: str = LOOPBACK) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@dataclass
class Service:
    """A tracker or device server we started, in its own process group so it stops whole."""

    name: str
    process: subprocess.Popen
    address: str = ""

    def stop(self, sig=signal.SIGTERM, wait: float = 10.0):
        if self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, sig)
            self.process.wait(wait)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def kill(self):
        """The way a board dies: no goodbye to the tracker."""
        self.stop(signal.SIGKILL)


def _spawn(cmd, log=None) -> subprocess.Popen:
    return subprocess.Popen([str(c) for c in cmd], stdout=log or subprocess.DEVNULL, stderr=subprocess.STDOUT,
                            start_new_session=True)


def start_tracker(host: str = LOOPBACK, port: int | None = None, log=None) -> Service:
    port = port or free_port(host)
    process = _spawn([sys.executable, "-m", "tvm.exec.rpc_tracker", "--host", host, "--port", port,
                                 "--port-end", port + 1], log)
    address = f"{host}:{port}"
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise RPCError(f"the RPC tracker exited at start ({process.returncode}); is {address} in use?")
        try:
            socket.create_connection((host, port), timeout=1).close()
            return Service("tracker", process, address)
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                raise RPCError(f"the RPC tracker did not start listening on {address}") from None
            time.sleep(0.2)


def device_server_command(python, tracker: str, key: str, host: str = LOOPBACK, load_library=None) -> list:
    cmd = [python, "-m", "tvm.exec.rpc_server", "--tracker", tracker, "--key", key, "--host", host]
    return cmd + (["--load-library", load_library] if load_library else [])


def start_device(tracker: str, key: str, emulate: str | None = None, host: str = LOOPBACK, log=None,
                 wait: float = 300.0) -> Service:
    """A device server registered with ``tracker`` under ``key``: this machine's own Python, or
    with ``emulate="aarch64"`` the emulated arm64 board."""
    if emulate not in (None, "aarch64"):
        raise RPCError(f"cannot emulate {emulate!r}: only aarch64 is supported")
    before = devices_under(tracker, key)
    if emulate:
        from .emulator import emulated_aarch64

        board = emulated_aarch64()
        cmd = device_server_command(board.python, tracker, key, host, board.runtime_extra_library)
    else:
        import tvm

        extra = os.path.join(os.path.dirname(tvm.__file__), "lib", "libtvm_runtime_extra.so")
        cmd = device_server_command(sys.executable, tracker, key, host, extra if os.path.exists(extra) else None)
    process = _spawn(cmd, log)
    deadline = time.monotonic() + wait
    while devices_under(tracker, key) <= before:
        if process.poll() is not None:
            raise RPCError(f"the {'emulated ' if emulate else ''}device server exited at start ({process.returncode})")
        if time.monotonic() > deadline:
            Service("device", process).stop()
            raise RPCError(f"the device server did not register with {tracker} within {wait:.0f} s")
        time.sleep(0.5)
    return Service(f"device {key}", process, tracker)


@contextmanager
def emulated_farm(key: str = EMULATED_KEY, log=None):
    """A loopback tracker with one emulated aarch64 device: ``(tracker, key, device)``."""
    tracker = start_tracker(log=log)
    device = None
    try:
        device = start_device(tracker.address, key, emulate="aarch64", log=log)
        yield tracker.address, key, device
    finally:
        if device:
            device.stop()
        tracker.stop()
