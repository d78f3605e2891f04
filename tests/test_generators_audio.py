"""Synthesis chain as audio: built-in synth, sequencer timing, mastering limiter/fades, FluidSynth with FluidR3."""
import numpy as np
import pytest

from generators.controls import MusicControls
from generators.events import MidiMessage
from generators.mastering import CEILING, Master
from generators.render import render_bars
from generators.rules import RuleBasedGenerator
from generators.sequencer import Sequencer
from generators.synth import BuiltinSynth, open_synth
from generators.synth.fluid import FluidSynthSynth, default_soundfont

SR = 48000
CONTROLS = MusicControls(tempo_bpm=72, beats_per_breath=8, inhale_beats=3, density=1.5)  # 6.67 s bars


def dbfs(x: np.ndarray) -> float:
    return 20 * np.log10(np.sqrt(np.mean(np.square(x, dtype=np.float64))) + 1e-20)


@pytest.fixture(scope="module")
def eight_bars_builtin() -> np.ndarray:
    return render_bars(RuleBasedGenerator(seed=1), [CONTROLS] * 8, BuiltinSynth(SR), SR, block_frames=480)


def test_builtin_render_is_audible_and_mastered_within_ceiling(eight_bars_builtin):
    raw = eight_bars_builtin
    assert len(raw) == round(8 * 8 * 60 / 72 * SR)
    assert dbfs(raw) > -40
    mastered = Master(SR).process(raw * 8.0)  # 18 dB hotter than normal: the limiter must hold
    assert np.abs(mastered).max() <= CEILING + 1e-6
    assert dbfs(mastered[SR * 5:]) > dbfs(raw[SR * 5:])  # limited, not muted


def test_builtin_output_does_not_depend_on_block_size(eight_bars_builtin):
    big_blocks = render_bars(RuleBasedGenerator(seed=1), [CONTROLS] * 8, BuiltinSynth(SR), SR, block_frames=4096)
    assert np.abs(big_blocks - eight_bars_builtin).max() < 1e-4  # float32 rounding only, no seams


def test_builtin_has_no_clicks(eight_bars_builtin):
    jumps = np.abs(np.diff(eight_bars_builtin, axis=0)).max(axis=1)
    assert jumps.max() < 3 * np.percentile(jumps, 99.9)  # no step stands out of the signal's own slopes


def test_breath_swell_is_audible_in_the_builtin_render(eight_bars_builtin):
    bar = round(8 * 60 / 72 * SR)
    beat = bar // 8
    second_bar = eight_bars_builtin[bar:2 * bar]
    inhale_end = dbfs(second_bar[2 * beat:3 * beat + beat // 2])
    exhale_end = dbfs(second_bar[-beat:])
    assert inhale_end - exhale_end > 4


def test_sequencer_applies_messages_at_their_exact_frame():
    synth = BuiltinSynth(SR)
    sequencer = Sequencer(synth)
    sequencer.schedule([MidiMessage(0, "program_change", 0, 32), MidiMessage(1234, "note_on", 0, 45, 100),
                        MidiMessage(5000, "note_off", 0, 45)])
    audio = np.concatenate([sequencer.render(1000), sequencer.render(1000)])
    assert np.abs(audio[:1234]).max() == 0
    assert np.abs(audio[1235:1300]).max() > 0
    with pytest.raises(ValueError, match="in the past"):
        sequencer.schedule([MidiMessage(10, "note_on", 0, 50, 80)])


def test_master_fades_and_is_continuous_across_blocks():
    rng = np.random.default_rng(0)
    signal = (0.5 * rng.standard_normal((SR * 6, 2))).astype(np.float32)
    one, blocks = Master(SR, fade_in_s=3.0), Master(SR, fade_in_s=3.0)
    whole = one.process(signal)
    pieces = np.concatenate([blocks.process(signal[i:i + 777]) for i in range(0, len(signal), 777)])
    assert np.abs(whole - pieces).max() < 1e-6
    assert np.abs(whole[:480]).max() < 0.01  # the fade-in starts from silence
    assert np.abs(whole).max() <= CEILING
    fading = Master(SR, fade_in_s=0)
    fading.process(signal[:SR])
    fading.begin_fade_out(1.0)
    tail = fading.process(signal[SR:3 * SR])
    assert np.abs(tail[SR:]).max() == 0 and fading.faded_out
    assert np.abs(tail[:SR // 10]).max() > 0.3  # fades, does not cut


def test_builtin_voice_limit_steals_without_clicks():
    synth = BuiltinSynth(SR, max_voices=4)
    synth.program_change(0, 89)
    out = [synth.render(SR // 2)]
    for key in range(60, 72):
        synth.note_on(0, key, 90)
        out.append(synth.render(2400))
    audio = np.concatenate(out + [synth.render(SR)])
    assert sum(v.release_age is None for v in synth.voices) <= 4
    jumps = np.abs(np.diff(audio, axis=0)).max(axis=1)
    assert jumps.max() < 3 * np.percentile(jumps, 99.9)


def test_open_synth_kinds():
    synth, notice = open_synth("builtin", SR)
    assert isinstance(synth, BuiltinSynth) and notice is None
    with pytest.raises(ValueError, match="use auto, fluidsynth or builtin"):
        open_synth("csound")


@pytest.mark.skipif(default_soundfont() is None, reason="no General MIDI SoundFont installed")
def test_fluidsynth_with_fluidr3_renders_the_arrangement():
    pytest.importorskip("fluidsynth", exc_type=ImportError)
    synth, notice = open_synth("auto", SR)
    assert isinstance(synth, FluidSynthSynth) and notice is None
    assert synth.soundfont.name == "FluidR3_GM.sf2"
    audio = render_bars(RuleBasedGenerator(seed=1), [CONTROLS] * 2, synth, SR, block_frames=2400)
    synth.close()
    assert audio.dtype == np.float32 and audio.shape == (round(2 * 8 * 60 / 72 * SR), 2)
    assert dbfs(audio) > -40
    assert np.abs(audio).max() < 1.0
    again = FluidSynthSynth(default_soundfont(), SR)
    same = render_bars(RuleBasedGenerator(seed=1), [CONTROLS] * 2, again, SR, block_frames=480)
    again.close()
    assert np.abs(same - audio).max() < 1e-3  # offline rendering: block size does not move events


def test_fluidsynth_rejects_a_missing_soundfont(tmp_path):
    with pytest.raises(FileNotFoundError, match="install fluid-soundfont-gm"):
        FluidSynthSynth(tmp_path / "none.sf2", SR)
