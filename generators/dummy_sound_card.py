"""A clocked virtual sound card for machines without one: JACK's dummy driver, started and stopped around a block.

PortAudio then plays into JACK exactly as into a real device (callbacks every period, underflows reported).
JACK keeps a registry of at most 8 servers in /dev/shm; a server that is killed (as the fault tests do) leaves
its entry behind, so stale entries are cleared whenever no jackd process is running.
"""
from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

SHM = Path("/dev/shm")
START_TIMEOUT_S = 10.0


class DummySoundCardError(RuntimeError):
    """JACK is missing or its dummy driver would not start; ``str()`` says which and how to fix it."""


def _jackd_running() -> bool:
    for comm in Path("/proc").glob("[0-9]*/comm"):
        with contextlib.suppress(OSError):
            if comm.read_text().strip() == "jackd":
                return True
    return False


def _clear_stale_registry() -> None:
    if _jackd_running():
        return
    for path in SHM.glob("jack*"):
        with contextlib.suppress(OSError):
            shutil.rmtree(path) if path.is_dir() else path.unlink()


@contextlib.contextmanager
def dummy_sound_card(name: str, sample_rate: int = 48000, period: int = 480) -> Iterator[subprocess.Popen]:
    """Run ``jackd -n NAME --no-realtime -d dummy`` for the block and yield its process. Clients find it with
    the environment ``JACK_DEFAULT_SERVER=NAME`` (set before PortAudio is loaded, so in a child process)."""
    if shutil.which("jackd") is None:
        raise DummySoundCardError("jackd is not installed: apt-get install jackd2")
    _clear_stale_registry()
    process = subprocess.Popen(["jackd", "-n", name, "--no-realtime", "-d", "dummy", "-r", str(sample_rate),
                                "-p", str(period)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + START_TIMEOUT_S
    while not any(SHM.glob(f"jack_{name}_*")):  # the server's shared memory appears once it is up
        if process.poll() is not None:
            reason = (process.stderr.read() or "").strip().splitlines()
            raise DummySoundCardError(f"jackd could not start its dummy driver: {reason[-2] if len(reason) > 1 else reason}")
        if time.monotonic() > deadline:
            process.kill()
            raise DummySoundCardError(f"jackd did not come up within {START_TIMEOUT_S:g} s")
        time.sleep(0.05)
    time.sleep(0.2)  # the driver starts its clock right after the shared memory appears
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        _clear_stale_registry()
