"""Our Heart Rate Measurement parser against an independent encoder: Bumble's own Heart Rate Service profile."""
from __future__ import annotations

from bumble.profiles.heart_rate_service import HeartRateService
from hypothesis import given, settings
from hypothesis import strategies as st

from biosignals.heart_rate_measurement import HeartRateParseError, parse_heart_rate_measurement
from biosignals.lab import faults

BumbleHRM = HeartRateService.HeartRateMeasurement


def test_bumble_golden_packet():
    data = bytes(BumbleHRM(heart_rate=72, sensor_contact_detected=True, energy_expended=300, rr_intervals=[800 / 1024, 1.0]))
    assert data == bytes.fromhex("1E 48 2C 01 20 03 00 04")
    hrm = parse_heart_rate_measurement(data)
    assert (hrm.heart_rate_bpm, hrm.contact_supported, hrm.contact_detected, hrm.energy_expended_kj, hrm.rr_raw) == (
        72, True, True, 300, (800, 1024))


@settings(max_examples=300, deadline=None)
@given(
    heart_rate=st.integers(0, 0xFFFF),
    contact=st.sampled_from([None, True, False]),
    energy=st.one_of(st.none(), st.integers(0, 0xFFFF)),
    rr_raw=st.one_of(st.none(), st.lists(st.integers(0, 0xFFFF), max_size=9)),
)
def test_parser_agrees_with_bumble_encoder(heart_rate, contact, energy, rr_raw):
    packet = BumbleHRM(
        heart_rate=heart_rate,
        sensor_contact_detected=contact,
        energy_expended=energy,
        rr_intervals=None if rr_raw is None else [v / 1024 for v in rr_raw],
    )
    hrm = parse_heart_rate_measurement(bytes(packet))
    assert hrm.heart_rate_bpm == heart_rate
    assert hrm.contact_supported == (contact is not None)
    assert hrm.contact_detected == contact
    assert hrm.energy_expended_kj == energy
    assert hrm.rr_raw == tuple(rr_raw or ())
    # And Bumble's decoder reads what our parser read.
    assert BumbleHRM.from_bytes(bytes(packet)).heart_rate == hrm.heart_rate_bpm


def test_truncated_packets_from_the_fault_injector_are_parse_errors():
    for data in faults.truncated_heart_rate_packets():
        try:
            parse_heart_rate_measurement(data)
        except HeartRateParseError as exc:
            assert "\n" not in str(exc)
        else:
            raise AssertionError(f"{data.hex(' ')} parsed without error")


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=40))
def test_parser_raises_only_its_parse_error(data):
    try:
        parse_heart_rate_measurement(data)
    except HeartRateParseError:
        pass
