"""Turn timestamped Heart Rate Measurements into host-timed beats: back-dating, plausibility filtering and explicit gaps.

Back-dating. A notification carries no timestamp, only the RR intervals of the beats since the previous
one, oldest first. The last RR of a packet ends at the packet's arrival time ``A``; an earlier one ends at
``A`` minus the sum of the RRs after it. (The true last beat happened up to one packet interval before
``A``; that latency is the price of the protocol and is the same for every source.)

Plausibility, per RR interval, in this order:

- ``no_contact``: the packet reports heart rate 0 or contact not detected; its RRs are discarded and the
  stream is marked as gapped (the strap's RRs without skin contact are noise).
- ``out_of_range``: RR outside ``min_rr_ms``-``max_rr_ms`` (250-2500 ms, i.e. 24-240 bpm). It is
  discarded and the next beat starts a new segment, because the beat chain around it is broken.
- ``overlap``: the beat would end more than ``overlap_tolerance_s`` before the previous beat, so it
  repeats time already covered (an extra appended value). Discarded.
- ``duplicate``: the same raw value as the previous beat and ending no later than it: the strap re-sent
  the previous packet's last RR. Discarded. A genuine beat always ends after the previous one (it was not
  in the previous packet, so it happened after that packet was sent), up to radio latency jitter; a
  re-sent value that the arrival times place later cannot be told from a real beat and is kept.

A beat that lands within the tolerance before the previous one (arrival jitter) is placed 1 ms after it,
so beat times are strictly increasing.

Gaps. The next beat gets ``after_gap=True`` (and no HRV window may span it) when: no packet arrived for
more than ``max_silence_s`` (3 s; straps notify about once a second even without beats); the start of
its RR is more than ``max_unexplained_s`` (1.5 s) after the previous beat, so beats are missing; contact
was lost; an RR was out of range; or the source called ``mark_gap()`` (a disconnect). The first beat of
the stream has no predecessor and is not marked.
"""
from __future__ import annotations

import collections

from biosignals.types import RR_UNITS_PER_SECOND, Beat, HeartRateMeasurement, rr_raw_to_ms

MIN_STEP_S = 0.001  # spacing forced on a beat that arrival jitter would place before the previous beat


class BeatTimeline:
    """Stateful back-dater: feed every parsed packet in arrival order with ``add``; get the accepted beats.

    ``rejected`` counts discarded RR intervals by reason (see the module docstring); ``accepted`` counts beats.
    """

    def __init__(
        self,
        *,
        min_rr_ms: float = 250.0,
        max_rr_ms: float = 2500.0,
        max_silence_s: float = 3.0,
        max_unexplained_s: float = 1.5,
        overlap_tolerance_s: float = 0.15,
    ) -> None:
        self.min_rr_ms = min_rr_ms
        self.max_rr_ms = max_rr_ms
        self.max_silence_s = max_silence_s
        self.max_unexplained_s = max_unexplained_s
        self.overlap_tolerance_s = overlap_tolerance_s
        self.rejected: collections.Counter[str] = collections.Counter()
        self.accepted = 0
        self._last_beat_t: float | None = None
        self._last_rr_raw: int | None = None
        self._last_arrival: float | None = None
        self._gap_pending = False
        self._contact: bool | None = None

    @property
    def contact(self) -> bool | None:
        """Skin contact from the latest packet; None when the strap cannot tell or nothing arrived yet."""
        return self._contact

    def mark_gap(self) -> None:
        """The source lost the link (or data is otherwise missing): the next beat starts a new segment."""
        if self._last_beat_t is not None:
            self._gap_pending = True

    def add(self, t_arrival: float, hrm: HeartRateMeasurement) -> list[Beat]:
        """Back-date the RRs of one packet that arrived at host time ``t_arrival`` (s); return the accepted beats."""
        if self._last_arrival is not None and t_arrival - self._last_arrival > self.max_silence_s:
            self.mark_gap()
        self._last_arrival = t_arrival
        self._contact = hrm.contact_detected

        if hrm.heart_rate_bpm == 0 or hrm.contact_detected is False:
            self.rejected["no_contact"] += len(hrm.rr_raw)
            self.mark_gap()
            return []

        beats = []
        rr_after = sum(hrm.rr_raw[1:]) / RR_UNITS_PER_SECOND  # seconds from the end of RR i to the arrival
        for i, rr_raw in enumerate(hrm.rr_raw):
            t_end = t_arrival - rr_after
            if i + 1 < len(hrm.rr_raw):
                rr_after -= hrm.rr_raw[i + 1] / RR_UNITS_PER_SECOND
            beat = self._accept(t_end, rr_raw)
            if beat is not None:
                beats.append(beat)
        return beats

    def _accept(self, t_end: float, rr_raw: int) -> Beat | None:
        rr_ms = rr_raw_to_ms(rr_raw)
        if not self.min_rr_ms <= rr_ms <= self.max_rr_ms:
            self.rejected["out_of_range"] += 1
            self.mark_gap()
            return None
        rr_s = rr_ms / 1000.0
        if self._last_beat_t is not None and not self._gap_pending:
            if t_end < self._last_beat_t - self.overlap_tolerance_s:
                self.rejected["overlap"] += 1
                return None
            if rr_raw == self._last_rr_raw and t_end <= self._last_beat_t:
                self.rejected["duplicate"] += 1
                return None
        if self._last_beat_t is not None and (t_end - rr_s) - self._last_beat_t > self.max_unexplained_s:
            self._gap_pending = True
        if self._last_beat_t is not None:
            t_end = max(t_end, self._last_beat_t + MIN_STEP_S)
        beat = Beat(t=t_end, rr_raw=rr_raw, rr_ms=rr_ms, after_gap=self._gap_pending)
        self._gap_pending = False
        self._last_beat_t = t_end
        self._last_rr_raw = rr_raw
        self.accepted += 1
        return beat
