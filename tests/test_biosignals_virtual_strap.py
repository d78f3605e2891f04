"""VirtualStrap: genuine 0x2A37 bytes carrying the listener's beats, offline and live."""
import asyncio
import time

import numpy as np
import pytest

from biosignals.heart_rate_measurement import parse_heart_rate_measurement
from biosignals.physiology import VirtualListener
from biosignals.sources.base import SensorSource
from biosignals.sources.virtual import HEART_RATE_MEASUREMENT_UUID, VirtualStrap


def test_uuid_is_the_heart_rate_measurement_characteristic():
    assert HEART_RATE_MEASUREMENT_UUID == "00002a37-0000-1000-8000-00805f9b34fb"
    assert issubclass(VirtualStrap, SensorSource)


def test_packets_carry_the_listeners_rr_intervals_with_proper_flags():
    strap = VirtualStrap(seed=21)
    twin = VirtualListener(seed=21)
    true_beats = np.array(twin.advance(120.0))
    packets = strap.packets_until(60.0) + strap.packets_until(120.0)  # in two calls: nothing lost or repeated

    arrivals = np.array([p.t_arrival for p in packets])
    assert np.all(np.diff(arrivals) >= 0.8) and np.all(np.diff(arrivals) <= 1.2)
    assert arrivals[-1] <= 120.0
    rr_sent = []
    for p in packets:
        assert p.characteristic == HEART_RATE_MEASUREMENT_UUID
        assert p.data[0] & 0x16 == 0x16 or p.data[0] == 0x06  # contact supported + detected (+ RR when any)
        m = parse_heart_rate_measurement(p.data)
        assert m.contact_supported and m.contact_detected and m.energy_expended_kj is None
        assert 40 <= m.heart_rate_bpm <= 120
        rr_sent += m.rr_raw
    expected = np.round(np.diff(true_beats[true_beats <= arrivals[-1]]) * 1024).astype(int)
    np.testing.assert_array_equal(rr_sent, expected)
    assert max(len(parse_heart_rate_measurement(p.data).rr_raw) for p in packets) >= 2  # several per packet


def test_each_packet_holds_the_beats_since_the_previous_one():
    strap = VirtualStrap(seed=22)
    twin = VirtualListener(seed=22)
    true_beats = np.array(twin.advance(60.0))
    packets = strap.packets_until(60.0)
    for previous, p in zip(packets, packets[1:]):
        inside = true_beats[(true_beats > previous.t_arrival) & (true_beats <= p.t_arrival)]
        assert len(parse_heart_rate_measurement(p.data).rr_raw) == len(inside)


def test_heart_rate_field_is_from_recent_rr():
    strap = VirtualStrap(seed=23)
    for p in strap.packets_until(60.0)[5:]:
        m = parse_heart_rate_measurement(p.data)
        if m.rr_raw:
            assert m.heart_rate_bpm == pytest.approx(60 * 1024 / m.rr_raw[-1], rel=0.15)


def test_full_packets_carry_the_rest_over():
    listener = VirtualListener(seed=24, initial_hr_bpm=200.0, resting_hr_bpm=200.0)
    strap = VirtualStrap(listener, seed=24, packet_interval_s=4.0, packet_jitter_s=0.0)  # ~13 beats per packet
    counts = [len(parse_heart_rate_measurement(p.data).rr_raw) for p in strap.packets_until(40.0)]
    assert max(counts) == 9
    twin = np.array(VirtualListener(seed=24, initial_hr_bpm=200.0, resting_hr_bpm=200.0).advance(40.0))
    assert sum(counts) < len(twin) - 1  # the rest waits for later packets instead of being dropped or overflowing


def test_same_seed_same_bytes():
    a = VirtualStrap(seed=25).packets_until(30.0)
    b = VirtualStrap(seed=25).packets_until(30.0)
    assert a == b


def test_live_packets_are_stamped_with_host_monotonic_time_and_stop_ends_them():
    listener = VirtualListener(seed=26, initial_hr_bpm=180.0, resting_hr_bpm=180.0)  # beats every ~0.33 s
    strap = VirtualStrap(listener, seed=26, packet_interval_s=0.2, packet_jitter_s=0.02)

    async def session():
        await strap.start()
        started = time.monotonic()
        received = []
        async for packet in strap.packets():
            received.append((packet, time.monotonic()))
            if len(received) == 3:
                await strap.stop()
        await strap.stop()  # twice is fine
        return started, received

    started, received = asyncio.run(asyncio.wait_for(session(), timeout=10.0))
    assert len(received) == 3
    for packet, seen in received:
        assert started - 0.05 <= packet.t_arrival <= seen + 0.01
        parse_heart_rate_measurement(packet.data)


def test_packets_before_start_is_an_error_naming_the_fix():
    async def consume():
        async for _ in VirtualStrap().packets():
            pass

    with pytest.raises(RuntimeError, match="await strap.start"):
        asyncio.run(consume())
