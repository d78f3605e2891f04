"""WAV and MIDI files: written, read back with soundfile and mido, with the right durations and timing."""
import mido
import numpy as np
import pytest
import soundfile

from generators.arranger import Arranger
from generators.controls import MusicControls
from generators.events import MidiMessage
from generators.output import WavWriter, write_midi
from generators.rules import RuleBasedGenerator

SR = 48000


def test_wav_writer_streams_blocks_and_reads_back(tmp_path):
    path = tmp_path / "out.wav"
    t = np.arange(SR * 2) / SR
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    stereo = np.stack([tone, -tone], axis=1)
    with WavWriter(path, SR) as wav:
        for start in range(0, len(stereo), 2400):
            wav.write(stereo[start:start + 2400])
        assert soundfile.info(path).frames == len(stereo)  # header valid mid-stream
    data, rate = soundfile.read(path, dtype="float32")
    assert rate == SR and data.shape == stereo.shape and soundfile.info(path).subtype == "PCM_16"
    assert np.abs(data - stereo).max() < 1e-4
    with WavWriter(tmp_path / "x.wav", SR) as wav, pytest.raises(ValueError, match=r"\(frames, 2\)"):
        wav.write(tone)


def test_wav_writer_names_an_unwritable_path(tmp_path):
    with pytest.raises(OSError, match="choose another output directory"):
        WavWriter(tmp_path / "missing-dir" / "out.wav", SR)


def test_midi_file_has_tempo_map_and_right_duration(tmp_path):
    arranger, generator = Arranger(SR), RuleBasedGenerator(seed=1)
    messages = arranger.initial_messages()
    tempo_changes, start, seconds = [], 0, 0.0
    for tempo in (60.0, 60.0, 75.0, 90.0):
        c = MusicControls(tempo_bpm=tempo, beats_per_breath=6, inhale_beats=2.5)
        bar_messages, n = arranger.arrange(generator.next_bar(c), c, start)
        messages += bar_messages
        if not tempo_changes or tempo_changes[-1][1] != tempo:
            tempo_changes.append((start, tempo))
        start += n
        seconds += 6 * 60 / tempo
    path = write_midi(tmp_path / "s.mid", messages, SR, tempo_changes)
    midi = mido.MidiFile(path)
    assert midi.type == 1 and len(midi.tracks) == 5  # tempo + melody, pad, bass, breath voice
    assert midi.length == pytest.approx(seconds, abs=0.01)
    tempos = [(m.time, round(mido.tempo2bpm(m.tempo), 3)) for m in midi.tracks[0] if m.type == "set_tempo"]
    assert [bpm for _, bpm in tempos] == [60.0, 75.0, 90.0]
    assert [tick for tick, _ in tempos] == [0, 12 * 480, 6 * 480]  # deltas: on bar boundaries
    # Each note lands at its frame: compare the absolute time of every note_on with its frame.
    frames = sorted(m.frame for m in messages if m.kind == "note_on")
    seconds_in_file, t = [], 0.0
    for m in midi:
        t += m.time
        if m.type == "note_on":
            seconds_in_file.append(t)
    assert np.allclose(sorted(seconds_in_file), np.array(frames) / SR, atol=2e-3)


def test_midi_without_tempo_changes_uses_120_bpm(tmp_path):
    messages = [MidiMessage(0, "note_on", 0, 60, 80), MidiMessage(SR, "note_off", 0, 60)]
    midi = mido.MidiFile(write_midi(tmp_path / "a.mid", messages, SR))
    assert midi.length == pytest.approx(1.0, abs=1e-3)
    assert [m.time for m in midi.tracks[1] if m.type.startswith("note")] == [0, 960]
