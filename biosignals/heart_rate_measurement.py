"""Decode and encode Heart Rate Measurement (0x2A37) notifications exactly as the Bluetooth Heart Rate Service defines them.

Layout (all multi-byte fields little-endian):

    byte 0      flags
                  bit 0  heart-rate format: 0 = uint8, 1 = uint16
                  bit 1  sensor contact detected (meaningful only when bit 2 is set)
                  bit 2  sensor contact supported
                  bit 3  energy expended present (uint16, kJ, cumulative)
                  bit 4  RR intervals present
                  bits 5-7 reserved for future use: ignored when parsing, written as 0
    1 or 2      heart rate, beats per minute
    0 or 2      energy expended, kJ
    2 * n       RR intervals, uint16 each, 1/1024 s, oldest first

A default-MTU notification holds 20 bytes, so at most 9 RR intervals (8 with a uint16 heart rate or the
energy field, 7 with both). The parser accepts any even-length RR tail, because a larger negotiated MTU
carries more; the encoder refuses packets longer than ``max_length``.
"""
from __future__ import annotations

import struct

from biosignals.types import HeartRateMeasurement

HEART_RATE_MEASUREMENT_UUID = "00002a37-0000-1000-8000-00805f9b34fb"
DEFAULT_MAX_LENGTH = 20  # ATT_MTU 23 minus the 3-byte notification header

FLAG_HR_UINT16 = 0x01
FLAG_CONTACT_DETECTED = 0x02
FLAG_CONTACT_SUPPORTED = 0x04
FLAG_ENERGY_PRESENT = 0x08
FLAG_RR_PRESENT = 0x10

UINT16_MAX = 0xFFFF
PLAUSIBLE_HEART_RATE_BPM = (20, 250)  # beats/min a human heart shows; a strap sends 0 when it has no reading


class HeartRateParseError(ValueError):
    """A Heart Rate Measurement packet that does not follow the Heart Rate Service layout; ``str()`` names the problem."""


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def parse_heart_rate_measurement(data: bytes) -> HeartRateMeasurement:
    """Decode one 0x2A37 notification. Raises ``HeartRateParseError`` for empty, truncated or odd-length RR data."""
    data = bytes(data)
    if not data:
        raise HeartRateParseError("heart-rate packet is empty: expected at least 2 bytes (flags + uint8 HR)")
    flags = data[0]
    hr_uint16 = bool(flags & FLAG_HR_UINT16)
    hr_size = 2 if hr_uint16 else 1
    has_energy = bool(flags & FLAG_ENERGY_PRESENT)
    has_rr = bool(flags & FLAG_RR_PRESENT)

    header = 1 + hr_size + (2 if has_energy else 0)
    if len(data) < header:
        parts = "flags + " + ("uint16 HR" if hr_uint16 else "uint8 HR") + (" + uint16 energy" if has_energy else "")
        raise HeartRateParseError(
            f"heart-rate packet of {_plural(len(data), 'byte')} is truncated: expected at least {header} ({parts})"
        )
    heart_rate = struct.unpack_from("<H", data, 1)[0] if hr_uint16 else data[1]
    energy = struct.unpack_from("<H", data, 1 + hr_size)[0] if has_energy else None

    tail = data[header:]
    if has_rr:
        if len(tail) % 2:
            raise HeartRateParseError(
                f"heart-rate packet has an odd RR payload of {_plural(len(tail), 'byte')}: "
                "RR intervals are uint16, so the payload must have an even length"
            )
        rr = struct.unpack(f"<{len(tail) // 2}H", tail)
    elif tail:
        raise HeartRateParseError(
            f"heart-rate packet has {_plural(len(tail), 'trailing byte')} but flag bit 4 (RR present) is clear"
        )
    else:
        rr = ()

    contact_supported = bool(flags & FLAG_CONTACT_SUPPORTED)
    return HeartRateMeasurement(
        heart_rate_bpm=heart_rate,
        contact_supported=contact_supported,
        contact_detected=bool(flags & FLAG_CONTACT_DETECTED) if contact_supported else None,
        energy_expended_kj=energy,
        rr_raw=tuple(rr),
    )


