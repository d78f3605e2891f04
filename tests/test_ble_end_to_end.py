"""End to end through bleak's public API and a real ATT/GATT exchange with virtual straps on Bumble's in-process link.

The lab runs 8x faster than real time (its clock stamps the packets), 16x for the long H10 session (2 minutes of
data before the drop, ~140 s of strap time in ~9 s here).
Nothing is mocked: the app's BleStrapSource, bleak, the Bumble backend, Bumble's host and controller stacks and
the virtual straps all run.
"""
from __future__ import annotations

import asyncio
import json
import os

import numpy as np
import pytest

from biosignals import pmd
from biosignals.beat_timing import BeatTimeline
from biosignals.heart_rate_measurement import HEART_RATE_MEASUREMENT_UUID, HeartRateParseError, parse_heart_rate_measurement
from biosignals.lab import faults
from biosignals.packet_decoder import PacketDecoder
from biosignals.sources import open_source, scan_straps
from biosignals.sources.base import SensorError
from biosignals.sources.ble import CAPABILITIES_CHARACTERISTIC, CONNECTED_CHARACTERISTIC, GAP_CHARACTERISTIC, NO_BLUETOOTH, BleStrapSource
from biosignals.types import Beat

SCALE = 8.0
H10_SCALE = 16.0  # the long session; the lab keeps up at this rate on a shared 2-core machine


async def _collect(source, scenario):
    """Start ``source``, run ``scenario(source)`` while collecting packets, stop; return the packets."""
    await source.start()
    packets = []

    async def consume():
        async for packet in source.packets():
            packets.append(packet)

    consumer = asyncio.create_task(consume())
    try:
        await scenario(source)
    finally:
        await source.stop()
        await consumer
    return packets


def _beats(packets):
    """The session pipeline in miniature: parse, back-date, honour gap packets. Returns beats and parse failures."""
    timeline, beats, bad = BeatTimeline(), [], 0
    for packet in packets:
        if packet.characteristic == GAP_CHARACTERISTIC:
            timeline.mark_gap()
        elif packet.characteristic == HEART_RATE_MEASUREMENT_UUID:
            try:
                beats += timeline.add(packet.t_arrival, parse_heart_rate_measurement(packet.data))
            except HeartRateParseError:
                bad += 1
    return beats, bad


def test_scan_lists_the_virtual_straps_and_which_offer_pmd():
    straps = asyncio.run(scan_straps(virtual=True, timeout=0.3))
    by_name = {s.name: s for s in straps}
    assert set(by_name) == {"Virtual HRS Strap", "Virtual HR-only Strap", "Polar H10 0A1B2C3D"}
    assert by_name["Polar H10 0A1B2C3D"].offers_pmd is True and by_name["Virtual HRS Strap"].offers_pmd is False
    assert [s.rssi_dbm for s in straps] == sorted((s.rssi_dbm for s in straps), reverse=True)


