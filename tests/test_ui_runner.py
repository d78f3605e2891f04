"""The app's session runner without a window: the wall-clock stand-in for a sound card, pausing, stopping an
accelerated session early, and reading the bar being heard without disturbing the engine's schedule."""
from __future__ import annotations

import asyncio
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from wellness_app.engine import ScheduledBar
from wellness_app.session import SessionOptions, build_engine
from wellness_app.ui.runner import SessionRunner, WallClockPlayer


def test_wall_clock_player_plays_in_real_time_pauses_and_counts_late_audio():
    player = WallClockPlayer(sample_rate=1000, buffer_s=2.0)
    player.open()
    player.write(np.zeros((500, 2)))
    time.sleep(0.2)
    played = player.frames_played
    assert 150 <= played <= 500, played  # 0.2 s at 1000 frames/s (or more on a loaded machine)
    player.pause()
    held = player.frames_played
    time.sleep(0.1)
    assert player.frames_played == held, "paused: the music clock stands still"
    player.resume()
    time.sleep(0.5)
    assert player.frames_played == 500, "the clock never runs past the audio written"
    assert player.underruns >= 1, "running dry is counted"
    player.end_of_stream()
    before = player.underruns
    time.sleep(0.05)
    player.frames_played
    assert player.underruns == before, "after the end of the stream silence is not an underrun"


def test_accelerated_session_stops_early_and_keeps_its_record(tmp_path, monkeypatch):
    monkeypatch.setenv("HEARTSONG_DATA_DIR", str(tmp_path / "data"))
    options = SessionOptions(protocol="coherent-6", minutes=1.0, out_dir=tmp_path / "s", sensor="virtual")
    runner = SessionRunner.create(options, accelerated_speed=20.0)

    async def run():
        runner.start()
        while runner.view().elapsed_s < 5:
            await asyncio.sleep(0.01)
        view = runner.view()
        assert view.guide_phase is not None and view.protocol_phase
        await runner.stop()

    asyncio.run(run())
    assert runner.status == "finished" and runner.done
    record = json.loads((tmp_path / "s" / "session.json").read_text())
    assert record["summary"]["complete"] is False
    assert 5 <= len(record["seconds"]) < 60
    assert (tmp_path / "s" / "session.wav").stat().st_size > 48000 * 4 * 5


def test_sounding_bar_reads_without_popping():
    engine, _ = build_engine(SessionOptions(minutes=1, out_dir=Path(tempfile.mkdtemp()), offline=True))
    engine.bars.extend(ScheduledBar(start, 100, None) for start in (0, 100, 250))
    assert engine.sounding_bar(50).start_frame == 0
    assert engine.sounding_bar(100).start_frame == 100
    assert engine.sounding_bar(999).start_frame == 250
    assert len(engine.bars) == 3