def check_plausible(hrm: HeartRateMeasurement) -> HeartRateMeasurement:
    """``hrm`` when its heart rate is 0 (the strap has no reading) or within ``PLAUSIBLE_HEART_RATE_BPM``; else
    ``HeartRateParseError``: such a packet is garbage (15044 or 65535 bpm), and so are the RR intervals in it."""
    lo, hi = PLAUSIBLE_HEART_RATE_BPM
    if hrm.heart_rate_bpm and not lo <= hrm.heart_rate_bpm <= hi:
        raise HeartRateParseError(f"heart-rate packet says {hrm.heart_rate_bpm} bpm, outside {lo}-{hi} bpm: refused "
                                  "as garbage (its RR intervals too)")
    return hrm


def encode_heart_rate_measurement(hrm: HeartRateMeasurement, max_length: int = DEFAULT_MAX_LENGTH) -> bytes:
    """Encode ``hrm`` as a 0x2A37 notification: uint8 heart rate when it is below 256, uint16 otherwise.

    Raises ``ValueError`` when a field is out of its uint16 range, when ``contact_detected`` disagrees with
    ``contact_supported``, or when the packet would exceed ``max_length`` bytes (send the rest of the RR
    intervals in the next notification, as the Heart Rate Service prescribes).
    """
    if not 0 <= hrm.heart_rate_bpm <= UINT16_MAX:
        raise ValueError(f"heart rate {hrm.heart_rate_bpm} bpm is outside 0-65535: clamp it before encoding")
    if hrm.energy_expended_kj is not None and not 0 <= hrm.energy_expended_kj <= UINT16_MAX:
        raise ValueError(f"energy expended {hrm.energy_expended_kj} kJ is outside 0-65535: the field saturates at 65535")
    bad_rr = [v for v in hrm.rr_raw if not 0 <= v <= UINT16_MAX]
    if bad_rr:
        raise ValueError(f"RR value {bad_rr[0]} (1/1024 s) is outside 0-65535: split or drop it before encoding")
    if hrm.contact_supported != (hrm.contact_detected is not None):
        raise ValueError(
            "contact_detected must be True/False when contact_supported is True and None otherwise, "
            f"got contact_supported={hrm.contact_supported}, contact_detected={hrm.contact_detected}"
        )

    flags = 0
    if hrm.heart_rate_bpm > 0xFF:
        flags |= FLAG_HR_UINT16
    if hrm.contact_supported:
        flags |= FLAG_CONTACT_SUPPORTED
        if hrm.contact_detected:
            flags |= FLAG_CONTACT_DETECTED
    if hrm.energy_expended_kj is not None:
        flags |= FLAG_ENERGY_PRESENT
    if hrm.rr_raw:
        flags |= FLAG_RR_PRESENT

    out = bytearray([flags])
    out += struct.pack("<H", hrm.heart_rate_bpm) if flags & FLAG_HR_UINT16 else bytes([hrm.heart_rate_bpm])
    if hrm.energy_expended_kj is not None:
        out += struct.pack("<H", hrm.energy_expended_kj)
    out += struct.pack(f"<{len(hrm.rr_raw)}H", *hrm.rr_raw)
    if len(out) > max_length:
        raise ValueError(
            f"heart-rate packet of {len(out)} bytes exceeds the {max_length}-byte notification limit: "
            f"send at most {max_rr_per_packet(hrm.heart_rate_bpm, hrm.energy_expended_kj is not None, max_length)} "
            "RR intervals per packet"
        )
    return bytes(out)


def max_rr_per_packet(heart_rate_bpm: int, has_energy: bool, max_length: int = DEFAULT_MAX_LENGTH) -> int:
    """How many RR intervals fit in one notification of ``max_length`` bytes with these other fields."""
    header = 1 + (2 if heart_rate_bpm > 0xFF else 1) + (2 if has_energy else 0)
    return max(0, (max_length - header) // 2)