def test_h10_session_survives_a_link_drop_and_stops_pmd_cleanly():
    source = open_source("virtual:h10", time_scale=H10_SCALE, seed=3)
    marks = {}

    async def scenario(src):
        await src.lab.sleep(125.0)
        marks["t_lost"] = src.lab.now()
        marks["t_back"] = await faults.drop_link(src.strap, 4.0)
        await src.lab.sleep(12.0)

    packets = asyncio.run(_collect(source, scenario))
    strap = source.strap

    caps = source.capabilities
    assert (caps.battery_percent, caps.body_location, caps.device_information["model"]) == (87, "chest", "H10")
    assert caps.pmd_features == ("ACC", "ECG") and caps.rr_present is True and not caps.hr_only

    # Gap marked at the drop, one reconnect, and streams restarted on the new link.
    kinds = [p.characteristic for p in packets]
    assert kinds.count(GAP_CHARACTERISTIC) == 1 and kinds.count(CONNECTED_CHARACTERISTIC) == 2
    assert len(source.reconnects) == 1 and source.reconnects[0][1] >= marks["t_back"]
    beats, bad = _beats(packets)
    assert bad == 0
    after = [b for b in beats if b.t > marks["t_back"]]
    assert after and after[0].after_gap and not any(b.after_gap for b in after[1:])
    assert not any(marks["t_lost"] < b.t <= marks["t_back"] for b in beats)

    # Clean stop: every stream started twice (initial + after reconnect), then STOP for each.
    starts = [pmd.start_command(pmd.MeasurementType.ECG, pmd.ECG_130HZ), pmd.start_command(pmd.MeasurementType.ACC, pmd.ACC_200HZ_8G)]
    assert strap.pmd_commands == starts + starts + [bytes.fromhex("03 00"), bytes.fromhex("03 02")]

    # RR intervals are the simulated listener's, to the strap's 1/1024 s resolution.
    fired = np.array(strap.beats_fired)
    truth = set(np.round(np.diff(fired) * 1024).astype(int))
    received = [rr for p in packets if p.characteristic == HEART_RATE_MEASUREMENT_UUID for rr in parse_heart_rate_measurement(p.data).rr_raw]
    assert len(received) > 30 and set(received) <= truth

    # ECG R peaks land on the same beats; ACC follows the same breathing.
    decoder = pmd.PmdStreamDecoder({pmd.MeasurementType.ECG: 130.0, pmd.MeasurementType.ACC: 200.0})
    ecg_t, ecg_v, acc_t, acc_z = [], [], [], []
    for p in packets:
        if p.characteristic == pmd.PMD_DATA_UUID:
            frame = decoder.decode(p.data)
            times = [strap.lab_time_of_sensor_ns(round(s * pmd.NS_PER_S)) for s in frame.sensor_times_s]
            if frame.measurement_type == pmd.MeasurementType.ECG:
                ecg_t += times
                ecg_v += [s[0] for s in frame.samples]
            else:
                acc_t += times
                acc_z += [s[2] for s in frame.samples]
        elif p.characteristic == GAP_CHARACTERISTIC:
            decoder.reset()
    ecg_t, ecg_v = np.array(ecg_t), np.array(ecg_v)
    peaks = [i for i in range(1, len(ecg_v) - 1) if ecg_v[i] > 600 and ecg_v[i] >= ecg_v[i - 1] and ecg_v[i] >= ecg_v[i + 1]]
    assert len(peaks) > 25
    assert max(np.min(np.abs(fired - ecg_t[i])) for i in peaks) < 0.01  # within 10 ms (one sample is 7.7 ms)
    expansion = np.array([strap.chest_expansion(t) for t in acc_t])
    assert np.corrcoef(expansion, np.array(acc_z))[0, 1] > 0.8

    # The session decoder moves beats onto the ECG's R peaks (sensor clock mapped to host time). The residual is
    # the lab's minimum delivery delay, real scheduling latency x 16 here (~10-25 ms); back-dating alone is late
    # by up to the 1 s packet interval. The lab's delay jitter (x 16) swamps 40 ppm over 2 minutes, so the drift
    # fit itself is checked against exact frames in test_sensor_clock.py.
    decoder = PacketDecoder()
    aligned = [b for p in packets for b in decoder.feed(p) if isinstance(b, Beat)]
    backdated, _ = _beats(packets)
    locked = [i for i, b in enumerate(aligned) if 30.0 < b.t < marks["t_lost"]]
    aligned_error = np.array([np.min(np.abs(fired - aligned[i].t)) for i in locked])
    backdated_error = np.array([backdated[i].t - fired[fired <= backdated[i].t].max() for i in locked])
    # once at the start and once after the reconnect; under scheduling load the lab's delays (x 16) can exceed the
    # aligner's 20 ms for 10 beats in a row, and it then re-acquires once more (the error figures below still hold)
    assert 2 <= decoder.aligner.locks <= 3
    assert [b.rr_raw for b in aligned] == [b.rr_raw for b in backdated]
    assert np.percentile(aligned_error, 95) < 0.05 and np.percentile(backdated_error, 95) > 0.3
    print(f"\nH10 lab: sensor drift fit {decoder.clock.sensor_drift_ppm:.1f} ppm (true 40); aligned beat error p95 "
          f"{np.percentile(aligned_error, 95) * 1000:.1f} ms, back-dated p95 {np.percentile(backdated_error, 95) * 1000:.0f} ms")


