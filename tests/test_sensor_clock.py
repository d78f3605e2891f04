"""Sensor-clock drift correction and ECG beat alignment, on synthetic H10 traffic with a known truth.

The strap here is synthesised (no Bumble, so it runs in about a second): its clock runs 40 ppm fast, it sends
ECG frames of 73 samples at 130 Hz, ACC frames of 36 samples at 200 Hz and a Heart Rate Measurement every
second, each arriving 5-60 ms late at random. Everything after the bytes is the real PacketDecoder.
"""
from __future__ import annotations

import math

import numpy as np

from biosignals import pmd
from biosignals.heart_rate_measurement import HEART_RATE_MEASUREMENT_UUID, encode_heart_rate_measurement
from biosignals.packet_decoder import HostSamples, PacketDecoder
from biosignals.sensor_clock import SensorClock
from biosignals.sources.ble import GAP_CHARACTERISTIC
from biosignals.types import Beat, HeartRateMeasurement, SensorPacket

DRIFT_PPM = 40.0
EPOCH_S = 789_000_000.0  # sensor time at host time 0, s since 2000-01-01
HOST_START_S = 5_000.0  # host monotonic time at which the strap's timeline starts


def host_of(sensor):
    return (np.asarray(sensor) - EPOCH_S) / (1 + DRIFT_PPM * 1e-6)


def true_beats(duration_s, seed):
    """Beat times (s, strap timeline) with breathing-driven RR variation (0.85 +- 0.07 s) and a little noise."""
    rng = np.random.default_rng(seed)
    beats = [0.3]
    while beats[-1] < duration_s:
        beats.append(beats[-1] + 0.85 + 0.07 * math.sin(2 * math.pi * beats[-1] / 10.0) + rng.normal(0, 0.01))
    return np.array(beats)


def ecg_uv(t, beats):
    """P-QRS-T (µV) around each beat plus 30 µV baseline wander: enough shape for the R-peak detector."""
    value = 30.0 * np.sin(2 * np.pi * t / 4.0)
    for b in beats[(beats > t.min() - 1) & (beats < t.max() + 1)]:
        for offset, amplitude, width in ((-0.16, 120.0, 0.025), (0.0, 1100.0, 0.011), (0.035, -220.0, 0.012), (0.28, 260.0, 0.055)):
            value = value + amplitude * np.exp(-0.5 * ((t - b - offset) / width) ** 2)
    return value


def strap_packets(duration_s, seed=1, drop=None):
    """Packets (arrival order) of a synthetic H10; ``drop=(t0, t1)`` silences the link then and sends a gap packet.

    Returns the packets, the true beat times (host) and a function giving the true host time of a sensor time.
    """
    rng = np.random.default_rng(seed)
    beats = true_beats(duration_s, seed)
    packets = []

    def delay():
        return rng.uniform(0.005, 0.060)

    def live(t):
        return drop is None or not drop[0] <= t < drop[1]

    for measurement, rate, per_frame in ((pmd.MeasurementType.ECG, 130, 73), (pmd.MeasurementType.ACC, 200, 36)):
        ticks = EPOCH_S + np.arange(0, duration_s * rate) / rate  # the sensor samples on its own clock
        for start in range(0, len(ticks) - per_frame, per_frame):
            sensor = ticks[start:start + per_frame]
            t = host_of(sensor)
            if not live(t[-1]):
                continue
            ns = round(sensor[-1] * pmd.NS_PER_S)
            if measurement == pmd.MeasurementType.ECG:
                content = b"".join(round(v).to_bytes(3, "little", signed=True) for v in ecg_uv(t, beats))
                data = pmd.encode_frame(measurement, ns, 0, False, content)
            else:
                samples = [(-1000 + int(rng.integers(-3, 4)), 20, 70) for _ in t]
                data = pmd.encode_frame(measurement, ns, 1, True, pmd.encode_delta_frame(samples, 16))
            packets.append(SensorPacket(HOST_START_S + t[-1] + delay(), pmd.PMD_DATA_UUID, data))

    sent_until = 0.0
    for t_send in np.arange(1.0, duration_s, 1.0):
        rr = np.diff(beats)[(beats[1:] > sent_until) & (beats[1:] <= t_send)]
        sent_until = t_send
        if not live(t_send):
            continue
        hrm = HeartRateMeasurement(70, True, True, None, tuple(int(round(r * 1024)) for r in rr))
        packets.append(SensorPacket(HOST_START_S + t_send + delay(), HEART_RATE_MEASUREMENT_UUID,
                                    encode_heart_rate_measurement(hrm)))
    if drop is not None:
        packets.append(SensorPacket(HOST_START_S + drop[1], GAP_CHARACTERISTIC, b"link lost"))
    packets.sort(key=lambda p: p.t_arrival)
    return packets, HOST_START_S + beats


