"""analyze_recording on a session.json made from a virtual strap session: summary values and a PNG."""
from biosignals.sources.virtual import VirtualStrap
from recorded_beats import write_session_json
from wellness_app.analyze import analyze_recording


def test_analyze_session_json(tmp_path):
    strap, path = VirtualStrap(seed=1), tmp_path / "session.json"
    beats = write_session_json(path, strap, 180, lambda i: strap.listener.set_pacer(6.0, (i * 0.1) % 1.0))
    summary = analyze_recording(path, tmp_path / "chart.png")
    assert summary["beats"] == len(beats)
    assert 55 < summary["mean_heart_rate_bpm"] < 80
    assert summary["breathing_sources"] == ["rr"]
    assert (tmp_path / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
