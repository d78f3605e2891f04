"""BeatTimeline: back-dating from arrival, plausibility filter, explicit gaps."""
import numpy as np
import pytest

from biosignals.beat_timing import BeatTimeline
from biosignals.heart_rate_measurement import parse_heart_rate_measurement
from biosignals.physiology import VirtualListener
from biosignals.sources.virtual import VirtualStrap
from biosignals.types import HeartRateMeasurement


def packet(rr, hr=70, contact=True):
    return HeartRateMeasurement(hr, True, contact, None, tuple(rr))


def test_back_dates_from_arrival_and_keeps_raw_values():
    timeline = BeatTimeline()
    beats = timeline.add(10.0, packet([1024, 512, 768]))
    assert [b.t for b in beats] == pytest.approx([8.75, 9.25, 10.0])
    assert [b.rr_raw for b in beats] == [1024, 512, 768]
    assert [b.rr_ms for b in beats] == pytest.approx([1000.0, 500.0, 750.0])
    assert not any(b.after_gap for b in beats)  # the first beat has no predecessor to be apart from


def test_continuous_stream_has_no_gaps():
    timeline = BeatTimeline()
    timeline.add(10.0, packet([1024]))
    beats = timeline.add(11.0, packet([1024]))
    beats += timeline.add(11.9, packet([]))  # a packet without beats
    beats += timeline.add(12.8, packet([1843]))
    assert [b.t for b in beats] == pytest.approx([11.0, 12.8])
    assert not any(b.after_gap for b in beats)
    assert timeline.accepted == 3 and not timeline.rejected


@pytest.mark.parametrize("rr_raw", [255, 2561, 0, 65535])  # below 250 ms / above 2500 ms
def test_implausible_rr_is_rejected_and_breaks_the_chain(rr_raw):
    timeline = BeatTimeline()
    timeline.add(10.0, packet([1024]))
    beats = timeline.add(11.5, packet([rr_raw, 1024]))
    assert len(beats) == 1 and beats[0].rr_raw == 1024 and beats[0].after_gap
    assert timeline.rejected["out_of_range"] == 1


def test_rr_at_the_limits_is_accepted():
    timeline = BeatTimeline()
    beats = timeline.add(10.0, packet([256, 2560]))  # 250 ms and 2500 ms exactly
    assert [b.rr_raw for b in beats] == [256, 2560]


def test_extra_appended_value_ending_before_previous_beat_is_rejected():
    timeline = BeatTimeline()
    timeline.add(10.0, packet([1024]))
    beats = timeline.add(10.5, packet([1000, 819]))  # 1000 would end at 9.70 s, 0.3 s before the last beat
    assert [b.rr_raw for b in beats] == [819]
    assert timeline.rejected["overlap"] == 1
    assert not beats[0].after_gap


def test_resent_previous_value_is_rejected_as_duplicate():
    timeline = BeatTimeline()
    timeline.add(10.0, packet([900, 1024]))
    beats = timeline.add(10.79, packet([1024, 819]))  # the 1024 would end at 9.99 s, where it already is
    assert [b.rr_raw for b in beats] == [819]
    assert timeline.rejected["duplicate"] == 1


def test_arrival_jitter_within_tolerance_keeps_times_increasing():
    timeline = BeatTimeline()
    timeline.add(10.0, packet([1024]))
    beats = timeline.add(10.85, packet([900, 1024]))  # 900 would end at 9.85 s: latency jitter, not an extra
    assert [b.rr_raw for b in beats] == [900, 1024]
    assert beats[0].t == pytest.approx(10.001)
    assert beats[1].t == pytest.approx(10.85)


def test_link_silence_longer_than_3_s_marks_a_gap():
    timeline = BeatTimeline()
    timeline.add(10.0, packet([1024]))
    beats = timeline.add(13.5, packet([1024, 1024, 1024]))  # RRs would explain it; silence does not
    assert [b.after_gap for b in beats] == [True, False, False]


def test_unexplained_time_marks_a_gap_only_beyond_tolerance():
    timeline = BeatTimeline()
    timeline.add(10.0, packet([1024]))
    assert not timeline.add(12.4, packet([1024]))[0].after_gap  # 1.4 s unexplained: packet latency
    assert timeline.add(15.0, packet([1024]))[0].after_gap  # 1.6 s unexplained: beats are missing


@pytest.mark.parametrize("bad", [packet([1024], contact=False), packet([1024], hr=0)])
def test_contact_loss_discards_rrs_and_marks_a_gap(bad):
    timeline = BeatTimeline()
    timeline.add(10.0, packet([1024]))
    assert timeline.add(11.0, bad) == []
    assert timeline.rejected["no_contact"] == 1
    assert timeline.add(12.0, packet([1024]))[0].after_gap


def test_contact_property_follows_the_latest_packet():
    timeline = BeatTimeline()
    assert timeline.contact is None
    timeline.add(1.0, packet([], contact=False))
    assert timeline.contact is False
    timeline.add(2.0, HeartRateMeasurement(70, False, None, None, ()))
    assert timeline.contact is None


def test_mark_gap_marks_the_next_beat_only():
    timeline = BeatTimeline()
    timeline.mark_gap()  # nothing before: the first beat is not after a gap
    assert not timeline.add(10.0, packet([1024]))[0].after_gap
    timeline.mark_gap()
    beats = timeline.add(11.0, packet([1024, 1024]))
    assert [b.after_gap for b in beats] == [True, False]


def test_virtual_strap_stream_is_clean_increasing_and_close_to_the_true_beats():
    strap = VirtualStrap(seed=7)
    twin = VirtualListener(seed=7)  # same seed, same inputs: the same beats, as ground truth
    strap.listener.set_pacer(6.0, 0.0)
    twin.set_pacer(6.0, 0.0)
    true_times = np.array(twin.advance(300.0))
    timeline = BeatTimeline()
    beats = []
    for p in strap.packets_until(300.0):
        beats += timeline.add(p.t_arrival, parse_heart_rate_measurement(p.data))
    times = np.array([b.t for b in beats])
    assert len(beats) > 250
    assert np.all(np.diff(times) > 0)
    assert not any(b.after_gap for b in beats)
    assert sum(timeline.rejected.values()) <= 2  # only a rare genuine equal-value beat may look like a re-send
    # Each back-dated beat lands after its true beat by less than one packet interval (1 s + 0.1 s jitter).
    k = np.searchsorted(true_times, times + 1e-6) - 1
    lag = times - true_times[k]
    assert lag.min() > -0.01 and lag.max() < 1.1
    assert np.median(np.abs(np.array([b.rr_ms for b in beats]) / 1000 - np.diff(true_times)[k - 1])) < 0.001
