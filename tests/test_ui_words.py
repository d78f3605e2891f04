"""What the app says, without a window: the summary's sentence, protocol and phase titles, lengths, plurals, a
validator's message in a form's words, and the charts' round ticks."""
from __future__ import annotations

from therapy_profiles import builtin_protocols
from biosignals.types import BREATHING_SURE_CONFIDENCE
from wellness_app.ui.names import (UNSURE, breathing_text, change_sentence, count_text, minutes_text, phase_title,
                                   plain_error, protocol_title, readable)

SUMMARY = {"duration_s": 600, "heart_rate_bpm_start": 72.4, "heart_rate_bpm_end": 69.1, "rmssd_ms_start": 40.0,
           "rmssd_ms_end": 44.9, "breathing_rate_bpm_start": 12.2, "breathing_rate_bpm_end": 6.4}


def test_summary_sentence_says_what_changed():
    assert change_sentence(SUMMARY) == ("Heart rate 3 beats/min lower, HRV 12 % higher, breathing slowed from 12 to "
                                        "6.5 per minute.")
    calmer = SUMMARY | {"heart_rate_bpm_end": 72.6, "rmssd_ms_end": 30.0, "breathing_rate_bpm_end": 12.1}
    assert change_sentence(calmer) == "Heart rate unchanged, HRV 25 % lower, breathing stayed at about 12 per minute."
    unsure_start = SUMMARY | {"breathing_rate_bpm_start": None}  # no sure second in the first 30 s
    assert change_sentence(unsure_start) == ("Heart rate 3 beats/min lower, HRV 12 % higher, breathing about 6.5 per "
                                             "minute at the end (unsure at the start).")
    never_sure = SUMMARY | {"breathing_rate_bpm_start": None, "breathing_rate_bpm_end": None}
    assert change_sentence(never_sure) == "Heart rate 3 beats/min lower, HRV 12 % higher, breathing rate unsure."
    assert not any(c.isdigit() for c in change_sentence(never_sure).split("breathing")[1])
    assert change_sentence(SUMMARY | {"duration_s": 90}).startswith("This session was too short to compare")
    empty = {"duration_s": 600}
    assert change_sentence(empty) == "The strap's signal was not clear enough to compare before and after."


def test_a_breathing_rate_reads_unsure_under_the_threshold():
    assert UNSURE == "unsure"
    assert breathing_text(11.0, 0.0) == UNSURE, "the held 11/min of a 6/min listener without a guide"
    assert breathing_text(11.04, BREATHING_SURE_CONFIDENCE - 0.01) == UNSURE
    assert breathing_text(11.04, BREATHING_SURE_CONFIDENCE) == "11.0"
    assert breathing_text(6.0, 0.9) == "6.0"
    assert breathing_text(None, 0.9) == "--" and breathing_text(None, 0.0, missing="") == ""


def test_titles_lengths_and_plurals():
    protocols = builtin_protocols()
    assert protocol_title(protocols["coherent-6"]) == "Coherent breathing, 6 per minute"
    assert protocol_title({"name": "calm-5"}) == "Calm 5", "a protocol without a title: its name made readable"
    assert phase_title(protocols["coherent-6"], "slow-down") == "Slowing down"
    assert phase_title(protocols["coherent-6"], None) == "Starting"
    assert readable("rate-6-5") == "Rate 6 5"
    assert all(p.title and all(ph.title for ph in p.phases) for p in protocols.values()), "every built-in is named"
    box = protocols["box-breathing"]
    assert minutes_text(box.total_duration_s / 60) == "10.5 min", "the length shown is the plan's, not rounded down"
    practice = next(ph for ph in box.phases if ph.name == "practice")
    assert f"{practice.duration_s / 60:g} minutes of box breathing" in box.description, "description matches phases"
    assert minutes_text(6.77) == "7 min" and count_text(1, "session") == "1 session"
    assert count_text(2, "session") == "2 sessions"


def test_validator_messages_in_the_forms_words():
    key, words = plain_error("client profile: client_id = 'bad id!' is not allowed (string should match pattern "
                             "'^[A-Za-z0-9_-]{1,64}$')", {"client_id": "Client id"})
    assert (key, words) == ("client_id", "Client id: use letters, digits, - and _ only (no spaces), up to 64")
    key, words = plain_error("client profile: display_name = '' is not allowed (string should have at least 1 "
                             "character)", {"display_name": "Display name"})
    assert (key, words) == ("display_name", "Display name: this cannot be empty")
    key, words = plain_error("protocol: name = 'calm 5' is not a valid name (allowed: 1-40 lower-case letters)",
                             {"name": "Name"})
    assert (key, words) == ("name", "Name 'calm 5' is not a valid name (allowed: 1-40 lower-case letters)")


def test_chart_ticks_are_round():
    from wellness_app.ui.widgets import nice_ticks, positive_number, tick_text

    assert nice_ticks(812.3, 951.7, 4) == [850.0, 900.0, 950.0]
    assert nice_ticks(0, 1, 5) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert nice_ticks(0, 20, 3) == [0.0, 10.0, 20.0]
    assert [tick_text(t) for t in (0.0, 0.25, 1.5, 12.0)] == ["0", "0.25", "1.5", "12"]
    assert positive_number("-4.5", False) == "4.5", "a minus sign is refused as typed"
