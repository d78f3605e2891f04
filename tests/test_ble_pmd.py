"""Polar Measurement Data: golden vectors from Polar's documentation and SDK, round trips, and fuzzing of every parser."""
from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from biosignals import pmd
from biosignals.pmd import MeasurementType as M


def test_polar_delta_vector_decodes_to_polar_samples():
    content = bytes.fromhex("F1 FF 14 00 F0 03 06 01 7B 0F 08")
    assert pmd.decode_delta_frame(content, channels=3, resolution_bits=16) == [(-15, 20, 1008), (-20, 17, 1008)]


def test_polar_delta_vector_inside_a_full_acc_frame():
    # The vector is frame content: it follows the 10-byte header (type, uint64 timestamp, frame type 0x81).
    frame = bytes([0x02]) + (123_456_789).to_bytes(8, "little") + bytes([0x81]) + bytes.fromhex("F1FF1400F00306017B0F08")
    parsed = pmd.parse_frame(frame)
    assert (parsed.measurement_type, parsed.timestamp_ns, parsed.frame_type, parsed.compressed) == (2, 123_456_789, 1, True)
    assert pmd.decode_content(parsed) == [(-15, 20, 1008), (-20, 17, 1008)]


def test_start_commands_match_the_h10_bytes():
    assert pmd.start_command(M.ECG, pmd.ECG_130HZ) == bytes.fromhex("02 00 00 01 82 00 01 01 0E 00")
    assert pmd.start_command(M.ACC, pmd.ACC_200HZ_8G) == bytes.fromhex("02 02 00 01 C8 00 01 01 10 00 02 01 08 00")
    assert pmd.stop_command(M.ECG) == bytes.fromhex("03 00")
    assert pmd.get_settings_command(M.ACC) == bytes.fromhex("01 02")


def test_feature_read_0f05_is_ecg_and_acc():
    assert pmd.parse_features(bytes.fromhex("0F 05 00")) == {M.ECG, M.ACC}
    assert pmd.parse_features(pmd.encode_features({M.ECG, M.ACC, M.SDK_MODE})) == {M.ECG, M.ACC, M.SDK_MODE}


@pytest.mark.parametrize(
    ("status", "name"),
    [(0, "SUCCESS"), (1, "INVALID_OP_CODE"), (2, "INVALID_MEASUREMENT_TYPE"), (3, "NOT_SUPPORTED"), (4, "INVALID_LENGTH"),
     (5, "INVALID_PARAMETER"), (6, "ALREADY_IN_STATE"), (7, "INVALID_RESOLUTION"), (8, "INVALID_SAMPLE_RATE"),
     (9, "INVALID_RANGE"), (10, "INVALID_MTU"), (11, "INVALID_NUMBER_OF_CHANNELS"), (12, "INVALID_STATE"),
     (13, "DEVICE_IN_CHARGER"), (14, "DISK_FULL"), (0x42, "UNKNOWN_STATUS_0x42")],
)
def test_every_response_status_is_named(status, name):
    response = pmd.parse_control_point(bytes([0xF0, 0x02, 0x00, status]))
    assert response.status_name == name and response.ok == (status == 0)


def test_start_response_with_factor_and_settings_response():
    response = pmd.parse_control_point(bytes.fromhex("F0 02 02 00 00 05 01") + struct.pack("<f", 0.244))
    assert (response.op, response.measurement_type, response.ok, response.more) == (2, 2, True, False)
    assert pmd.parse_settings(response.parameters)[pmd.SettingType.FACTOR][0] == pytest.approx(0.244, rel=1e-6)
    settings = pmd.parse_control_point(bytes.fromhex("F0 01 00 00 00 00 01 82 00 01 01 0E 00"))
    assert pmd.parse_settings(settings.parameters) == {pmd.SettingType.SAMPLE_RATE: (130,), pmd.SettingType.RESOLUTION: (14,)}


