"""Weekly trends over sessions in a real store: ISO weeks in local time, sums and means by hand, the CLI table."""
from __future__ import annotations

import datetime as dt

import pytest

from wellness_app import cli
from wellness_app.storage import DB_NAME, Store
from wellness_app.trends import week_line, weekly_trends

SUMMARIES = [  # (local start, duration s, HR start, HR end, RMSSD start, RMSSD end, rating)
    (dt.datetime(2026, 11, 2, 19, 30), 600, 72.0, 66.0, 30.0, 42.0, 4),  # Monday, week of 2 Nov
    (dt.datetime(2026, 11, 8, 21, 0), 300, 70.0, 68.0, None, None, None),  # Sunday, same week
    (dt.datetime(2026, 11, 9, 7, 0), 900, 75.0, 71.0, 25.0, 28.0, 5),  # Monday, week of 9 Nov
]


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("HEARTSONG_DATA_DIR", str(tmp_path))
    with Store(tmp_path / DB_NAME) as opened:
        for started, duration, hr0, hr1, rm0, rm1, rating in SUMMARIES:
            session_id = opened.begin_session(protocol={"name": "coherent-6"}, settings={},
                                              started=started.astimezone())
            opened.append(session_id, complete=True, summary={
                "duration_s": duration, "heart_rate_bpm_start": hr0, "heart_rate_bpm_end": hr1,
                "rmssd_ms_start": rm0, "rmssd_ms_end": rm1})
            if rating:
                opened.rate(session_id, rating)
        yield opened


def test_weeks_sum_and_average_by_hand(store):
    first, second = weekly_trends(store.list_sessions())
    assert first.week_start == dt.date(2026, 11, 2) and second.week_start == dt.date(2026, 11, 9)
    assert (first.sessions, first.minutes) == (2, 15.0)
    assert first.hr_change_bpm == pytest.approx(((66 - 72) + (68 - 70)) / 2)
    assert first.rmssd_change_ms == pytest.approx(12.0), "a session without RMSSD is left out of that mean"
    assert first.hr_end_bpm == pytest.approx(67.0) and first.rating == 4.0
    assert (second.sessions, second.minutes, second.hr_change_bpm, second.rmssd_change_ms) == (1, 15.0, -4.0, 3.0)
    assert week_line(first) == ("week of 02 Nov: 2 sessions, 15 min, HR change -4.0 beats/min, "
                                "RMSSD change +12.0 ms, rated 4.0")


def test_history_weeks_on_the_command_line(store, capsys):
    assert cli.main(["history", "--weeks", "1"]) == 0
    assert capsys.readouterr().out.strip() == ("week of 09 Nov: 1 session, 15 min, HR change -4.0 beats/min, "
                                                "RMSSD change +3.0 ms, rated 5.0")
