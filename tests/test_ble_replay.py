"""Recording a live (virtual BLE) session to JSON Lines, replaying it byte-exact, and rejecting damaged files in one line."""
from __future__ import annotations

import asyncio
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from biosignals.heart_rate_measurement import HEART_RATE_MEASUREMENT_UUID
from biosignals.sources import open_source
from biosignals.sources.base import SensorError
from biosignals.sources.replay import ReplaySource, load_recording, record_session
from generators.output import create_file


async def _replay_all(path, speed):
    source = ReplaySource(path, speed=speed)
    await source.start()
    packets = [p async for p in source.packets()]
    await source.stop()
    return packets


def test_record_then_replay_reproduces_packets_and_timing(tmp_path):
    path = tmp_path / "h10.jsonl"
    source = open_source("virtual:h10", time_scale=8.0, seed=1)
    count = asyncio.run(record_session(source, 3.0 / 60.0, lambda: create_file(path), sensor="virtual:h10"))  # 3 s real = 24 s of strap time
    header, recorded = load_recording(path)
    assert header["sensor"] == "virtual:h10" and count == len(recorded) > 50
    assert any(p.characteristic == HEART_RATE_MEASUREMENT_UUID for p in recorded)

    replayed = asyncio.run(_replay_all(path, speed=0))
    assert [(p.characteristic, p.data) for p in replayed] == [(p.characteristic, p.data) for p in recorded]
    offsets = [b.t_arrival - replayed[0].t_arrival for b in replayed]
    assert offsets == pytest.approx([p.t_arrival for p in recorded], abs=1e-6)


def test_replay_through_open_source_paces_in_real_time(tmp_path):
    path = tmp_path / "tiny.jsonl"
    lines = [{"format": "heartsong-sensor-recording", "version": 1, "source": "t", "sensor": "", "started_unix_s": 0}]
    lines += [{"t": 0.1 * i, "c": HEART_RATE_MEASUREMENT_UUID, "d": "1048" + "0004"} for i in range(4)]
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")

    async def run():
        source = open_source(f"replay:{path}")
        await source.start()
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        packets = [p async for p in source.packets()]
        return packets, loop.time() - t0

    packets, elapsed = asyncio.run(run())
    assert len(packets) == 4 and elapsed >= 0.29
    assert packets[-1].t_arrival - packets[0].t_arrival == pytest.approx(0.3, abs=1e-6)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("", "not a JSON header"),
        ("import os\n", "not a JSON header"),
        ('{"format": "other"}\n', "not a Heartsong sensor recording"),
        ('{"format": "heartsong-sensor-recording", "version": 9}\n', "format version 9"),
        ('{"format": "heartsong-sensor-recording", "version": 1}\n{"t": 0, "c": "x"}\n', "line 2 is not a packet"),
        ('{"format": "heartsong-sensor-recording", "version": 1}\n{"t": 1, "c": "x", "d": "00"}\n{"t": 0.5, "c": "x", "d": "00"}\n', "line 3"),
        ('{"format": "heartsong-sensor-recording", "version": 1}\n{"t": 0, "c": "x", "d": "zz"}\n', "line 2"),
    ],
)
def test_damaged_recordings_fail_with_one_line(tmp_path, content, problem):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(SensorError, match=problem) as info:
        load_recording(path)
    assert "\n" not in str(info.value)


def test_missing_recording_names_the_path(tmp_path):
    with pytest.raises(SensorError, match="cannot be read"):
        load_recording(tmp_path / "nope.jsonl")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=300))
def test_loader_raises_only_sensor_error_on_arbitrary_bytes(tmp_path, body):
    path = tmp_path / "fuzz.jsonl"
    path.write_bytes(b'{"format": "heartsong-sensor-recording", "version": 1}\n' + body)
    try:
        load_recording(path)
    except SensorError as exc:
        assert "\n" not in str(exc)
