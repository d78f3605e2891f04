"""A simulated listener whose breathing follows a breath guide and whose heart beats show it: the virtual strap's body.

Model, integrated in fixed steps of ``dt`` seconds (all rates per minute, times in seconds):

Breathing is a phase oscillator, phase 0-1 with 0 = start of inhale, inhale lasting ``inhale_fraction`` of
the breath. Its intrinsic rate relaxes toward a target with a first-order lag (``rate_lag_s``, 30 s): the
pacer's rate when a pacer is set (``set_pacer``), otherwise the personal spontaneous rate
(``spontaneous_rate_bpm``, 14). A slow random walk (Ornstein-Uhlenbeck, 60 s, sd ``rate_wander_bpm``) is
added to the target, and each breath draws its own rate factor (sd ``breath_jitter``, 5 %). A listener made with ``follows_guide=False`` hears the pacer
and ignores it (the test case for "following the guide" that must not be fooled). When the pacer
gives a phase, a weak coupling (``phase_coupling``, 0.15/s) pulls the breath phase toward the guide's, so a
listener whose rate has converged locks onto the guide; it can shift the rate by at most
``60 * phase_coupling / 2 pi`` breaths/min, so it never drags the rate by itself. ``breathing_rate_bpm``
is the resulting true instantaneous rate.

Chest expansion (0-1) rises as a half cosine over the inhale and falls over the exhale. ``chest_ecg_uv`` draws
the chest ECG a strap would record from the beats and the chest expansion (the virtual H10 and the breathing
scenarios use it).

Heart rate = baseline + respiratory sinus arrhythmia (RSA) + very-low-frequency (VLF) drift + a Mayer wave:

- RSA = ``A(rate) * (2 * chest_expansion - 1)``: HR rises on inhale and falls on exhale, trough at the
  start of inhale. ``A`` (bpm, half peak-to-trough) is a resonance curve peaking at
  ``resonance_rate_bpm`` (6/min): ``A = rsa_base + (rsa_peak - rsa_base) / (1 + ((rate - resonance) / 2.5)^2)``,
  9 bpm at 6/min, 2.6 bpm at 12/min with the defaults.
- Baseline relaxes (time constant ``hr_relax_s``, 90 s) toward ``resting_hr_bpm`` when breathing is slower
  than about 8/min (logistic weight centred on 8/min, width 0.7/min) and toward ``initial_hr_bpm``
  otherwise, plus a slow random walk (60 s, sd ``hr_wander_bpm``).
- Tempo pull (``set_hr_pull``): music slower than the baseline lowers its target by 10 % of the
  difference, at most ``max_hr_pull_bpm`` (2 bpm). Deliberately small: entrainment of heart rate to
  musical tempo is a weak, contested effect, and the model must not make music look more potent than it is.
- VLF: an Ornstein-Uhlenbeck process (time constant ``VLF_TIME_CONSTANT_S``, 20 s; sd ``vlf_rms_bpm``, 1.8 bpm,
  about 21 ms of RR at 72 bpm), on top of the 60 s baseline wander.
- Mayer wave: narrow-band noise around ``mayer_frequency_hz`` (0.1 Hz = 6/min, the guide's usual rate), a
  damped complex oscillator driven by noise (Lorentzian spectrum, half-power width ``mayer_bandwidth_hz``,
  0.02 Hz), sd ``mayer_rms_bpm`` (2.2 bpm, about 25 ms of RR: real Mayer waves are 20-35 ms RMS, stronger than
  the RSA of breathing at 15/min, which is 1.4 bpm RMS here). So RR alone shows power at 6/min whether or not
  the listener follows a 6/min guide, as on a real person.

Beats come from integrate-and-fire on the instantaneous HR: a beat fires when the integral of HR/60
reaches a threshold of 1 + N(0, ``beat_jitter``) (1.5 %, beat-to-beat noise). With probability
``ectopic_probability`` (0.5 %) per beat the next beat is premature (threshold 0.65-0.75) and the one after
it makes up the difference (a full compensatory pause: the pair spans two normal intervals).

Everything random comes from one ``numpy.random.Generator`` seeded by ``seed``: the same seed and the same
calls give the same beats.
"""
from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

