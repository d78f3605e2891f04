"""Shared fixtures: a clocked virtual sound card (JACK's dummy driver), since this machine has none."""
import os
import shutil
import subprocess
import time

import pytest


@pytest.fixture
def jack_server():
    if shutil.which("jackd") is None:
        pytest.skip("jackd not installed (apt-get install jackd2): no audio device to test against")
    name = f"hs_test_{os.getpid()}"
    process = subprocess.Popen(["jackd", "-n", name, "--no-realtime", "-d", "dummy", "-r", "48000", "-p", "480"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # jackd has no readiness signal; the dummy driver starts well within this
    if process.poll() is not None:
        pytest.skip("jackd could not start its dummy driver here")
    yield name
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(autouse=True)
def private_data_dir(tmp_path_factory, monkeypatch):
    """Sessions store into a temporary data directory, never the user's real one (subprocesses inherit it)."""
    monkeypatch.setenv("HEARTSONG_DATA_DIR", str(tmp_path_factory.mktemp("heartsong-data")))
