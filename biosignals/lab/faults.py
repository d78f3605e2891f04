"""Fault injection for virtual straps: link drop and return, contact lost, garbage and truncated packets, stalls.

Each injector acts on a powered-on ``VirtualBleStrap`` through its radio (``leave_range``) or its
``StrapFaults`` switches, so the central sees exactly what a misbehaving real strap would send.
Durations are lab seconds.
"""
from __future__ import annotations

import random

from biosignals.lab.peripherals import VirtualBleStrap


async def drop_link(strap: VirtualBleStrap, down_s: float) -> float:
    """Take the strap out of range for ``down_s``, then back; return the lab time it became reachable again."""
    assert strap.lab is not None
    await strap.leave_range()
    await strap.lab.sleep(down_s)
    await strap.return_to_range()
    assert strap.t_reachable is not None
    return strap.t_reachable


async def lose_contact(strap: VirtualBleStrap, duration_s: float, *, bogus_rr_after: bool = True) -> None:
    """The strap slips off the skin: HR 0, contact not detected, no RR; on return optionally one huge bogus RR."""
    assert strap.lab is not None
    strap.faults.bogus_rr_on_contact_return = bogus_rr_after
    strap.faults.contact = False
    await strap.lab.sleep(duration_s)
    strap.faults.contact = True


async def stall_notifications(strap: VirtualBleStrap, duration_s: float) -> None:
    """The link stays up but nothing is notified (a wedged strap firmware)."""
    assert strap.lab is not None
    strap.faults.stalled = True
    await strap.lab.sleep(duration_s)
    strap.faults.stalled = False


def garbage_packets(count: int, seed: int = 0, max_length: int = 24) -> list[bytes]:
    """``count`` random byte strings of 0 to ``max_length`` bytes."""
    rng = random.Random(seed)
    return [bytes(rng.randrange(256) for _ in range(rng.randrange(max_length + 1))) for _ in range(count)]


def truncated_heart_rate_packets() -> list[bytes]:
    """Heart Rate Measurements cut short, one for each field the flags promise but the bytes do not deliver."""
    return [
        bytes([0x01, 0x48]),  # uint16 HR promised, one byte sent
        bytes([0x08, 0x48, 0x10]),  # energy expended promised, one byte of it
        bytes([0x10, 0x48, 0x00, 0x03, 0x20]),  # RR present, odd RR payload
        bytes([0x16, 0x48, 0x00]),  # contact + RR, half an RR
        bytes([0x00]),  # flags only
    ]


def inject_heart_rate_packets(strap: VirtualBleStrap, packets: list[bytes]) -> None:
    """Send these bytes as the strap's next Heart Rate Measurement notifications, one per notification slot."""
    strap.faults.injected_hrm.extend(packets)


def inject_pmd_frames(strap: VirtualBleStrap, frames: list[bytes]) -> None:
    """Send these bytes as the strap's next PMD data notifications."""
    strap.faults.injected_pmd.extend(frames)
