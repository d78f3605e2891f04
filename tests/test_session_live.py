"""A live session played through a real PortAudio stream into JACK's dummy driver (a clocked virtual sound
card; this machine has no sound card), with the virtual strap streaming on host time."""
import json
import os
import subprocess
import sys
from pathlib import Path

import soundfile

ROOT = Path(__file__).resolve().parents[1]


def test_live_session_plays_in_real_time_without_underruns(jack_server, tmp_path):
    out = tmp_path / "live"
    env = os.environ | {"JACK_DEFAULT_SERVER": jack_server, "JACK_NO_START_SERVER": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "wellness_app.cli", "session", "--protocol", "coherent-6", "--minutes", "0.4",
         "--out", str(out)], env=env, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    record = json.loads((out / "session.json").read_text())
    assert record["summary"]["complete"] is True
    assert abs(len(record["seconds"]) - 24) <= 4  # ends on the breath boundary nearest 24 s (breaths <= 7 s here)
    assert record["summary"]["beats"] > 15, "the virtual strap streamed beats on host time"
    audio_events = [e["message"] for e in record["events"] if e["kind"] == "audio"]
    assert audio_events and audio_events[0].startswith("0 underruns"), audio_events
    info = soundfile.info(out / "session.wav")
    assert abs(info.duration - 24.0) <= 3.5 and abs(info.duration - len(record["seconds"])) <= 1
    assert (out / "session.json").stat().st_mode & 0o077 == 0, "health data readable by the user alone"