def test_faults_never_crash_the_session_and_contact_loss_is_a_gap():
    source = open_source("virtual:hrs", time_scale=SCALE, seed=5)

    async def scenario(src):
        await src.lab.sleep(8.0)
        faults.inject_heart_rate_packets(src.strap, faults.garbage_packets(6, seed=1) + faults.truncated_heart_rate_packets())
        await src.lab.sleep(14.0)
        await faults.lose_contact(src.strap, 4.0)
        await src.lab.sleep(4.0)
        await faults.stall_notifications(src.strap, 5.0)
        await src.lab.sleep(6.0)

    packets = asyncio.run(_collect(source, scenario))
    beats, bad = _beats(packets)
    assert bad >= 5 and source.parse_errors == bad  # the truncated ones at least; garbage may parse by chance
    gaps = [b for b in beats if b.after_gap]
    assert len(gaps) >= 2  # after contact loss and after the stall
    assert all(250 <= b.rr_ms <= 2500 for b in beats)  # the bogus post-contact RR was filtered
    assert source.capabilities.rr_present is True and len(source.reconnects) == 0


def test_hr_only_strap_is_detected_and_says_so():
    source = open_source("virtual:hr-only", time_scale=SCALE, seed=2)

    async def scenario(src):
        await asyncio.wait_for(src.capabilities_decided.wait(), 20.0)

    packets = asyncio.run(_collect(source, scenario))
    assert source.capabilities.hr_only and source.capabilities.rr_present is False
    announced = [json.loads(p.data) for p in packets if p.characteristic == CAPABILITIES_CHARACTERISTIC]
    assert [(a["hr_only"], a["rr_present"]) for a in announced] == [(True, False)]
    assert _beats(packets)[0] == []


def test_h10_refuses_pmd_on_a_small_mtu_with_a_named_status(monkeypatch):
    from biosignals.lab import bumble_backend

    monkeypatch.setattr(bumble_backend, "REQUESTED_ATT_MTU", 185)  # a central that negotiates less than Polar needs
    source = open_source("virtual:h10", time_scale=SCALE)

    async def scenario(src):
        await src.lab.sleep(3.0)

    packets = asyncio.run(_collect(source, scenario))
    responses = [pmd.parse_control_point(p.data) for p in packets if p.characteristic == pmd.PMD_CONTROL_POINT_UUID]
    assert [r.status_name for r in responses] == ["INVALID_MTU", "INVALID_MTU"]
    assert source.capabilities.pmd_streaming == ()
    assert any(p.characteristic == HEART_RATE_MEASUREMENT_UUID for p in packets)  # heart rate goes on regardless


@pytest.mark.skipif(os.path.exists("/run/dbus/system_bus_socket"), reason="a D-Bus system bus (maybe BlueZ) is present")
def test_no_bluetooth_stack_is_one_actionable_line():
    # The real platform backend on a machine without an adapter or BlueZ: nothing is faked here.
    with pytest.raises(SensorError) as info:
        asyncio.run(BleStrapSource("00:11:22:33:44:55", connect_timeout_s=0.5).start())
    assert str(info.value) == NO_BLUETOOTH
    with pytest.raises(SensorError, match="virtual:hrs"):
        open_source("virtual:polar")


def test_strap_check_reads_what_the_strap_is_and_lets_go():
    """The Sensor screen's test connection: battery, location, RR, contact, PMD offer, heart rate; disconnected
    afterwards (the lab strap advertises again, so the session can connect)."""
    from biosignals.lab.strap_source import LabStrapSource
    from biosignals.sources import check_strap as check_spec
    from biosignals.sources.ble import check_strap

    h10 = asyncio.run(check_spec("virtual:h10"))
    caps = h10.capabilities
    assert (caps.battery_percent, caps.body_location, caps.rr_present, caps.contact_supported) == (87, "chest", True, True)
    assert caps.pmd_features == ("ACC", "ECG") and caps.pmd_streaming == (), "checking starts no PMD stream"
    assert 45 <= h10.heart_rate_bpm <= 110 and h10.contact_detected is True

    async def hr_only_then_reconnect():
        source = LabStrapSource("hr-only", time_scale=SCALE, use_pmd=False)
        result = await check_strap(source, timeout_s=30)
        return result, source._client is None

    hr_only, released = asyncio.run(hr_only_then_reconnect())
    assert hr_only.capabilities.rr_present is False and hr_only.capabilities.hr_only
    assert hr_only.heart_rate_bpm and released, "the link is closed after the check"
    with pytest.raises(SensorError, match="'replay:rec.jsonl' is not a Bluetooth strap"):
        asyncio.run(check_spec("replay:rec.jsonl"))
