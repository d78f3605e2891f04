"""analyze_recording on a session.json made from a virtual strap session: summary values and a PNG."""
import json

from biosignals.beat_timing import BeatTimeline
from biosignals.heart_rate_measurement import parse_heart_rate_measurement
from biosignals.sources.virtual import VirtualStrap
from wellness_app.analyze import analyze_recording


def test_analyze_session_json(tmp_path):
    strap, timeline, beats = VirtualStrap(seed=1), BeatTimeline(), []
    for i in range(1, 181):
        strap.listener.set_pacer(6.0, (i * 0.1) % 1.0)
        for p in strap.packets_until(float(i)):
            for b in timeline.add(p.t_arrival, parse_heart_rate_measurement(p.data)):
                beats.append({"t_s": b.t, "rr_raw": b.rr_raw, "rr_ms": b.rr_ms, "after_gap": b.after_gap})
    path = tmp_path / "session.json"
    path.write_text(json.dumps({"beats": beats, "seconds": []}))
    summary = analyze_recording(path, tmp_path / "chart.png")
    assert summary["beats"] == len(beats)
    assert 55 < summary["mean_heart_rate_bpm"] < 80
    assert summary["breathing_sources"] == ["rr"]
    assert (tmp_path / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
