"""A virtual strap's beats written as session.json records them, with no per-second rows: what `heartsong analyze`
reads (tests)."""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from biosignals.beat_timing import BeatTimeline
from biosignals.heart_rate_measurement import parse_heart_rate_measurement
from biosignals.sources.virtual import VirtualStrap


def write_session_json(path: Path, strap: VirtualStrap, seconds: int,
                       each_second: Callable[[int], None] | None = None) -> list[dict]:
    """Run ``strap`` for ``seconds`` s (``each_second(i)`` first, e.g. to pace its listener), write its beats to
    ``path``; returns them."""
    timeline, beats = BeatTimeline(), []
    for i in range(1, seconds + 1):
        if each_second is not None:
            each_second(i)
        for packet in strap.packets_until(float(i)):
            for b in timeline.add(packet.t_arrival, parse_heart_rate_measurement(packet.data)):
                beats.append({"t_s": b.t, "rr_raw": b.rr_raw, "rr_ms": b.rr_ms, "after_gap": b.after_gap})
    path.write_text(json.dumps({"beats": beats, "seconds": []}))
    return beats
