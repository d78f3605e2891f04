"""Listening properties of short renders through the phrase plan, on FluidSynth (FluidR3) and the built-in synth:
a breath swell that follows the guide's arc, no sudden rises, mono-safe stereo, headroom without limiting, and a
session that ends on a cadence at a breath boundary. The loudness meter is checked against pyloudnorm."""
import numpy as np
import pytest

from generators import listening
from generators.controls import MusicControls
from generators.mastering import Master
from generators.model import ModelGenerator
from generators.render import render_bars
from generators.synth import BuiltinSynth
from generators.synth.fluid import FluidSynthSynth, default_soundfont

SR = 48000
BREATH = MusicControls(tempo_bpm=60, beats_per_breath=10, inhale_beats=4, density=0.75, volume=0.65)
BARS = 7


def render(synth) -> tuple[np.ndarray, Master]:
    master = Master(SR, fade_in_s=0.0, makeup_db=synth.makeup_db)
    audio = render_bars(ModelGenerator(seed=5, backend="numpy"), [BREATH] * BARS, synth, SR, master=master)
    return audio, master


def fluidsynth_or_skip():
    soundfont = default_soundfont()
    if soundfont is None:
        pytest.skip("no General MIDI SoundFont installed (apt-get install fluid-soundfont-gm)")
    try:
        return FluidSynthSynth(soundfont, SR)
    except (ImportError, OSError) as error:
        pytest.skip(f"FluidSynth unavailable: {error}")


@pytest.fixture(scope="module", params=["fluidsynth", "builtin"])
def rendered(request):
    synth = fluidsynth_or_skip() if request.param == "fluidsynth" else BuiltinSynth(SR)
    audio, master = render(synth)
    synth.close()
    return audio, master


def breaths(audio: np.ndarray) -> list[tuple[float, float, float]]:
    period = BREATH.breath_period_s
    return [(k * period, (k + 1) * period, BREATH.inhale_fraction) for k in range(1, BARS - 1)]


def test_swell_is_6_to_12_lu_and_follows_the_guides_arc(rendered):
    audio, _ = rendered
    times, lufs = listening.loudness_envelope(audio, SR)
    swells = listening.breath_swells(times, lufs, breaths(audio))
    swing, r = np.array(swells).T
    assert 6 <= np.median(swing) <= 12, swing
    assert np.median(r) >= 0.7, r
    body = times < (BARS - 1) * BREATH.breath_period_s
    assert lufs[body].min() > -45, "never silent at the end of an exhale"


def test_no_level_rise_over_6_db_within_200_ms(rendered):
    audio, _ = rendered
    times, lufs = listening.loudness_envelope(audio, SR, window_s=0.1, hop_s=0.01)
    body = times < (BARS - 1) * BREATH.breath_period_s
    assert np.percentile(listening.level_rises_db(times[body], lufs[body], 0.2), 99) <= 6


def test_stereo_is_mono_safe(rendered):
    audio, _ = rendered
    assert listening.stereo_correlation(audio) >= 0.3
    assert listening.mono_fold_loss_db(audio, SR) >= -3


def test_headroom_by_design_the_limiter_stays_out(rendered):
    audio, master = rendered
    assert master.limited_frames <= 0.001 * len(audio)
    assert np.abs(audio).max() < 10 ** (-2 / 20)


def test_the_last_breath_ends_on_the_tonic_triad_and_fades_to_silence():
    synth = BuiltinSynth(SR)
    master = Master(SR, fade_in_s=0.0, makeup_db=synth.makeup_db)
    bar_frames = int(BREATH.breath_period_s * SR)
    master.begin_fade_out(BREATH.breath_period_s, start_frame=(3 - 1) * bar_frames)
    audio = render_bars(ModelGenerator(seed=5, backend="numpy"), [BREATH] * 3, synth, SR, master=master)
    assert len(audio) == 3 * bar_frames and np.abs(audio[-SR // 20:]).max() < 1e-3
    tail = audio[-3 * SR:-2 * SR, 0].astype(float)
    spectrum = np.abs(np.fft.rfft(tail * np.hanning(len(tail))))
    freqs = np.fft.rfftfreq(len(tail), 1 / SR)
    pitch_classes = np.round(12 * np.log2(freqs[1:] / 440.0) + 69).astype(int) % 12
    energy = np.bincount(pitch_classes, weights=spectrum[1:] ** 2, minlength=12)
    assert set(np.argsort(energy)[-3:]) <= {2, 6, 9}, "the final chord is D major (D F# A)"


def test_loudness_meter_matches_pyloudnorm():
    pyloudnorm = pytest.importorskip("pyloudnorm")
    rng = np.random.default_rng(0)
    noise = rng.standard_normal((5 * SR, 2)) * np.array([0.05, 0.02])
    tone = 0.1 * np.sin(2 * np.pi * 997 * np.arange(5 * SR) / SR)
    for signal in (noise, np.column_stack([tone, tone])):
        reference = pyloudnorm.Meter(SR).integrated_loudness(signal)
        _, lufs = listening.loudness_envelope(signal, SR, window_s=5.0, hop_s=1.0)
        assert lufs[0] == pytest.approx(reference, abs=0.05)


def test_anti_phase_stereo_is_caught():
    t = np.arange(SR) / SR
    wave = np.sin(2 * np.pi * 220 * t)
    assert listening.stereo_correlation(np.column_stack([wave, -wave])) == pytest.approx(-1)
    assert listening.mono_fold_loss_db(np.column_stack([wave, -0.9 * wave]), SR) < -15
    assert listening.mono_fold_loss_db(np.column_stack([wave, wave]), SR) == pytest.approx(0, abs=1e-9)
