"""The listener's whole path through the Kivy app, Home -> Sensor -> Session -> Summary -> History, with a
virtual strap in accelerated mode (engine offline path paced to 8x real time: real engine, real estimator,
no sound card needed). Asserts the screens show the live values; saves a screenshot of every screen."""
from __future__ import annotations

import bisect
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ui_driver import frames, press, run_flow_and_save, run_flow_subprocess, shot, wait_until  # noqa: E402

SPEED = 8.0
MINUTES = 1.5  # long enough for coherence, which needs 64 s of beats


async def flow(app, obs: dict) -> None:
    from kivy.core.window import Window

    from wellness_app.ui.sensor import VIRTUAL_STRAP

    await frames(5)
    obs["shots"] = [await shot("home")]
    home = app.screens["home"]
    press(home.quick_start)
    await wait_until(lambda: app.manager.current == "sensor", 100, "Sensor screen")
    sensor = app.screens["sensor"]
    await wait_until(lambda: not sensor.scan_button.disabled, 2000, "scan finished")
    obs["sensor_status"] = sensor.status.text
    obs["sensor_rows"] = [row.text for row in sensor.column.children[::-1] if hasattr(row, "text")]
    obs["sensor_choices"] = [choice.line for choice in sensor.choices]
    obs["shots"].append(await shot("sensor"))
    sensor.select(VIRTUAL_STRAP)
    press(sensor.start_button)
    await wait_until(lambda: app.manager.current == "session", 1500, "Session screen")

    screen = app.screens["session"]
    screen.volume.value = 0.6
    app.set_details(True)  # the tempo line and both charts
    samples = []
    paused = {}
    while app.manager.current == "session":
        view = screen.last_view  # what the screen drew in the latest frame
        if view is None:
            await frames(1)
            continue
        samples.append({
            "elapsed_s": view.elapsed_s, "guide_phase": screen.guide.phase, "view_phase": view.guide_phase,
            "guide_expansion": screen.guide.expansion, "hr_text": screen.hr_stat.value,
            "breath_text": screen.breath_stat.value, "coherence_text": screen.coherence.shown_text,
            "tachogram_points": screen.tachogram.point_count, "time_text": screen.time_label.text,
            "phase_text": screen.phase_label.text, "music_text": screen.music_label.text,
        })
        if view.elapsed_s > 30 and "shot" not in paused:
            paused["shot"] = True
            obs["shots"].append(await shot("session"))
            Window.size = (448, 800)  # width*3 bytes a multiple of 4: Kivy reads pixels with GL_PACK_ALIGNMENT 4
            await frames(4)
            obs["shots"].append(await shot("session-portrait"))
            Window.size = (1280, 800)
            press(screen.pause_button)
            await frames(2)
            before = app.runner.view().elapsed_s
            await frames(30)
            paused["held_s"] = app.runner.view().elapsed_s - before
            paused["label"] = screen.phase_label.text
            press(screen.pause_button)
            press(screen.eyes_button)
            await frames(3)
            obs["shots"].append(await shot("session-eyes-closed"))
            obs["overlay_shown"] = screen.overlay is not None
            screen.overlay.on_touch_down(None)
            obs["overlay_after_touch"] = screen.overlay is not None
        await frames(1)
    obs["samples"], obs["pause"] = samples, paused
    obs["mode"] = app.runner.mode

    await wait_until(lambda: app.manager.current == "summary", 100, "Summary screen")
    summary = app.screens["summary"]
    obs["saved_volume"] = json.loads(app.settings_path.read_text()).get("volume")
    obs["summary_after"] = summary.after_values
    obs["summary_chart_points"] = [chart.point_count for chart in summary.charts]
    press(summary.rating_buttons[3])
    stored = app.store.session_by_out_dir(app.session_folder)
    obs["store_rating"], obs["store_client"] = stored.rating, stored.client_id
    obs["store_ratings"] = [rating for _at, rating in app.store.ratings(stored.id)]
    obs["rating_note"] = summary.rating_note.text
    record = json.loads((app.session_folder / "session.json").read_text())
    obs["record_complete"] = record["summary"]["complete"]
    obs["bar_starts_s"] = [decision["t_s"] for decision in record["decisions"]]
    obs["wav_bytes"] = (app.session_folder / "session.wav").stat().st_size
    obs["shots"].append(await shot("summary"))
    press(summary.done_button)
    await wait_until(lambda: app.manager.current == "home", 50, "back Home")
    app.go("history")
    await frames(5)
    obs["history_rows"] = len(app.screens["history"].sessions)
    obs["history_first_id"] = app.screens["history"].sessions[0].id
    obs["history_stored_id"] = stored.id
    obs["history_trend_points"] = [chart.point_count for chart in app.screens["history"].trends]
    obs["history_week_lines"] = app.screens["history"].week_lines
    obs["shots"].append(await shot("history"))
    Window.size = (448, 800)  # width*3 bytes a multiple of 4: Kivy reads pixels with GL_PACK_ALIGNMENT 4
    app.go("home")
    await frames(6)
    obs["shots"].append(await shot("home-portrait"))


