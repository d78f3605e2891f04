"""Real recordings shipped inside PyPI packages, fetched at test time with ``pip download`` (never vendored), or skip.

Cache: ``$HEARTSONG_TEST_DATA`` or ``~/.cache/heartsong-test-data``. Each package's files stay under its own
licence (pyhrv BSD-3, hrv-analysis GPL-3, systole GPL-3, pyphysio GPL-3): they are read from the cache, never
copied into this repository.
"""
from __future__ import annotations

import bz2
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

CACHE = Path(os.environ.get("HEARTSONG_TEST_DATA", Path.home() / ".cache" / "heartsong-test-data"))
PACKAGES = {  # distribution file prefix -> pip requirement
    "pyhrv-0.4.1": "pyhrv==0.4.1",
    "hrv_analysis-1.0.6": "hrv-analysis==1.0.6",
    "systole-0.2.3": "systole==0.2.3",
    "pyphysio-4.10.0": "pyphysio==4.10.0",
}


def member(prefix: str, name: str) -> Path:
    """Path of ``name`` inside the cached distribution ``prefix``, extracted on first use; skips when offline."""
    target = CACHE / "x" / prefix / name
    if target.exists():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    archives = [p for p in CACHE.glob(prefix + "*") if p.is_file()]
    if not archives:
        sdist = ["--no-binary", ":all:"] if prefix.startswith("hrv_analysis") else []
        result = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", *sdist, PACKAGES[prefix],
                                 "-d", str(CACHE), "-q"], capture_output=True, timeout=300)
        archives = [p for p in CACHE.glob(prefix + "*") if p.is_file()]
        if result.returncode or not archives:
            pytest.skip(f"cannot download {PACKAGES[prefix]} (offline?): real-data validation skipped")
    archive = archives[0]
    target.parent.mkdir(parents=True, exist_ok=True)
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as z:
            target.write_bytes(z.read(name))
    else:
        with tarfile.open(archive) as t:
            target.write_bytes(t.extractfile(f"{prefix}/{name}").read())
    return target


def pyhrv_nni(which: str = "Long") -> np.ndarray:
    """pyhrv's sample NN series (ms): ``Short`` 337 or ``Long`` 4684 intervals."""
    return np.load(member("pyhrv-0.4.1", f"pyhrv/files/SampleNNISeries{which}.npy")).astype(float)


def pyhrv_ecg() -> tuple[np.ndarray, float]:
    """pyhrv's BITalino ECG sample (raw ADC counts, 22 s) and its rate (1000 Hz)."""
    return np.loadtxt(member("pyhrv-0.4.1", "pyhrv/files/SampleECG.txt"))[:, -1], 1000.0


def hrv_analysis_nn() -> np.ndarray:
    """hrv-analysis's test NN series (1000 intervals, ms) with golden values in its own tests."""
    return np.loadtxt(member("hrv_analysis-1.0.6", "tests/test_nn_intervals.txt"))


def systole_task1(start_s: float, seconds: float) -> tuple[np.ndarray, np.ndarray, float]:
    """A slice of systole's Task1 recording: ECG (mV) and respiration belt, 1000 Hz."""
    fs = 1000.0
    sl = slice(int(start_s * fs), int((start_s + seconds) * fs))
    ecg = np.load(member("systole-0.2.3", "systole/datasets/Task1_ECG.npy"), mmap_mode="r")[sl]
    belt = np.load(member("systole-0.2.3", "systole/datasets/Task1_Respiration.npy"), mmap_mode="r")[sl]
    return np.array(ecg), np.array(belt), fs


def pyphysio_medical() -> tuple[np.ndarray, float]:
    """pyphysio's medical recording: columns ECG, EDA, BVP, respiration; 2048 Hz, 120 s.

    (Its ``info_medical`` says 1024 Hz, but 245760 samples over the stated 120 s is 2048 Hz, and only 2048 Hz
    gives heart rates that match neurokit2's R peaks.)
    """
    with bz2.open(member("pyphysio-4.10.0", "pyphysio/test_data/medical.txt.bz2")) as f:
        return np.loadtxt(f), 2048.0