TWO_PI = 2.0 * math.pi
OU_TIME_CONSTANT_S = 60.0
VLF_TIME_CONSTANT_S = 20.0


class VirtualListener:
    """A deterministic, seeded simulated body. Drive it with ``set_pacer``/``set_hr_pull`` and ``advance(t)``."""

    def __init__(
        self,
        seed: int = 0,
        *,
        dt: float = 0.05,
        initial_hr_bpm: float = 72.0,
        resting_hr_bpm: float = 62.0,
        spontaneous_rate_bpm: float = 14.0,
        inhale_fraction: float = 0.4,
        rate_lag_s: float = 30.0,
        rate_wander_bpm: float = 0.4,
        breath_jitter: float = 0.05,
        phase_coupling: float = 0.15,
        resonance_rate_bpm: float = 6.0,
        rsa_peak_bpm: float = 9.0,
        rsa_base_bpm: float = 1.5,
        hr_relax_s: float = 90.0,
        hr_wander_bpm: float = 1.0,
        max_hr_pull_bpm: float = 2.0,
        vlf_rms_bpm: float = 1.8,
        mayer_rms_bpm: float = 2.2,
        mayer_frequency_hz: float = 0.1,
        mayer_bandwidth_hz: float = 0.02,
        follows_guide: bool = True,
        beat_jitter: float = 0.015,
        ectopic_probability: float = 0.005,
    ) -> None:
        if not 0.1 <= inhale_fraction <= 0.9:
            raise ValueError(f"inhale_fraction {inhale_fraction} is outside 0.1-0.9: use e.g. 0.4")
        if not 0.001 <= dt <= 0.1:
            raise ValueError(f"dt {dt} s is outside 0.001-0.1 s: beats need a step well below one RR interval")
        self.dt = dt
        self.initial_hr_bpm = initial_hr_bpm
        self.resting_hr_bpm = resting_hr_bpm
        self.spontaneous_rate_bpm = spontaneous_rate_bpm
        self.inhale_fraction = inhale_fraction
        self.rate_lag_s = rate_lag_s
        self.rate_wander_bpm = rate_wander_bpm
        self.breath_jitter = breath_jitter
        self.phase_coupling = phase_coupling
        self.resonance_rate_bpm = resonance_rate_bpm
        self.rsa_peak_bpm = rsa_peak_bpm
        self.rsa_base_bpm = rsa_base_bpm
        self.hr_relax_s = hr_relax_s
        self.hr_wander_bpm = hr_wander_bpm
        self.max_hr_pull_bpm = max_hr_pull_bpm
        self.vlf_rms_bpm = vlf_rms_bpm
        self.mayer_rms_bpm = mayer_rms_bpm
        self.mayer_frequency_hz = mayer_frequency_hz
        self.mayer_bandwidth_hz = mayer_bandwidth_hz
        self.follows_guide = follows_guide
        self.beat_jitter = beat_jitter
        self.ectopic_probability = ectopic_probability

        self._rng = np.random.default_rng(seed)
        self._t = 0.0
        self._pacer_rate: float | None = None
        self._pacer_phase: float | None = None
        self._pacer_t = 0.0
        self._tempo_bpm: float | None = None

        self._intrinsic_rate = spontaneous_rate_bpm
        self._rate_wander = 0.0
        self._breath_factor = 1.0 + breath_jitter * self._rng.standard_normal()
        self._breath_phase = float(self._rng.random())
        self._breath_rate = spontaneous_rate_bpm * self._breath_factor
        self._hr_baseline = initial_hr_bpm
        self._hr_wander = 0.0
        self._vlf = vlf_rms_bpm * self._rng.standard_normal()
        self._mayer = mayer_rms_bpm * complex(*self._rng.standard_normal(2))
        self._beat_integral = float(self._rng.random())  # where in the cardiac cycle the session starts
        self._thresholds: list[float] = []
        self._heart_rate = self._instantaneous_hr()

    # -- inputs -----------------------------------------------------------------------------------
    def set_pacer(self, rate_bpm: float | None, phase: float | None = None) -> None:
        """The breath guide the listener hears now: its rate (breaths/min, None = no guide) and phase (0-1, 0 = inhale)."""
        if rate_bpm is not None and not 1.0 <= rate_bpm <= 40.0:
            raise ValueError(f"pacer rate {rate_bpm} breaths/min is outside 1-40: pass None to remove the guide")
        self._pacer_rate = rate_bpm
        self._pacer_phase = None if rate_bpm is None or phase is None else phase % 1.0
        self._pacer_t = self._t

    def set_hr_pull(self, tempo_bpm: float | None) -> None:
        """The music's tempo (beats/min, None = no music): a slower tempo lowers the HR target a little (see module doc)."""
        self._tempo_bpm = tempo_bpm

    # -- ground truth -----------------------------------------------------------------------------
    @property
    def t(self) -> float:
        """Simulated seconds since the start, up to which the listener has been advanced."""
        return self._t

    @property
    def breathing_rate_bpm(self) -> float:
        """True instantaneous breathing rate, breaths/min (includes this breath's jitter and the phase pull)."""
        return self._breath_rate

    @property
    def breath_phase(self) -> float:
        """True breath phase 0-1, 0 = start of inhale, ``inhale_fraction`` = start of exhale."""
        return self._breath_phase

    @property
    def chest_expansion(self) -> float:
        """Chest expansion 0 (end of exhale) to 1 (end of inhale), for a future accelerometer model."""
        return self._chest(self._breath_phase)

    @property
    def heart_rate_bpm(self) -> float:
        """True instantaneous heart rate, beats/min: baseline + RSA + VLF + Mayer wave."""
        return self._heart_rate

    @property
    def baseline_hr_bpm(self) -> float:
        """The slow heart-rate baseline, beats/min, without the respiratory and Mayer oscillations."""
        return self._hr_baseline + self._hr_wander

    @property
    def rsa_amplitude_bpm(self) -> float:
        """Half peak-to-trough RSA at the current breathing rate, beats/min."""
        return self._rsa_amplitude(self._breath_rate)

    # -- simulation -------------------------------------------------------------------------------
    def advance(self, t: float) -> list[float]:
        """Simulate up to ``t`` seconds since the start; return the times (s) of the beats that fired, in order."""
        beats = []
        while self._t + self.dt <= t + 1e-12:
            fired = self._step()
            if fired is not None:
                beats.append(fired)
        return beats

    def _step(self) -> float | None:
        dt = self.dt
        rng = self._rng
        decay = math.exp(-dt / OU_TIME_CONSTANT_S)
        noise = math.sqrt(1.0 - decay * decay)

        # breathing
        self._rate_wander = decay * self._rate_wander + noise * self.rate_wander_bpm * rng.standard_normal()
        guided = self._pacer_rate is not None and self.follows_guide
        target = self._pacer_rate if guided else self.spontaneous_rate_bpm
        self._intrinsic_rate += (target + self._rate_wander - self._intrinsic_rate) * dt / self.rate_lag_s
        cycles_per_s = max(self._intrinsic_rate * self._breath_factor, 1.0) / 60.0
        if guided and self._pacer_phase is not None:
            guide = self._pacer_phase + self._pacer_rate / 60.0 * (self._t - self._pacer_t)
            cycles_per_s += self.phase_coupling * math.sin(TWO_PI * (guide - self._breath_phase)) / TWO_PI
        self._breath_rate = 60.0 * cycles_per_s
        self._breath_phase += cycles_per_s * dt
        if self._breath_phase >= 1.0:
            self._breath_phase -= 1.0
            self._breath_factor = 1.0 + self.breath_jitter * rng.standard_normal()

        # heart-rate baseline
        slow = 1.0 / (1.0 + math.exp((self._breath_rate - 8.0) / 0.7))  # 1 when breathing well below 8/min
        hr_target = self.initial_hr_bpm + (self.resting_hr_bpm - self.initial_hr_bpm) * slow
        if self._tempo_bpm is not None and self._tempo_bpm < hr_target:
            hr_target -= min(0.1 * (hr_target - self._tempo_bpm), self.max_hr_pull_bpm)
        self._hr_baseline += (hr_target - self._hr_baseline) * dt / self.hr_relax_s
        self._hr_wander = decay * self._hr_wander + noise * self.hr_wander_bpm * rng.standard_normal()
        vlf_decay = math.exp(-dt / VLF_TIME_CONSTANT_S)
        self._vlf = vlf_decay * self._vlf + math.sqrt(1.0 - vlf_decay ** 2) * self.vlf_rms_bpm * rng.standard_normal()
        damping = math.pi * self.mayer_bandwidth_hz
        rotation = complex(math.cos(TWO_PI * self.mayer_frequency_hz * dt), math.sin(TWO_PI * self.mayer_frequency_hz * dt))
        kick = math.sqrt(1.0 - math.exp(-2.0 * damping * dt)) * self.mayer_rms_bpm
        self._mayer = self._mayer * rotation * math.exp(-damping * dt) + kick * complex(*rng.standard_normal(2))

        # integrate and fire
        previous_hr = self._heart_rate
        self._heart_rate = self._instantaneous_hr()
        increment = 0.5 * (previous_hr + self._heart_rate) / 60.0 * dt
        if not self._thresholds:
            self._thresholds = self._next_thresholds()
        threshold = self._thresholds[0]
        fired = None
        if self._beat_integral + increment >= threshold:
            fraction = (threshold - self._beat_integral) / increment
            fired = self._t + fraction * dt
            self._beat_integral = self._beat_integral + increment - threshold
            self._thresholds.pop(0)
        else:
            self._beat_integral += increment
        self._t += dt
        return fired

    def _next_thresholds(self) -> list[float]:
        normal = 1.0 + self.beat_jitter * self._rng.standard_normal()
        if self._rng.random() < self.ectopic_probability:
            premature = float(self._rng.uniform(0.65, 0.75))
            return [premature, 2.0 * normal - premature]
        return [normal]

    def _instantaneous_hr(self) -> float:
        rsa = self._rsa_amplitude(self._breath_rate) * (2.0 * self._chest(self._breath_phase) - 1.0)
        return self._hr_baseline + self._hr_wander + self._vlf + rsa + self._mayer.real

    def _rsa_amplitude(self, rate_bpm: float) -> float:
        detune = (rate_bpm - self.resonance_rate_bpm) / 2.5
        return self.rsa_base_bpm + (self.rsa_peak_bpm - self.rsa_base_bpm) / (1.0 + detune * detune)

    def _chest(self, phase: float) -> float:
        f = self.inhale_fraction
        if phase < f:
            return 0.5 - 0.5 * math.cos(math.pi * phase / f)
        return 0.5 + 0.5 * math.cos(math.pi * (phase - f) / (1.0 - f))


# (offset from the R peak in s, amplitude µV, width s) of the P, Q, R, S and T waves of a lead-I-like chest ECG
_ECG_WAVES = ((-0.16, 120.0, 0.025), (-0.035, -90.0, 0.010), (0.0, 1100.0, 0.011), (0.035, -220.0, 0.012), (0.28, 260.0, 0.055))
R_MODULATION = 0.12  # the R wave's amplitude changes by 12 % from end of exhale to end of inhale


def chest_ecg_uv(t: float, beats: Iterable[float], breath: float, r_modulation: float = R_MODULATION) -> float:
    """Noise-free synthetic chest ECG at time ``t`` (s, µV): P-QRS-T around each of ``beats`` (s) and a baseline
    that wanders with the chest expansion ``breath`` at t (0-1), whose R waves grow by ``r_modulation`` over a breath."""
    value = 40.0 * (breath - 0.5)
    for beat in beats:
        if -0.5 < t - beat < 0.7:
            for offset, amplitude, width in _ECG_WAVES:
                gain = 1.0 + r_modulation * (breath - 0.5) if offset == 0.0 else 1.0
                value += gain * amplitude * math.exp(-0.5 * ((t - beat - offset) / width) ** 2)
    return value
