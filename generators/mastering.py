"""Master: the last stage before the speaker or file: smoothed volume, fade in/out and a soft peak limiter,
streamed block by block with no discontinuity at block boundaries."""
from __future__ import annotations

import math

import numpy as np

CEILING = 10 ** (-1 / 20)  # -1 dBFS = 0.891: the output never exceeds this
RELEASE_S = 0.3  # limiter gain recovery time constant
VOLUME_SMOOTHING_S = 0.05
LIMITING = 10 ** (-0.1 / 20)  # limiter gain below which a frame counts as limited


class Master:
    """Streams stereo blocks through gain, fades and limiter. ``volume`` 0-1 (linear) glides to its target;
    ``makeup_db`` is a fixed gain in dB applied with it.

    Limiter: the peak envelope follows any rise instantly (so the ceiling holds without look-ahead) and falls
    with time constant RELEASE_S; gain = min(1, ceiling / envelope).
    """

    def __init__(self, sample_rate: int = 48000, fade_in_s: float = 3.0, volume: float = 1.0,
                 ceiling: float = CEILING, makeup_db: float = 0.0) -> None:
        self.sample_rate = sample_rate
        self.makeup = 10 ** (makeup_db / 20)  # fixed gain before the limiter: soft synth output to listening level
        self.fade_in_frames = max(int(round(fade_in_s * sample_rate)), 0)
        self.ceiling = ceiling
        self.frame = 0
        self.volume_target = volume
        self.volume_now = volume
        self.fade_out_start: int | None = None
        self.fade_out_frames = 1
        self.log_envelope = math.log(ceiling)  # log of the limiter's peak envelope
        self.release_per_frame = 1.0 / (RELEASE_S * sample_rate)  # log-domain fall per frame
        self.volume_smoothing = math.exp(-1.0 / (VOLUME_SMOOTHING_S * sample_rate))
        self.limited_frames = 0  # frames the limiter has turned down by more than 0.1 dB

    def set_volume(self, volume: float) -> None:
        """New target level 0-1 (linear); reached smoothly."""
        if not 0 <= volume <= 1:
            raise ValueError(f"volume {volume} out of range: use 0-1")
        self.volume_target = volume

    def begin_fade_out(self, seconds: float, start_frame: int | None = None) -> None:
        """Fade to silence over ``seconds`` from ``start_frame`` (default: the next frame processed); silence
        after that."""
        self.fade_out_start = self.frame if start_frame is None else max(start_frame, self.frame)
        self.fade_out_frames = max(int(round(seconds * self.sample_rate)), 1)

    @property
    def faded_out(self) -> bool:
        return self.fade_out_start is not None and self.frame >= self.fade_out_start + self.fade_out_frames

    def process(self, block: np.ndarray) -> np.ndarray:
        """``block`` float (frames, 2) -> float32 (frames, 2), every sample within +-ceiling."""
        n = len(block)
        frames = np.arange(self.frame, self.frame + n)
        decay = self.volume_smoothing ** np.arange(1, n + 1)
        gain = self.volume_target + (self.volume_now - self.volume_target) * decay
        self.volume_now = float(gain[-1]) if n else self.volume_now
        if self.fade_in_frames and self.frame < self.fade_in_frames:
            gain *= 0.5 - 0.5 * np.cos(np.pi * np.minimum(frames / self.fade_in_frames, 1.0))
        if self.fade_out_start is not None:
            progress = np.clip((frames - self.fade_out_start) / self.fade_out_frames, 0.0, 1.0)
            gain *= 0.5 + 0.5 * np.cos(np.pi * progress)
        signal = np.asarray(block, dtype=np.float64) * (gain * self.makeup)[:, None]
        limiter = self._limiter_gain(np.abs(signal).max(axis=1))
        self.limited_frames += int(np.count_nonzero(limiter < LIMITING))
        out = signal * limiter[:, None]
        self.frame += n
        return np.clip(out, -self.ceiling, self.ceiling).astype(np.float32)

    def _limiter_gain(self, peak: np.ndarray) -> np.ndarray:
        """Per-frame gain from the peak envelope env[i] = max(peak[i], env[i-1] * exp(-1/release)), computed
        in the log domain as a running maximum so the whole block is vectorised."""
        n = len(peak)
        if n == 0:
            return peak
        ramp = self.release_per_frame * np.arange(1, n + 1)
        log_peak = np.log(np.maximum(peak, 1e-12)) + ramp
        running = np.maximum.accumulate(np.maximum(log_peak, self.log_envelope))
        log_envelope = running - ramp
        self.log_envelope = float(log_envelope[-1])
        return np.minimum(1.0, self.ceiling / np.exp(log_envelope))