def test_unsolicited_stop_message_lists_the_stopped_types():
    assert pmd.parse_control_point(bytes.fromhex("01 00 02")) == pmd.MeasurementStopped((0, 2))


def test_ecg_frame_int24_microvolts():
    content = b"".join(v.to_bytes(3, "little", signed=True) for v in (-1, 1000, -8_388_608, 8_388_607))
    frame = pmd.parse_frame(pmd.encode_frame(M.ECG, 10**9, 0, False, content))
    assert pmd.decode_content(frame) == [(-1,), (1000,), (-8_388_608,), (8_388_607,)]


def test_acc_frame_type_1_is_three_int16_mg():
    content = struct.pack("<6h", -1000, 20, 35, -998, 21, 40)
    frame = pmd.parse_frame(pmd.encode_frame(M.ACC, 10**9, 1, False, content))
    assert pmd.decode_content(frame) == [(-1000, 20, 35), (-998, 21, 40)]


def test_sample_times_interpolate_between_frame_timestamps_not_the_nominal_rate():
    decoder = pmd.PmdStreamDecoder({M.ECG: 130.0})
    content = b"".join(v.to_bytes(3, "little", signed=True) for v in range(73))
    first_ns = 5 * pmd.NS_PER_S
    first = decoder.decode(pmd.encode_frame(M.ECG, first_ns, 0, False, content))
    # First frame: nominal 130 Hz back from the last sample's time.
    assert first.sensor_times_s[-1] == pytest.approx(5.0)
    assert first.sensor_times_s[0] == pytest.approx(5.0 - 72 / 130)
    # Second frame 1 % slower than nominal: 73 samples over 73/130 * 1.01 s, spaced evenly from the previous frame.
    span_ns = round(73 / 130 * 1.01 * pmd.NS_PER_S)
    second = decoder.decode(pmd.encode_frame(M.ECG, first_ns + span_ns, 0, False, content))
    steps = [b - a for a, b in zip(second.sensor_times_s, second.sensor_times_s[1:])]
    assert steps == pytest.approx([1.01 / 130] * 72, rel=1e-6)
    assert second.sensor_times_s[0] - first.sensor_times_s[-1] == pytest.approx(1.01 / 130, rel=1e-6)


samples_strategy = st.integers(1, 3).flatmap(
    lambda channels: st.lists(st.tuples(*[st.integers(-32768, 32767)] * channels), min_size=1, max_size=300)
)


@given(samples_strategy)
def test_delta_encoding_round_trips(samples):
    encoded = pmd.encode_delta_frame(samples, 16)
    assert pmd.decode_delta_frame(encoded, len(samples[0]), 16) == samples


PARSERS = [
    pmd.parse_features,
    pmd.parse_settings,
    pmd.parse_control_point,
    pmd.parse_frame,
    lambda b: pmd.decode_content(pmd.parse_frame(b)),
    lambda b: pmd.decode_delta_frame(b, 3, 16),
    lambda b: pmd.decode_delta_frame(b, 1, 24),
    lambda b: pmd.PmdStreamDecoder({M.ECG: 130, M.ACC: 200}).decode(b),
]


@pytest.mark.parametrize("parser", PARSERS)
@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=260))
def test_parsers_raise_only_pmd_parse_error(parser, data):
    try:
        parser(data)
    except pmd.PmdParseError as exc:
        assert "\n" not in str(exc) and str(exc)


@settings(max_examples=300, deadline=None)
@given(header=st.sampled_from([b"\x00", b"\x02", b"\x80", b"\x81", b"\x01"]), body=st.binary(max_size=240))
def test_frame_decoding_of_plausible_headers_raises_only_pmd_parse_error(header, body):
    frame = bytes([body[0] & 0x03 if body else 0]) + bytes(8) + header + body
    try:
        pmd.PmdStreamDecoder({M.ECG: 130, M.ACC: 200}).decode(frame)
    except pmd.PmdParseError:
        pass
