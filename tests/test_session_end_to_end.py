"""Accelerated whole sessions through every stage: virtual strap -> parser -> estimator -> policy ->
generator -> arranger -> synth -> WAV/MIDI/JSON. Asserts that the physiology moved, the music followed, and
the audio is clean."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile

from wellness_app.engine import BLOCK_FRAMES
from wellness_app.session import SessionOptions, build_engine, run_offline
from wellness_app.storage import Store

LIMITER_CEILING = 0.8913  # -1 dBFS


def run(tmp_path: Path, protocol: str, minutes: float, synth: str = "auto", seed: int = 3) -> tuple[dict, np.ndarray, int]:
    options = SessionOptions(protocol=protocol, minutes=minutes, out_dir=tmp_path / protocol, synth=synth,
                             offline=True, seed=seed)
    engine, _ = build_engine(options)
    run_offline(engine)
    record = json.loads((options.out_dir / "session.json").read_text())
    audio, sample_rate = soundfile.read(options.out_dir / "session.wav", dtype="float32")
    return record, audio, sample_rate


def column(record: dict, name: str, t_from: float = 0, t_to: float = 1e9) -> np.ndarray:
    return np.array([r[name] for r in record["seconds"] if t_from <= r["t_s"] < t_to and r[name] is not None], float)


@pytest.fixture(scope="module")
def coherent(tmp_path_factory):
    return run(tmp_path_factory.mktemp("coherent"), "coherent-6", minutes=10)


def test_breathing_follows_the_guide_to_six_per_minute(coherent):
    record, _, _ = coherent
    guide_start, guide_end = column(record, "guide_rate_bpm")[[0, -1]]
    true_breathing = column(record, "virtual_breathing_rate_bpm")
    assert guide_start > 9, "iso principle: the guide starts near the listener's spontaneous rate"
    assert abs(guide_end - 6.0) < 0.3
    assert true_breathing[:20].mean() - true_breathing[-60:].mean() > 4, "the virtual listener slowed down"
    assert abs(true_breathing[-60:].mean() - 6.0) < 1.0, "and converged to the guide"
    estimated = column(record, "breathing_rate_bpm", t_from=480)
    assert abs(np.median(estimated) - 6.0) < 1.0, "the RR-based estimate sees it too"


def test_music_follows_the_policy(coherent):
    record, _, _ = coherent
    tempos = column(record, "tempo_bpm")
    assert np.ptp(tempos) > 3, "tempo changed over the session"
    for row in record["seconds"]:  # one breath spans whole beats
        assert row["tempo_bpm"] / row["beats_per_breath"] == pytest.approx(row["guide_rate_bpm"], rel=1e-3)
    assert all(d["reason"] for d in record["decisions"]), "every decision is traceable"


def test_swells_follow_the_breath(coherent):
    """The pad swells on the inhale and releases on the exhale: loudness at the end of each inhale
    is well above the loudness at the end of the exhale."""
    record, audio, sample_rate = coherent
    mono = audio.mean(axis=1)
    ratios = []
    for decision, following in zip(record["decisions"][2:-3], record["decisions"][3:-2]):
        start = int(decision["t_s"] * sample_rate)
        end = int(following["t_s"] * sample_rate)
        length = end - start
        inhale_end = start + int(length * decision["inhale_beats"] / decision["beats_per_breath"])
        window = int(0.5 * sample_rate)
        peak = np.sqrt(np.mean(mono[inhale_end - window:inhale_end] ** 2))
        trough = np.sqrt(np.mean(mono[end - window:end] ** 2))
        ratios.append(peak / trough)
    assert np.median(ratios) > 1.4, f"median inhale/exhale loudness ratio {np.median(ratios):.2f}"


def test_audio_is_clean(coherent):
    _, audio, sample_rate = coherent
    assert abs(audio.shape[0] / sample_rate - 600) <= 5.0, "ends on the breath boundary nearest 10 min (6/min)"
    rms_db = 20 * np.log10(np.sqrt(np.mean(audio ** 2)))
    assert rms_db > -35, f"RMS {rms_db:.1f} dBFS: too quiet"
    assert np.max(np.abs(audio)) <= LIMITER_CEILING + 1e-3, "no clipping: the limiter holds -1 dBFS"
    # A click at block boundaries would make the sample-to-sample jumps there larger than the jumps half a
    # block away (same number of samples, same music): compare the two distributions.
    jumps = np.abs(np.diff(audio, axis=0)).max(axis=1)
    boundaries = np.arange(BLOCK_FRAMES, audio.shape[0] - 1, BLOCK_FRAMES) - 1
    at_boundary, mid_block = jumps[boundaries], jumps[boundaries - BLOCK_FRAMES // 2]
    assert np.percentile(at_boundary, 99) <= 1.5 * np.percentile(mid_block, 99) + 1e-4, "no clicks at block boundaries"
    assert at_boundary.max() <= 2 * mid_block.max(), "no click at any block boundary"
    fade = np.abs(audio[:sample_rate // 10]).max()
    assert fade < 0.05, "fades in"
    assert np.abs(audio[-sample_rate // 10:]).max() < 0.02, "fades out"


def test_midi_file_matches_the_session(coherent, tmp_path_factory):
    record, _, _ = coherent
    midi_path = Path(record["settings"]["out_dir"]) / "session.mid"
    midi = mido.MidiFile(midi_path)
    assert abs(midi.length - 600) < 8
    notes = [m for track in midi.tracks for m in track if m.type == "note_on" and m.velocity > 0]
    assert len(notes) > 300


def test_hr_winddown_lowers_heart_rate(tmp_path):
    record, _, _ = run(tmp_path, "hr-winddown", minutes=8, seed=5)
    heart_rate = column(record, "heart_rate_bpm")
    tempo = column(record, "tempo_bpm")
    assert abs(tempo[0] - heart_rate[:10].mean()) < 8, "iso principle: tempo starts near the heart rate"
    assert heart_rate[:30].mean() - heart_rate[-30:].mean() > 3, "heart rate fell"
    assert tempo[0] - tempo[-1] > 5, "tempo descended"
    summary = record["summary"]
    assert summary["complete"] is True
    assert summary["heart_rate_bpm_end"] < summary["heart_rate_bpm_start"]


def test_builtin_synth_session_is_clean(tmp_path):
    _, audio, sample_rate = run(tmp_path, "coherent-6", minutes=1, synth="builtin")
    assert 20 * np.log10(np.sqrt(np.mean(audio ** 2))) > -35
    assert np.max(np.abs(audio)) <= LIMITER_CEILING + 1e-3


def heartsong(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wellness_app.cli", *args], capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("args, expected", [
    (["session", "--protocol", "nope", "--minutes", "1", "--offline"], "unknown protocol 'nope'"),
    (["session", "--protocol", "coherent-6", "--minutes", "1", "--offline", "--out", "/proc/heartsong"],
     "cannot write to output directory"),
    (["session", "--protocol", "coherent-6", "--minutes", "-1", "--offline"], "--minutes"),
])
def test_bad_input_is_one_line_and_exit_2(args, expected):
    result = heartsong(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], result.stderr


def test_malformed_protocol_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "bad"\nschema_version = 1\n[[phases]]\nname = "x"\nbreath_rate_bpm = 40\n')
    result = heartsong("session", "--protocol", str(bad), "--minutes", "1", "--offline", "--out", str(tmp_path / "o"))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_sound_device_asked_for_and_missing_is_refused_before_anything_is_recorded(tmp_path):
    out = tmp_path / "live"
    result = heartsong("session", "--protocol", "coherent-6", "--minutes", "1", "--device", "no-such-device",
                       "--out", str(out))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "--offline" in result.stderr
    assert not (out / "session.json").exists()
    with Store() as store:
        assert store.list_sessions() == [], "no empty session row is left behind"


def test_protocols_lists_the_library():
    result = heartsong("protocols")
    assert result.returncode == 0
    assert "coherent-6" in result.stdout and "hr-winddown" in result.stdout
