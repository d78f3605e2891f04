"""Heart Rate Measurement (0x2A37) parsing and encoding: golden vectors, round trip, and fuzzing."""
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from biosignals.heart_rate_measurement import (
    HeartRateParseError,
    encode_heart_rate_measurement,
    max_rr_per_packet,
    parse_heart_rate_measurement,
)
from biosignals.types import HeartRateMeasurement


def hrm(hr, supported=False, detected=None, energy=None, rr=()):
    return HeartRateMeasurement(hr, supported, detected, energy, tuple(rr))


GOLDEN = [
    # flags 0x10: uint8 HR, RR present. HR 0x48 = 72, RR 0x0400 = 1024/1024 s = 1000 ms
    ("10 48 00 04", hrm(72, rr=[1024])),
    # flags 0x16: RR + contact supported + detected. HR 60, RRs 1024 and 0x0320 = 800
    ("16 3c 00 04 20 03", hrm(60, True, True, rr=[1024, 800])),
    # flags 0x04: contact supported, not detected
    ("04 48", hrm(72, True, False)),
    # flags 0x02: "detected" without "supported" means contact detection is not supported
    ("02 48", hrm(72, False, None)),
    # flags 0x01: uint16 HR 0x012c = 300
    ("01 2c 01", hrm(300)),
    # flags 0x0e: energy + contact detected. HR 0x50 = 80, energy 0x03e8 = 1000 kJ
    ("0e 50 e8 03", hrm(80, True, True, energy=1000)),
    # flags 0x1f: everything. uint16 HR 300, contact, energy 1000 kJ, RRs 1024 and 512
    ("1f 2c 01 e8 03 00 04 00 02", hrm(300, True, True, energy=1000, rr=[1024, 512])),
    # flags 0x10 with no RR bytes: zero RR intervals is legal
    ("10 48", hrm(72)),
    # reserved bits 5-7 are ignored
    ("e0 48", hrm(72)),
    # nine RRs: a full 20-byte default-MTU packet
    ("10 41" + " ff ff" * 9, hrm(65, rr=[65535] * 9)),
]


@pytest.mark.parametrize(("hex_bytes", "expected"), GOLDEN)
def test_parse_golden(hex_bytes, expected):
    assert parse_heart_rate_measurement(bytes.fromhex(hex_bytes)) == expected


def test_rr_ms_from_raw():
    assert parse_heart_rate_measurement(bytes.fromhex("10 48 00 04 00 02")).rr_ms == (1000.0, 500.0)


@pytest.mark.parametrize(
    ("hex_bytes", "message"),
    [
        ("", "heart-rate packet is empty: expected at least 2 bytes (flags + uint8 HR)"),
        ("00", "heart-rate packet of 1 byte is truncated: expected at least 2 (flags + uint8 HR)"),
        ("01 48", "heart-rate packet of 2 bytes is truncated: expected at least 3 (flags + uint16 HR)"),
        ("08 48 01", "heart-rate packet of 3 bytes is truncated: expected at least 4 (flags + uint8 HR + uint16 energy)"),
        ("10 48 00", "odd RR payload of 1 byte"),
        ("10 48 00 04 00", "odd RR payload of 3 bytes"),
        ("00 48 00 04", "2 trailing bytes but flag bit 4 (RR present) is clear"),
    ],
)
def test_parse_rejects_malformed(hex_bytes, message):
    with pytest.raises(HeartRateParseError, match=re.escape(message)):
        parse_heart_rate_measurement(bytes.fromhex(hex_bytes))


def test_parse_error_is_a_value_error():
    assert issubclass(HeartRateParseError, ValueError)


@pytest.mark.parametrize(("hex_bytes", "measurement"), [g for g in GOLDEN if g[0] not in ("02 48", "e0 48", "10 48")])
def test_encode_golden(hex_bytes, measurement):
    assert encode_heart_rate_measurement(measurement) == bytes.fromhex(hex_bytes)


def test_encode_clears_rr_flag_without_rr_and_writes_reserved_bits_as_zero():
    assert encode_heart_rate_measurement(hrm(72)) == bytes.fromhex("00 48")


def test_encode_uses_uint8_below_256_and_uint16_from_256():
    assert encode_heart_rate_measurement(hrm(255)) == bytes.fromhex("00 ff")
    assert encode_heart_rate_measurement(hrm(256)) == bytes.fromhex("01 00 01")


@pytest.mark.parametrize(
    ("measurement", "message"),
    [
        (hrm(70, rr=[800] * 10), "exceeds the 20-byte notification limit: send at most 9"),
        (hrm(300, energy=5, rr=[800] * 8), "send at most 7"),
        (hrm(70, True, None), "contact_detected must be True/False"),
        (hrm(70, False, True), "contact_detected must be True/False"),
        (hrm(70_000), "outside 0-65535"),
        (hrm(70, rr=[-1]), "RR value -1"),
        (hrm(70, energy=70_000), "energy expended 70000"),
    ],
)
def test_encode_rejects_invalid(measurement, message):
    with pytest.raises(ValueError, match=message):
        encode_heart_rate_measurement(measurement)


def test_max_rr_per_packet():
    assert max_rr_per_packet(70, has_energy=False) == 9
    assert max_rr_per_packet(300, has_energy=False) == 8
    assert max_rr_per_packet(70, has_energy=True) == 8
    assert max_rr_per_packet(300, has_energy=True) == 7


uint16 = st.integers(0, 0xFFFF)


@st.composite
def measurements(draw):
    heart_rate = draw(uint16)
    supported = draw(st.booleans())
    detected = draw(st.booleans()) if supported else None
    energy = draw(st.none() | uint16)
    n_rr = draw(st.integers(0, max_rr_per_packet(heart_rate, energy is not None)))
    rr = draw(st.lists(uint16, min_size=n_rr, max_size=n_rr))
    return hrm(heart_rate, supported, detected, energy, rr)


@given(measurements())
def test_round_trip(measurement):
    assert parse_heart_rate_measurement(encode_heart_rate_measurement(measurement)) == measurement


@settings(max_examples=500)
@given(st.binary(max_size=40))
def test_fuzz_arbitrary_bytes_parse_or_raise_parse_error(data):
    try:
        measurement = parse_heart_rate_measurement(data)
    except HeartRateParseError as error:
        assert "heart-rate packet" in str(error) and "\n" not in str(error)
        return
    # Whatever parses re-encodes to a packet that parses to the same measurement.
    again = encode_heart_rate_measurement(measurement, max_length=len(data) + 1)
    assert parse_heart_rate_measurement(again) == measurement
