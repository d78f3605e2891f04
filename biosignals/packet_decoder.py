"""One place that turns every kind of raw ``SensorPacket`` into beats, host-timed ECG/ACC samples and notices.

Heart Rate Measurements go through the ``BeatTimeline`` (back-dating, plausibility filter, gaps), then the
``BeatAligner``, which moves them onto the ECG's R peaks once it has locked (see ``sensor_clock``). PMD data
frames are decoded with sensor-clock sample times and mapped to host time by the ``SensorClock`` (fitted on
the least-delayed frames, drift-corrected); ECG R peaks found on host time feed the aligner. Lab and link
events (``heartsong:gap`` and friends) become notices; a gap also marks the beat timeline so no HRV window
bridges it. Bad packets become notices too: nothing here raises on input.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from biosignals import pmd
from biosignals.beat_timing import BeatTimeline
from biosignals.ecg import RPeak, RPeakDetector
from biosignals.heart_rate_measurement import (
    HEART_RATE_MEASUREMENT_UUID,
    HeartRateParseError,
    check_plausible,
    parse_heart_rate_measurement,
)
from biosignals.sensor_clock import BeatAligner, SensorClock
from biosignals.sources.ble import CAPABILITIES_CHARACTERISTIC, CONNECTED_CHARACTERISTIC, GAP_CHARACTERISTIC
from biosignals.types import Beat, SensorPacket

PMD_SAMPLE_RATES_HZ = {pmd.MeasurementType.ECG: 130.0, pmd.MeasurementType.ACC: 200.0}  # what we start on an H10
ECG_RESTART_S = 1.0  # a hole this long in the ECG restarts R-peak detection (its filters assume contiguous samples)


@dataclass(frozen=True, slots=True)
class HostSamples:
    """Samples of one PMD frame on host time: ECG (n,) µV or ACC (n, 3) mg, with one host time (s) per sample.
    For ECG, ``r_peaks`` are the R peaks the decoder found in it (detected once, shared with the estimator)."""

    kind: str  # "ecg" or "acc"
    values: np.ndarray
    times_s: np.ndarray
    r_peaks: tuple[RPeak, ...] = ()


@dataclass(frozen=True, slots=True)
class Notice:
    """Something the session should log: kind is "gap", "connected", "capabilities" or "bad_packet"."""

    kind: str
    message: str


class PacketDecoder:
    """Feed packets in arrival order; each ``feed`` returns what that packet carried."""

    def __init__(self) -> None:
        self.timeline = BeatTimeline()
        self.pmd = pmd.PmdStreamDecoder(PMD_SAMPLE_RATES_HZ)
        self.bad_packets = 0
        self.last_reported_hr: tuple[float, int] | None = None  # (arrival, bpm) from the strap's own HR field
        self.clock = SensorClock()
        self.aligner = BeatAligner()
        self.r_peaks = RPeakDetector(PMD_SAMPLE_RATES_HZ[pmd.MeasurementType.ECG])
        self._last_ecg_t: float | None = None

    def feed(self, packet: SensorPacket) -> list[Beat | HostSamples | Notice]:
        characteristic = packet.characteristic
        if characteristic == HEART_RATE_MEASUREMENT_UUID:
            return self._heart_rate(packet)
        if characteristic == pmd.PMD_DATA_UUID:
            return self._pmd(packet)
        if characteristic == GAP_CHARACTERISTIC:
            self.timeline.mark_gap()
            self.pmd.reset()
            self.clock.reset()
            self.aligner.reset()
            return [Notice("gap", packet.data.decode("utf-8", "replace"))]
        if characteristic in (CONNECTED_CHARACTERISTIC, CAPABILITIES_CHARACTERISTIC):
            return [Notice(characteristic.removeprefix("heartsong:"), packet.data.decode("utf-8", "replace"))]
        return []

    def _heart_rate(self, packet: SensorPacket) -> list[Beat | Notice]:
        try:
            measurement = check_plausible(parse_heart_rate_measurement(packet.data))
        except HeartRateParseError as error:
            self.bad_packets += 1
            return [Notice("bad_packet", str(error))]
        if measurement.heart_rate_bpm > 0:
            self.last_reported_hr = (packet.t_arrival, measurement.heart_rate_bpm)
        return [self.aligner.align(beat) for beat in self.timeline.add(packet.t_arrival, measurement)]

    def _pmd(self, packet: SensorPacket) -> list[HostSamples | Notice]:
        try:
            frame = self.pmd.decode(packet.data)
        except pmd.PmdParseError as error:
            self.bad_packets += 1
            return [Notice("bad_packet", str(error))]
        kind = frame.measurement_type
        if kind not in PMD_SAMPLE_RATES_HZ or not frame.samples:
            return []
        sensor_times = np.asarray(frame.sensor_times_s)
        self.clock.add(float(sensor_times[-1]), packet.t_arrival)
        host_times = self.clock.to_host(sensor_times)
        values = np.asarray(frame.samples, dtype=float)
        if kind == pmd.MeasurementType.ECG:
            if self._last_ecg_t is not None and host_times[0] - self._last_ecg_t > ECG_RESTART_S:
                self.r_peaks.reset()
            self._last_ecg_t = float(host_times[-1])
            peaks = tuple(self.r_peaks.add(values[:, 0], host_times))
            self.aligner.add_r_peaks([peak.t for peak in peaks])
            return [HostSamples("ecg", values[:, 0], host_times, peaks)]
        return [HostSamples("acc", values[:, :3], host_times)]
