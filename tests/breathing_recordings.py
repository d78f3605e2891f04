"""Real ECG + breathing-belt recordings replayed through the H10 path, with the belt as reference (tests, benchmarks).

Path: the ECG is resampled to the H10's 130 Hz; our R-peak detector's beats become Heart Rate Measurement bytes
(``VirtualStrap`` around a body that replays those beats, one notification a second with jitter); with
``ecg=True`` the 130 Hz ECG also goes as PMD ECG frames (73 int24 µV samples, the H10's frame) on a sensor
clock; everything goes through the real ``PacketDecoder`` into a ``PhysioEstimator``, whose state is read once
a second (60 s windows, 1 s steps, causal).

Reference (``belt_reference``): per 60 s window the belt, band-passed 0.05-1 Hz, gives a breath count
(``biosignals.breathing.count_breaths``) and a spectral peak (3-30/min); a window is *regular* when both agree
within 2/min and the count is within 8-30/min; the reference rate is the count.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import butter, resample_poly, sosfiltfilt

from biosignals import pmd
from biosignals.breathing import FAST_BAND_BPM, SLOW_BAND, _linear_detrend, _power, count_breaths, true_peak
from biosignals.ecg import RPeakDetector
from biosignals.estimator import PhysioEstimator
from biosignals.packet_decoder import PacketDecoder
from biosignals.respiration import GRID_HZ, WINDOW_S
from biosignals.sources.virtual import VirtualStrap
from biosignals.types import Beat, SensorPacket

H10_ECG_HZ = 130
ECG_PER_FRAME = 73
SENSOR_EPOCH_S = 789_000_000.0
BELT_BAND_HZ = (0.05, 1.0)
REGULAR_AGREE_BPM = 2.0


class ReplayedBody:
    """Stands in for ``VirtualListener`` inside ``VirtualStrap``: fires the recorded beats (s) as time advances."""

    def __init__(self, beat_times_s: np.ndarray) -> None:
        self._beats = np.asarray(beat_times_s)
        self._next = 0
        self.t = 0.0

    def advance(self, t: float) -> list[float]:
        end = int(np.searchsorted(self._beats, t, side="right"))
        fired, self._next, self.t = self._beats[self._next:end].tolist(), end, t
        return fired


def ecg_at_130(ecg_mv: np.ndarray, fs: float) -> np.ndarray:
    """The ECG in µV resampled to 130 Hz."""
    return resample_poly(np.asarray(ecg_mv, dtype=float) * 1000.0, H10_ECG_HZ, int(fs))


def r_peak_times(ecg_uv_130: np.ndarray) -> np.ndarray:
    detector, peaks = RPeakDetector(float(H10_ECG_HZ)), []
    times = np.arange(len(ecg_uv_130)) / H10_ECG_HZ
    for i in range(0, len(ecg_uv_130), ECG_PER_FRAME):
        peaks += detector.add(ecg_uv_130[i:i + ECG_PER_FRAME], times[i:i + ECG_PER_FRAME])
    return np.array([p.t for p in peaks])


@dataclass
class BeltReference:
    t: np.ndarray  # window ends (s)
    rate: np.ndarray  # breath count of the belt (breaths/min), nan when it cannot count
    regular: np.ndarray  # bool: count and spectral peak agree within 2/min, count in 8-30/min


def belt_reference(belt: np.ndarray, fs: float, window_ends_s: np.ndarray) -> BeltReference:
    belt_4 = resample_poly(np.asarray(belt, dtype=float), int(GRID_HZ), int(fs))
    belt_4 = sosfiltfilt(butter(2, BELT_BAND_HZ, btype="bandpass", fs=GRID_HZ, output="sos"), belt_4)
    times = np.arange(len(belt_4)) / GRID_HZ
    rates, regular = [], []
    for end in window_ends_s:
        window = (times > end - WINDOW_S) & (times <= end)
        signal = _linear_detrend(belt_4[window])
        counted = count_breaths(signal, GRID_HZ)
        peak = true_peak(_power(signal, SLOW_BAND), 3.0, 30.0)
        rates.append(np.nan if counted is None else counted)
        regular.append(counted is not None and peak is not None and abs(counted - peak[0]) <= REGULAR_AGREE_BPM
                       and FAST_BAND_BPM[0] <= counted <= FAST_BAND_BPM[1])
    return BeltReference(np.asarray(window_ends_s), np.array(rates), np.array(regular))


def ecg_frames(ecg_uv_130: np.ndarray, t_until: float, sent: int) -> tuple[list[SensorPacket], int]:
    """PMD ECG frames for the samples from index ``sent`` that are complete by ``t_until`` (s); returns the next index."""
    packets = []
    while (sent + ECG_PER_FRAME) / H10_ECG_HZ <= t_until and sent + ECG_PER_FRAME <= len(ecg_uv_130):
        chunk = np.round(ecg_uv_130[sent:sent + ECG_PER_FRAME]).astype(int)
        last_t = (sent + ECG_PER_FRAME - 1) / H10_ECG_HZ
        content = b"".join(int(v).to_bytes(3, "little", signed=True) for v in chunk)
        data = pmd.encode_frame(pmd.MeasurementType.ECG, round((SENSOR_EPOCH_S + last_t) * pmd.NS_PER_S), 0, False, content)
        packets.append(SensorPacket(last_t + 0.03, pmd.PMD_DATA_UUID, data))
        sent += ECG_PER_FRAME
    return packets, sent


def replay(ecg_mv: np.ndarray, fs: float, window_ends_s: np.ndarray, *, ecg: bool = False, seed: int = 0):
    """States of the estimator at ``window_ends_s`` for the recording replayed through the H10 path."""
    ecg_uv = ecg_at_130(ecg_mv, fs)
    strap = VirtualStrap(ReplayedBody(r_peak_times(ecg_uv)), seed=seed)
    decoder, estimator = PacketDecoder(), PhysioEstimator()
    sent, states = 0, []
    for end in window_ends_s:
        packets = strap.packets_until(end)
        if ecg:
            frames, sent = ecg_frames(ecg_uv, end, sent)
            packets = sorted(packets + frames, key=lambda p: p.t_arrival)
        for packet in packets:
            for item in decoder.feed(packet):
                if isinstance(item, Beat):
                    estimator.add_beat(item)
                elif getattr(item, "kind", None) == "ecg":
                    estimator.add_ecg(item.values, item.times_s, item.r_peaks)
        states.append(estimator.state(end))
    return states
