"""Session exports: CSV files equal the stored rows; the HTML report is self-contained, escapes what it shows,
charts HR, breathing against the guide, RMSSD and coherence (or says it is not available), and its per-phase
table matches means computed by hand."""
from __future__ import annotations

import csv
import re

import pytest

from biosignals.types import BREATHING_SURE_CONFIDENCE
from wellness_app.reports import COHERENCE_DEFINITION, export_csv, phase_summary, render_html, write_report
from wellness_app.session import SessionOptions, build_engine, run_offline
from wellness_app.storage import Store


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("HEARTSONG_DATA_DIR", str(tmp_path / "data"))
    with Store() as opened:
        yield opened


@pytest.fixture
def session_id(store, tmp_path):
    engine, _ = build_engine(SessionOptions(protocol="coherent-6", minutes=0.5, out_dir=tmp_path / "s",
                                            offline=True, seed=4))
    run_offline(engine)
    return engine.record.session_id


def read_csv(path):
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_csv_files_equal_the_store(store, session_id, tmp_path):
    files = export_csv(store, session_id, tmp_path / "csv")
    seconds = read_csv(files["seconds"])
    stored = store.seconds(session_id)
    assert len(seconds) == len(stored) and abs(len(stored) - 30) <= 5, "ends on the breath boundary nearest 30 s"
    for row, reference in zip(seconds, stored):
        assert float(row["t_s"]) == reference["t_s"] and row["phase"] == reference["phase"]
        assert row["heart_rate_bpm"] == ("" if reference["heart_rate_bpm"] is None else str(reference["heart_rate_bpm"]))
    beats = read_csv(files["beats"])
    assert [int(b["rr_raw"]) for b in beats] == [b["rr_raw"] for b in store.beats(session_id)]
    decisions = read_csv(files["decisions"])
    assert [d["reason"] for d in decisions] == [d["reason"] for d in store.decisions(session_id)]
    assert [(float(e["t_s"]), e["kind"]) for e in read_csv(files["events"])] == [
        (e["t_s"], e["kind"]) for e in store.events(session_id)]


def test_phase_summary_against_hand_computed_means():
    sure, unsure = BREATHING_SURE_CONFIDENCE, BREATHING_SURE_CONFIDENCE - 0.01
    rows = [{"t_s": 0, "phase": "a", "heart_rate_bpm": 70.0, "breathing_rate_bpm": None, "guide_rate_bpm": 10.0},
            {"t_s": 1, "phase": "a", "heart_rate_bpm": 74.0, "breathing_rate_bpm": 12.0, "breathing_confidence": sure,
             "guide_rate_bpm": 10.0},
            {"t_s": 2, "phase": "a", "breathing_rate_bpm": 20.0, "breathing_confidence": unsure, "guide_rate_bpm": 10.0},
            {"t_s": 3, "phase": "b", "heart_rate_bpm": None, "breathing_rate_bpm": 6.5, "breathing_confidence": 0.9,
             "guide_rate_bpm": 6.0},
            {"t_s": 4, "phase": "c", "breathing_rate_bpm": 11.0, "breathing_confidence": 0.0, "guide_rate_bpm": 6.0}]
    a, b, c = phase_summary(rows)
    assert (a["phase"], a["start_s"], a["end_s"], a["duration_s"]) == ("a", 0, 3, 3)
    assert a["heart_rate_bpm"] == 72.0 and a["rmssd_ms"] is None
    assert a["breathing_rate_bpm"] == 12.0 and a["breathing_minus_guide_bpm"] == 2.0, "the unsure 20/min is left out"
    assert b["heart_rate_bpm"] is None and b["breathing_minus_guide_bpm"] == 0.5
    assert c["breathing_rate_bpm"] is None and c["breathing_minus_guide_bpm"] is None, "no sure second: unsure"


def test_html_report_is_self_contained_and_complete(store, session_id, tmp_path):
    files = write_report(store, session_id, tmp_path / "report")
    page = files["html"].read_text()
    assert oct(files["html"].stat().st_mode & 0o777) == "0o600"
    assert not re.search(r"(src|href)=\"(?!data:)", page), "no external resources"
    assert page.count('src="data:image/png;base64,') == 3, "HR, breathing vs guide, RMSSD"
    assert "Coherence:</b> not available" in page and "McCraty" in page
    phases = {r["phase"] for r in store.seconds(session_id)}
    table = page.split("<h2>Per phase</h2>")[1].split("</table>")[0]
    assert table.count("<tr>") == 1 + len(phases) and len(phases) >= 2


def test_report_shows_coherence_and_escapes_names(store):
    with store.transaction() as db:
        Store.put_document(db, "clients", "c-1", {"schema_version": 1, "client_id": "c-1",
                                                  "display_name": "<script>alert(1)</script>"})
    session_id = store.begin_session(protocol={"name": "coherent-6"}, settings={}, client_id="c-1")
    rows = [{"t_s": t, "phase": "resonance", "heart_rate_bpm": 70.0 - t / 10, "coherence": 0.5 + t / 60,
             "breathing_rate_bpm": 6.2, "guide_rate_bpm": 6.0} for t in range(60)]
    store.append(session_id, seconds=rows, events=[{"t_s": 3.0, "kind": "gap", "message": "=HYPERLINK(\"x\")"}],
                 summary={"duration_s": 60}, complete=False)
    page = render_html(store, session_id)
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "not available" not in page and page.count("data:image/png") == 4
    assert "incomplete (stopped or interrupted" in page
    files = export_csv(store, session_id, store.path.parent / "csv")
    assert read_csv(files["events"])[0]["message"].startswith("'="), "no spreadsheet formulas from event text"
    assert COHERENCE_DEFINITION in page.replace("&#x27;", "'")