def decode(packets):
    """Feed everything through a fresh PacketDecoder; return it, the beats and the ECG sample blocks."""
    decoder = PacketDecoder()
    out = [item for p in packets for item in decoder.feed(p)]
    return decoder, [b for b in out if isinstance(b, Beat)], [s for s in out if isinstance(s, HostSamples) and s.kind == "ecg"]


def test_drift_is_fitted_and_pmd_samples_land_on_true_host_time():
    packets, _ = strap_packets(200.0)
    decoder, _, ecg = decode(packets)
    mapped = [s.times_s for s in ecg]
    truth = []  # the same frames' sample times mapped with the known clock
    stream = pmd.PmdStreamDecoder({pmd.MeasurementType.ECG: 130.0})
    for p in packets:
        if p.characteristic == pmd.PMD_DATA_UUID and p.data[0] == pmd.MeasurementType.ECG:
            truth.append(HOST_START_S + host_of(np.asarray(stream.decode(p.data).sensor_times_s)))
    error_ms = (np.concatenate(mapped) - np.concatenate(truth)) * 1000
    assert abs(decoder.clock.sensor_drift_ppm - DRIFT_PPM) < 5.0, decoder.clock.sensor_drift_ppm
    assert np.percentile(np.abs(error_ms), 95) < 10.0
    assert error_ms.min() > -1.0  # never earlier than the truth by more than the fit's noise: BLE only adds delay


def test_beats_are_aligned_to_ecg_r_peaks_and_keep_their_rr():
    packets, beats_true = strap_packets(120.0, seed=2)
    decoder, beats, _ = decode(packets)
    backdated = PacketDecoder()
    backdated.aligner.align = lambda beat: beat  # the back-dating alone, for comparison
    plain = [b for p in packets for b in backdated.feed(p) if isinstance(b, Beat)]

    truth = beats_true[1:1 + len(beats)]  # the strap reports every beat after the first, in order
    assert [b.rr_raw for b in beats] == [b.rr_raw for b in plain] == list(np.round(np.diff(beats_true)[:len(beats)] * 1024))
    error_plain = np.array([b.t for b in plain]) - truth
    error_aligned = np.array([b.t for b in beats]) - truth
    assert decoder.aligner.locks == 1 and decoder.aligner.locked
    assert error_plain.min() > 0 and error_plain.max() > 0.5  # back-dating is late by up to the packet interval
    late = truth > HOST_START_S + 20.0  # the lock takes a few seconds of ECG
    assert late.sum() > 100 and np.abs(error_aligned[late]).max() < 0.010
    assert np.all(np.diff([b.t for b in beats]) > 0)


def test_a_dropped_link_resets_the_fit_but_keeps_the_skew_and_relocks():
    packets, beats_true = strap_packets(200.0, seed=3, drop=(150.0, 156.0))
    soon_after = [p for p in packets if p.t_arrival < HOST_START_S + 166.0]  # 10 s of new data: too short to fit
    decoder, _, _ = decode(soon_after)
    assert decoder.clock.resets == 1 and abs(decoder.clock.sensor_drift_ppm - DRIFT_PPM) < 5.0  # the prior skew
    decoder, beats, _ = decode(packets)
    assert decoder.clock.resets == 1 and abs(decoder.clock.sensor_drift_ppm - DRIFT_PPM) < 5.0
    assert decoder.aligner.locks == 2
    after = [b for b in beats if b.t > HOST_START_S + 156.0]
    assert after[0].after_gap
    late = [b for b in after if b.t > HOST_START_S + 175.0]
    assert len(late) > 20 and max(min(abs(beats_true - b.t)) for b in late) < 0.010


def test_a_sensor_clock_step_resets_the_map_by_itself():
    clock = SensorClock()
    for k in range(100):
        clock.add(EPOCH_S + k, 100.0 + k + 0.01)
    assert abs(clock.to_host(EPOCH_S + 99.5) - 199.51) < 1e-6
    clock.add(EPOCH_S + 5000.0, 200.02)  # the strap rebooted its clock
    assert clock.resets == 1 and abs(clock.to_host(EPOCH_S + 5000.0) - 200.02) < 1e-9
