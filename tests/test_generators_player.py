"""LivePlayer against a real PortAudio stream: JACK's dummy driver stands in for a sound card (this machine has
none). Each check runs in a subprocess because PortAudio reads JACK_DEFAULT_SERVER once, when it initialises."""
import json
import os
import subprocess
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]

PLAY_SCRIPT = r"""
import json, time
import numpy as np
from generators.player import LivePlayer
sr = 48000
t = np.arange(sr * 3) / sr
tone = np.repeat((0.2 * np.sin(2 * np.pi * 330 * t))[:, None], 2, axis=1).astype(np.float32)
player = LivePlayer(sr, buffer_s=0.5).open()
start = time.monotonic()
for i in range(0, sr * 2, 2400):  # 2 s written in 50 ms blocks, blocking while the buffer is full
    player.write(tone[i:i + 2400])
underruns_while_playing = player.underruns
player.drain(5.0)
elapsed = time.monotonic() - start
player.close()
print(json.dumps({"callbacks": player.callbacks, "played": player.frames_played, "elapsed": elapsed,
                  "underruns": underruns_while_playing, "underruns_total": player.underruns}))
"""

PAUSE_SCRIPT = r"""
import json, time
import numpy as np
from generators.player import LivePlayer
sr = 48000
tone = np.full((sr * 2, 2), 0.5, dtype=np.float32)
player = LivePlayer(sr, buffer_s=2.5, prefill_s=0.1).open()
player.write(tone)
time.sleep(0.5)
player.pause()
time.sleep(0.3)
held = player.frames_played
time.sleep(0.5)
still = player.frames_played
player.set_gain(0.25)
player.resume()
time.sleep(0.3)
player.close()
print(json.dumps({"held": held, "still": still, "after": player.frames_played, "underruns": player.underruns,
                  "gain_now": player._gain_now}))
"""

OPEN_SCRIPT = r"""
from generators.player import AudioDeviceError, LivePlayer
try:
    LivePlayer().open()
except AudioDeviceError as error:
    print("ERROR:", error)
"""


def run_python(script: str, server: str) -> subprocess.CompletedProcess:
    env = os.environ | {"JACK_DEFAULT_SERVER": server, "JACK_NO_START_SERVER": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60,
                          cwd=ROOT)


def test_live_player_streams_without_underruns(jack_server):
    result = run_python(PLAY_SCRIPT, jack_server)
    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stdout.strip().splitlines()[-1])
    assert stats["played"] == 2 * 48000  # every frame written reached the device
    assert stats["callbacks"] >= 150  # 480-frame periods: ~200 in 2 s
    assert stats["underruns"] == 0
    assert stats["elapsed"] >= 1.8  # paced by the device clock, not faster


def test_open_without_output_device_names_the_fix():
    result = run_python(OPEN_SCRIPT, f"hs_no_such_server_{os.getpid()}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith("ERROR: no audio output device:")
    assert result.stdout.strip().endswith("use --offline to render files")
    assert len(result.stdout.strip().splitlines()) == 1


def test_pause_holds_the_music_clock_and_volume_glides(jack_server):
    result = run_python(PAUSE_SCRIPT, jack_server)
    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stdout.strip().splitlines()[-1])
    assert stats["held"] == stats["still"], "paused: nothing consumed, the music clock stands still"
    assert stats["after"] > stats["still"], "resumed where it stopped"
    assert stats["underruns"] == 0, "a pause is not an underrun"
    assert stats["gain_now"] == 0.25, "the volume reached its new level (within the 50 ms glide)"
