"""Listening measurements of rendered audio: K-weighted loudness envelope (ITU-R BS.1770), how well it follows the
breath arc, level rises, stereo correlation and mono-fold loss, limiter contact."""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.signal import lfilter

from generators.theory import breath_arc

# ITU-R BS.1770-4 K-weighting at 48 kHz: the "pre-filter" high shelf, then the RLB high pass.
K_SHELF = ([1.53512485958697, -2.69169618940638, 1.19839281085285], [1.0, -1.69065929318241, 0.73248077421585])
K_HIGHPASS = ([1.0, -2.0, 1.0], [1.0, -1.99004745483398, 0.99007225036621])
K_RATE = 48000
SILENT_LUFS = -60.0  # envelope floor: quieter windows count as silence
MOMENTARY_S = 0.4  # BS.1770 momentary loudness window


def k_weighted(audio: np.ndarray, sample_rate: int = K_RATE) -> np.ndarray:
    """``audio`` float (frames, channels) at 48 kHz, K-weighted (float64)."""
    if sample_rate != K_RATE:
        raise ValueError(f"loudness is measured at {K_RATE} Hz, got {sample_rate} Hz: render at 48000 Hz")
    x = np.asarray(audio, dtype=np.float64)
    return lfilter(*K_HIGHPASS, lfilter(*K_SHELF, x, axis=0), axis=0)


def loudness_envelope(audio: np.ndarray, sample_rate: int = K_RATE, window_s: float = MOMENTARY_S,
                      hop_s: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """(window centre times in s, loudness in LUFS): BS.1770 loudness of each ``window_s`` window, every
    ``hop_s``; ungated, floored at SILENT_LUFS."""
    power = np.square(k_weighted(audio, sample_rate)).sum(axis=1)
    cumulative = np.concatenate([[0.0], np.cumsum(power)])
    window, hop = int(round(window_s * sample_rate)), int(round(hop_s * sample_rate))
    starts = np.arange(0, len(power) - window + 1, hop)
    mean_power = (cumulative[starts + window] - cumulative[starts]) / window
    lufs = -0.691 + 10 * np.log10(np.maximum(mean_power, 1e-30))
    return (starts + window / 2) / sample_rate, np.maximum(lufs, SILENT_LUFS)


def level_rises_db(times: np.ndarray, lufs: np.ndarray, within_s: float = 0.2) -> np.ndarray:
    """Every rise of the envelope over ``within_s`` seconds (dB; falls count as 0)."""
    hop = times[1] - times[0] if len(times) > 1 else within_s
    lag = max(1, int(round(within_s / hop)))
    return np.maximum(lufs[lag:] - lufs[:-lag], 0.0)


def stereo_correlation(audio: np.ndarray) -> float:
    """Pearson correlation of the left and right channels, -1 (anti-phase) to +1 (mono)."""
    left, right = np.asarray(audio[:, 0], np.float64), np.asarray(audio[:, 1], np.float64)
    return float(np.corrcoef(left, right)[0, 1])


def mono_fold_loss_db(audio: np.ndarray, sample_rate: int = K_RATE) -> float:
    """Loudness change (dB, <= 0 loses level) when the stereo mix is folded to mono, (L+R)/2 on both
    channels as a mono speaker plays it: 0 for a mono mix, -3 for uncorrelated channels."""
    k = k_weighted(audio, sample_rate)
    mono = (k[:, 0] + k[:, 1]) / 2
    return float(10 * np.log10(2 * np.mean(mono**2) / max(np.mean(k**2) * 2, 1e-30)))


def ceiling_runs(audio: np.ndarray, ceiling: float, min_frames: int = 2) -> int:
    """Number of flat-topped runs: at least ``min_frames`` consecutive frames within 0.01 dB of ``ceiling``."""
    at = np.abs(audio).max(axis=1) >= ceiling * 10 ** (-0.01 / 20)
    edges = np.diff(np.concatenate([[0], at.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return int(np.sum(ends - starts >= min_frames))


def guide_arc(phase: np.ndarray, inhale_fraction: float) -> np.ndarray:
    """The breath guide's arc 0-1 at breath phase 0-1 (the raised-cosine of ``theory.breath_arc``)."""
    return np.array([breath_arc(p, inhale_fraction, 1.0) for p in np.clip(phase, 0.0, 1.0 - 1e-12)])


def breath_swells(times: np.ndarray, lufs: np.ndarray, breaths: Sequence[tuple[float, float, float]]
                  ) -> list[tuple[float, float]]:
    """Per breath (start s, end s, inhale fraction): (peak-to-trough swing in LU, Pearson r of the envelope
    with the guide's arc). Breaths with fewer than 8 envelope points are skipped."""
    out = []
    for start, end, inhale_fraction in breaths:
        inside = (times >= start) & (times < end)
        if inside.sum() < 8:
            continue
        level = lufs[inside]
        arc = guide_arc((times[inside] - start) / (end - start), inhale_fraction)
        r = float(np.corrcoef(level, arc)[0, 1]) if level.std() > 1e-9 else math.nan
        out.append((float(level.max() - level.min()), r))
    return out
