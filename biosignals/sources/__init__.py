"""Sensor sources and ``open_source``, which picks one from the sensor address alone.

- ``virtual:hrs`` / ``virtual:hr-only`` / ``virtual:h10``: a virtual strap in the Bumble lab, read through bleak.
- ``replay:FILE``: a recording made by ``record_session``.
- anything else: a real strap's Bluetooth address (a UUID on macOS), through bleak's platform backend.
"""
from __future__ import annotations

from biosignals.sources.base import SensorError, SensorSource

__all__ = ["SensorError", "SensorSource", "open_source"]


def open_source(spec: str, *, seed: int = 0, time_scale: float = 1.0, use_pmd: bool = True, replay_speed: float = 1.0) -> SensorSource:
    """The source for a ``--sensor`` value. Nothing connects until ``start()``.

    ``seed`` and ``time_scale`` apply to virtual straps, ``replay_speed`` to recordings (0 = as fast as possible).
    """
    spec = spec.strip()
    if spec.startswith("virtual:"):
        from biosignals.lab.strap_source import LabStrapSource  # Bumble is only imported for the lab

        return LabStrapSource(spec.removeprefix("virtual:"), seed=seed, time_scale=time_scale, use_pmd=use_pmd)
    if spec.startswith("replay:"):
        from biosignals.sources.replay import ReplaySource

        return ReplaySource(spec.removeprefix("replay:"), speed=replay_speed)
    if not spec:
        raise SensorError("empty sensor address: give a strap address, virtual:hrs|hr-only|h10, or replay:FILE")
    from biosignals.sources.ble import BleStrapSource

    return BleStrapSource(spec, use_pmd=use_pmd)


async def check_strap(spec: str, timeout_s: float | None = None):
    """Connect to the strap at ``spec`` (an address or ``virtual:<kind>``) for a few seconds and return a
    ``biosignals.sources.ble.StrapCheck``: battery, body location, RR and contact support, current heart rate."""
    from biosignals.sources.ble import BleStrapSource, check_strap as check

    source = None if spec.strip().startswith("replay:") else open_source(spec, use_pmd=False)  # a replay loads its file
    if not isinstance(source, BleStrapSource):
        raise SensorError(f"{spec!r} is not a Bluetooth strap: only straps can be checked")
    return await (check(source) if timeout_s is None else check(source, timeout_s))


async def scan_straps(virtual: bool = False, timeout: float = 5.0, probe_pmd: bool = True) -> list:
    """Heart-rate straps in range (``list[StrapInfo]``, strongest first). ``virtual``: scan a lab holding one strap of each kind."""
    from biosignals.sources.ble import discover_straps

    if not virtual:
        return await discover_straps(timeout, probe_pmd=probe_pmd)
    from biosignals.lab.strap_source import scan_virtual_straps

    return await scan_virtual_straps(timeout, probe_pmd=probe_pmd)
