"""RR-interval artifact detection and correction after Lipponen & Tarvainen (2019), with per-beat flags.

Method (J Med Eng Technol 43(3):173-181, "A robust algorithm for heart rate variability time series artefact
correction using novel beat classification"), on a series of RR intervals in ms:

- ``dRR[k] = RR[k] - RR[k-1]`` (``dRR[0]`` = mean of the rest), normalised by the time-varying threshold
  ``Th1 = 5.2 * QD(|dRR|)``, QD = quartile deviation (Q3 - Q1) / 2 over a centred 91-beat window (reflected at
  the ends; floored at ``MIN_QD_MS`` so a metronome-regular series does not divide by zero).
- ``mRR[k] = RR[k] - median of the 11 beats centred on k`` (negative values doubled, as in the paper), normalised
  by ``Th2 = 5.2 * QD(|mRR|)``.
- Subspaces: ``S12[k]`` = max (dRR[k] > 0) or min (dRR[k] < 0) of dRR[k-1], dRR[k+1];
  ``S22[k]`` = min (dRR[k] >= 0) or max (dRR[k] < 0) of dRR[k+1], dRR[k+2].
- A beat k is a candidate when ``|dRR| > 1`` or ``|mRR| > 3``. Ectopic (a premature beat and its compensatory
  pause, the dRR pattern NPN or PNP): ``dRR > 1 and S12 < -c1 dRR - c2`` or ``dRR < -1 and S12 > -c1 dRR + c2``
  (c1 = 0.13, c2 = 0.17); it is flagged on the second interval of the pair, and tested one beat ahead first so
  the pair is not also called a short beat. Otherwise long/short when ``dRR > 1 and S22 < -1``, ``|mRR| > 3``
  or ``dRR < -1 and S22 > 1``; a short one whose sum with the next is within Th2 of the median is an extra
  beat; a long one whose half is within Th2 of the median is a missed beat; any other is a long/short beat.

Correction (the total duration is kept except for long/short beats): an ectopic pair becomes two intervals of
its mean (the ectopic beat moved to the midpoint); a missed beat is split into ``round(RR / median)`` equal
intervals; an extra beat is merged with the next interval; a long/short beat is replaced by the mean of its
two neighbours.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import median_filter

ALPHA = 5.2
C1 = 0.13
C2 = 0.17
QD_WINDOW_BEATS = 91
MEDIAN_WINDOW_BEATS = 11
MIN_QD_MS = 2.0  # RR resolution is ~1 ms; a smaller spread is quantisation, not physiology
KINDS = ("ectopic", "missed", "extra", "longshort")


@dataclass(frozen=True, slots=True)
class ArtifactEvent:
    """One artifact: its kind (one of ``KINDS``) and the index of the RR interval it was flagged on."""

    kind: str
    index: int


@dataclass(frozen=True, slots=True)
class CorrectedRR:
    """Result of ``correct_rr``.

    ``rr_ms``: the corrected series (may be longer or shorter than the input). ``corrected``: per output interval,
    True when it was changed or created. ``flagged``: per INPUT interval, True when it took part in an artifact.
    ``events``: the detected artifacts, indices into the input.
    """

    rr_ms: np.ndarray
    corrected: np.ndarray
    flagged: np.ndarray
    events: tuple[ArtifactEvent, ...]


def _quartile_deviation(values: np.ndarray, width: int = QD_WINDOW_BEATS) -> np.ndarray:
    """(Q3 - Q1) / 2 of |values| over a centred window of ``width`` samples, the ends reflected."""
    n = len(values)
    half = min(width // 2, n - 1)
    magnitude = np.abs(values)
    if half == 0:
        return np.full(n, MIN_QD_MS)
    padded = np.pad(magnitude, half, mode="reflect")
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1)
    q1, q3 = np.quantile(windows, [0.25, 0.75], axis=1)
    return np.maximum((q3 - q1) / 2.0, MIN_QD_MS)


def detect_artifacts(rr_ms: np.ndarray) -> tuple[ArtifactEvent, ...]:
    """Artifacts in an RR series (ms, at least 4 intervals; shorter series return none). See the module docstring."""
    rr = np.asarray(rr_ms, dtype=float)
    n = len(rr)
    if n < 4:
        return ()
    drrs = np.diff(rr, prepend=rr[0])
    drrs[0] = drrs[1:].mean()
    th1 = ALPHA * _quartile_deviation(drrs)
    drrs = drrs / th1
    padded = np.pad(drrs, 2, mode="reflect")
    before, after, after2 = padded[1:n + 1], padded[3:n + 3], padded[4:n + 4]
    s12 = np.where(drrs > 0, np.maximum(before, after), np.minimum(before, after))
    s22 = np.where(drrs >= 0, np.minimum(after, after2), np.maximum(after, after2))

    medrr = median_filter(rr, size=MEDIAN_WINDOW_BEATS, mode="nearest")
    mrrs = rr - medrr
    mrrs[mrrs < 0] *= 2.0
    th2 = ALPHA * _quartile_deviation(mrrs)
    mrrs = mrrs / th2

    def ectopic(k: int) -> bool:
        d = drrs[k]
        return bool((d > 1 and s12[k] < -C1 * d - C2) or (d < -1 and s12[k] > -C1 * d + C2))

    events: list[ArtifactEvent] = []
    candidates = np.flatnonzero((np.abs(drrs) > 1) | (np.abs(mrrs) > 3))
    consumed = -1  # highest index already part of an event
    for k in candidates:
        k = int(k)
        if k <= consumed:
            continue
        if k + 1 < n and ectopic(k + 1):
            events.append(ArtifactEvent("ectopic", k + 1))
            consumed = k + 1
            continue
        if k >= 1 and k - 1 > consumed and ectopic(k):
            events.append(ArtifactEvent("ectopic", k))
            consumed = k
            continue
        long_short = (drrs[k] > 1 and s22[k] < -1) or abs(mrrs[k]) > 3 or (drrs[k] < -1 and s22[k] > 1)
        if not long_short:
            continue
        if rr[k] < medrr[k] and k + 1 < n and abs(rr[k] + rr[k + 1] - medrr[k]) < th2[k]:
            events.append(ArtifactEvent("extra", k))
            consumed = k + 1
        elif rr[k] > medrr[k] and abs(rr[k] / 2.0 - medrr[k]) < th2[k]:
            events.append(ArtifactEvent("missed", k))
            consumed = k
        else:
            events.append(ArtifactEvent("longshort", k))
            consumed = k
    return tuple(events)


def correct_rr(rr_ms: np.ndarray) -> CorrectedRR:
    """Detect artifacts in ``rr_ms`` (ms) and return the corrected series; see the module docstring for the rules."""
    rr = np.asarray(rr_ms, dtype=float)
    n = len(rr)
    events = detect_artifacts(rr)
    flagged = np.zeros(n, dtype=bool)
    replacement: dict[int, list[float]] = {}  # input index -> output intervals ([] = dropped)
    medrr = median_filter(rr, size=MEDIAN_WINDOW_BEATS, mode="nearest") if n else rr
    for event in events:
        k = event.index
        if event.kind == "ectopic":
            mean = 0.5 * (rr[k - 1] + rr[k])
            replacement[k - 1] = [mean]
            replacement[k] = [mean]
            flagged[k - 1:k + 1] = True
        elif event.kind == "missed":
            parts = max(2, round(rr[k] / medrr[k]))
            replacement[k] = [rr[k] / parts] * parts
            flagged[k] = True
        elif event.kind == "extra":
            replacement[k] = [rr[k] + rr[k + 1]]
            replacement[k + 1] = []
            flagged[k:k + 2] = True
        else:
            neighbours = [rr[i] for i in (k - 1, k + 1) if 0 <= i < n and not flagged[i]]
            replacement[k] = [float(np.mean(neighbours)) if neighbours else float(medrr[k])]
            flagged[k] = True
    if not replacement:
        return CorrectedRR(rr.copy(), np.zeros(n, dtype=bool), flagged, events)
    out: list[float] = []
    changed: list[bool] = []
    for i in range(n):
        values = replacement.get(i)
        if values is None:
            out.append(float(rr[i]))
            changed.append(False)
        else:
            out.extend(values)
            changed.extend([True] * len(values))
    return CorrectedRR(np.array(out), np.array(changed, dtype=bool), flagged, events)