def _is_number(text: str) -> bool:
    return text.replace(".", "", 1).isdigit()


def test_listener_flow(tmp_path):
    obs = run_flow_subprocess(__file__, tmp_path)
    assert obs["mode"] == "accelerated"
    assert any(row.startswith("Virtual HRS Strap (virtual)") for row in obs["sensor_choices"]), "lab straps, marked"
    assert any(row.startswith("Virtual strap") for row in obs["sensor_rows"]), "the virtual strap is offered"
    assert "Bluetooth" in obs["sensor_status"], "no adapter here: the screen says so and how to go on"

    samples = obs["samples"]
    late = [s for s in samples if s["elapsed_s"] > 20]
    assert late and all(s["hr_text"].replace(".", "").isdigit() for s in late), "heart rate shown as a number"
    assert 40 < float(late[-1]["hr_text"]) < 120
    phases = [s["guide_phase"] for s in samples if s["view_phase"] is not None]
    assert all(s["guide_phase"] == s["view_phase"] for s in samples if s["view_phase"] is not None), \
        "the guide widget shows the phase of the bar being heard"
    bar_starts = obs["bar_starts_s"]  # the record's bar (= breath) start times, independent of the screen code
    checked = 0
    for sample in samples:
        t = sample["elapsed_s"]
        k = bisect.bisect_right(bar_starts, t) - 1
        if sample["view_phase"] is None or not 0 <= k < len(bar_starts) - 1:
            continue
        if min(t - bar_starts[k], bar_starts[k + 1] - t) < 0.005:
            continue  # record times are rounded to 1 ms: too close to a bar boundary to tell
        expected = (t - bar_starts[k]) / (bar_starts[k + 1] - bar_starts[k])
        assert sample["view_phase"] == pytest.approx(expected, abs=2e-3), "guide phase = phase of the bar heard"
        checked += 1
    assert checked >= 10
    assert max(phases) > 0.8 and min(phases) < 0.2, "the guide went through whole breaths"
    assert sum(abs(b - a) > 0.5 for a, b in zip(phases, phases[1:])) >= 3, "several breaths began"
    expansions = [s["guide_expansion"] for s in samples]
    assert max(expansions) > 0.9 and min(expansions) < 0.1, "the circle grew and shrank"
    assert late[-1]["tachogram_points"] >= 20, "tachogram drew the beats"
    early = [s for s in samples if s["elapsed_s"] < 60]
    assert all(s["coherence_text"].startswith("measuring") for s in early), "no coherence before 64 s of beats"
    final = [s for s in samples if s["elapsed_s"] > 80]
    assert final and all(_is_number(s["coherence_text"]) for s in final), "then a number (its definition beside it)"
    assert 0 <= float(final[-1]["coherence_text"]) < 20
    assert "beats/min" in late[-1]["music_text"] and "left" in late[-1]["time_text"]
    assert obs["pause"]["held_s"] == 0.0 and obs["pause"]["label"].startswith("Paused")
    assert obs["overlay_shown"] and not obs["overlay_after_touch"]

    assert obs["record_complete"] and obs["wav_bytes"] > 48000 * 2 * 2 * 50
    assert obs["summary_after"]["heart_rate_bpm"] is not None
    assert min(obs["summary_chart_points"]) >= 30
    assert obs["store_rating"] == 4, obs["rating_note"]
    assert obs["store_ratings"] == [4] and obs["store_client"] is None, "a quick start is nobody's: only rated"
    assert obs["history_rows"] == 1 and obs["history_first_id"] == obs["history_stored_id"], "History reads the store"
    assert obs["saved_volume"] == 0.6, "the next session starts at the volume the listener chose"
    assert obs["history_trend_points"] == [1, 1]
    assert len(obs["history_week_lines"]) == 1 and obs["history_week_lines"][0].startswith("week of ")
    assert ": 1 session, 2 min, HR change " in obs["history_week_lines"][0], obs["history_week_lines"]
    assert all(Path(p).stat().st_size > 10_000 for p in obs["shots"])


if __name__ == "__main__":
    run_flow_and_save(flow, accelerated=SPEED, quick_minutes=MINUTES)
