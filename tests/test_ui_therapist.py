"""The therapist's path through the Kivy app: create a client (and see a bad one refused), create a protocol from
a built-in one (and see bad ones refused), create a playlist that uses it, assign it, export the bundle, render a client's short playlist to audio, see it as today's session on Home, and
find all of it where the CLI looks (the shared store: `heartsong client list`)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ui_driver import frames, press, run_flow_and_save, run_flow_subprocess, shot, wait_until  # noqa: E402


async def flow(app, obs: dict) -> None:
    await frames(5)
    app.go("therapist")
    screen = app.screens["therapist"]
    await frames(5)
    screen.client_id.text, screen.client_name.text, screen.client_rate.text = "bad id!", "X", ""
    screen.save_client()
    obs["bad_client_message"] = screen.message.text
    screen.client_id.text, screen.client_name.text, screen.client_rate.text = "c-017", "River", "5.5"
    screen.save_client()
    from wellness_app.clients import get_client, list_clients
    from wellness_app.playlists import custom_protocols, list_playlists

    obs["clients_after_save"] = [c.client_id for c in list_clients(app.store)]

    screen.show("protocols")
    await frames(3)
    form = screen.protocol_form
    obs["form_title"], obs["form_phases"] = form.title.text, [row.name.text for row in form.rows]
    form.name.text = "coherent-6"
    screen.save_protocol()
    obs["builtin_name_message"] = screen.message.text
    form.name.text = "calm-5"
    for row in form.rows[1:]:
        row.rate.text = "5"
    form.rows[0].ratio.text = "4-6"
    screen.save_protocol()
    obs["bad_ratio_message"] = screen.message.text
    form.rows[0].ratio.text = "0:6"
    screen.save_protocol()
    obs["zero_inhale_message"] = screen.message.text
    form.rows[0].ratio.text, form.rows[0].minutes.text = "4:6", "0"
    screen.save_protocol()
    obs["zero_minutes_message"] = screen.message.text
    form.rows[0].minutes.text = "1"
    press(form.rows[-1].remove)  # drop "ending"
    form.add_phase()
    await frames(2)
    last = form.rows[-1]
    last.name.text, last.minutes.text, last.rate.text, last.ratio.text = "rest", "3", "", "4:2:6:0"
    last.mode.text = "dorian"
    screen.save_protocol()
    obs["protocol_message"] = screen.message.text
    stored = custom_protocols(app.store)["calm-5.json"]
    obs["calm5_phases"] = [[p.name, p.duration_s, p.breath_rate_bpm, p.mode, p.breath_ratio.hold_in, p.palette]
                           for p in stored.phases]
    obs["calm5_source"] = stored.source
    await frames(3)
    obs["shots"] = [await shot("therapist-protocols")]
    screen.column.parent.scroll_y = 0.6  # the phases
    await frames(3)
    obs["shots"].append(await shot("therapist-protocol-phases"))

    screen.show("playlists")
    await frames(3)
    form = screen.playlist_form
    obs["protocol_choices"] = form.rows[0].protocol.values
    form.name.text = "evening-calm"
    form.rows[0].protocol.choose("coherent-6")
    form.rows[0].minutes.text = "0.5"
    form.add_entry("coherent-6", None)
    form.rows[1].protocol.choose("calm-5.json")  # picked by its title, stored by its file name
    await frames(2)  # a new field takes typing once it has been laid out
    form.rows[1].minutes.insert_text("-10")  # typed: the minus sign is refused
    obs["typed_negative"] = form.rows[1].minutes.text
    obs["typed_negative"] = form.rows[1].minutes.text
    for day in ("mon", "wed", "fri"):
        press(form.day_chips[day])
    form.hour.choose("19")
    form.minute.choose("30")
    screen.save_playlist()
    obs["playlist_message"] = screen.message.text
    form.name.text = "broken"
    form.rows[0].minutes.text = "0.1"
    screen.save_playlist()
    obs["bad_playlist_message"] = screen.message.text
    obs["bad_playlist_field"] = form.rows[0].error.text
    form.name.text = "first-only"
    form.rows[0].minutes.text = "0.5"
    form.remove_entry(form.rows[1])
    for day in ("mon", "wed", "fri"):
        press(form.day_chips[day])
    screen.save_playlist()
    obs["playlists"] = [p.name for p in list_playlists(app.store)]
    screen.column.parent.scroll_y = 0  # the stored playlists, under the form
    await frames(3)
    obs["shots"].append(await shot("therapist-playlists"))
    screen.show("protocols")
    screen.delete_protocol("calm-5.json", None)
    obs["delete_used_message"] = screen.message.text
    obs["protocols_after_delete"] = sorted(custom_protocols(app.store))

    screen.show("clients")
    await frames(3)
    obs["clients_tab_message"] = screen.message.text
    screen.playlist_spinners["c-017"].text = "evening-calm"
    obs["assigned"] = get_client(app.store, "c-017").playlist
    client = get_client(app.store, "c-017")
    exported = screen.export(client)
    bundle = json.loads(exported.read_text())
    obs["bundle_client"], obs["bundle_playlist"] = bundle["client"]["client_id"], bundle["playlist"]["name"]
    obs["bundle_protocols"] = sorted(bundle["protocols"])
    elsewhere = exported.with_name("c-019-bundle.json")  # as if from another therapist's device
    screen.bundle_path.text = str(elsewhere)
    screen.import_bundle()  # not written yet
    obs["import_missing_message"] = screen.message.text
    bundle["client"].update(client_id="c-019", display_name="Brook")
    elsewhere.write_text(json.dumps(bundle))
    screen.import_bundle()
    obs["import_message"] = screen.message.text
    bundle["client"]["display_name"] = "Brook B."  # the other device renamed the client
    elsewhere.write_text(json.dumps(bundle))
    screen.import_bundle()
    obs["conflict_message"] = screen.message.text
    obs["name_after_conflict"] = get_client(app.store, "c-019").display_name
    screen.import_bundle()  # pressed again: replace
    obs["name_after_replace"] = get_client(app.store, "c-019").display_name

    # a second client with the short playlist, so the render stays short
    screen.client_id.text, screen.client_name.text, screen.client_rate.text = "c-018", "Lake", ""
    screen.save_client()
    screen.playlist_spinners["c-018"].text = "first-only"
    task = screen.render(get_client(app.store, "c-018"))
    await wait_until(lambda: screen.progress.opacity == 1, 200, "render progress shown")
    await wait_until(task.done, 20000, "render finished")
    from wellness_app.storage import data_dir

    render_dir = data_dir() / "renders" / "c-018"
    obs["render_message"] = screen.message.text
    obs["render_wav_bytes"] = (render_dir / "01-coherent-6.wav").stat().st_size
    obs["render_m3u"] = (render_dir / "first-only.m3u").read_text()
    obs["sessions_after_render"] = len(app.store.list_sessions())
    screen.show("clients")
    await frames(3)
    screen.column.parent.scroll_y = 0  # the client list, under the form
    await frames(3)
    obs["shots"].append(await shot("therapist-clients"))

    screen.use_here(client)
    app.go("home")
    await frames(5)
    today = app.todays_session()
    obs["today"] = {"label": today.label, "minutes": today.minutes, "name": today.protocol_name,
                    "origin": today.origin}
    obs["shots"].append(await shot("home-today"))

    # today's session in real time: no sound card here, so the app says so and records to files; then Stop
    home = app.screens["home"]
    obs["start_today_text"] = home.start_today.text
    press(home.start_today)
    await wait_until(lambda: app.manager.current == "sensor", 100, "Sensor screen")
    from wellness_app.ui.sensor import VIRTUAL_STRAP

    app.screens["sensor"].select(VIRTUAL_STRAP)
    press(app.screens["sensor"].start_button)
    await wait_until(lambda: app.manager.current == "session", 3000, "Session screen")
    session = app.screens["session"]
    await wait_until(lambda: session.last_view is not None and session.last_view.elapsed_s > 4, 3000, "4 s played")
    obs["live_mode"] = app.runner.mode
    obs["live_notice"] = session.notice.text
    obs["live_detail_notices"] = app.runner.detail_notices
    obs["shots"].append(await shot("session-files-mode"))
    press(session.stop_button)
    await wait_until(lambda: app.manager.current == "summary", 3000, "Summary after Stop")
    record = json.loads((app.session_folder / "session.json").read_text())
    obs["stopped_complete"] = record["summary"]["complete"]
    obs["stopped_duration_s"] = record["summary"]["duration_s"]
    stored = app.store.session_by_out_dir(app.session_folder)
    obs["stopped_client"] = stored.client_id
    obs["stopped_personalisation"] = app.store.session_details(stored.id)["personalisation"]
    summary = app.screens["summary"]
    press(summary.rating_buttons[4])
    obs["rating_note"] = summary.rating_note.text
    obs["stopped_rating"] = app.store.session(stored.id).rating
    obs["bandit"] = app.store.get_document("personalisation", "c-017")
    settings = app.store.session_details(stored.id)["settings"]
    obs["stopped_playlist"] = [settings["playlist"], settings["playlist_index"]]

    # Once that session counts as completed, today's session is done and the next is the playlist's second
    app.store.append(stored.id, complete=True)
    import datetime as dt

    today = dt.date.today()
    after = app.todays_session(today=today)
    obs["after_complete"] = [after.label, after.protocol_name, after.done_today, after.schedule]
    obs["due_today"] = [after.due_today, today.weekday() in (0, 2, 4)]
    unscheduled_day = next(today + dt.timedelta(days=n) for n in range(1, 8)
                           if (today + dt.timedelta(days=n)).weekday() in (1, 3, 5, 6))
    later = app.todays_session(today=unscheduled_day)
    obs["unscheduled_day"] = [later.label, later.done_today, later.due_today]
    app.go("home")
    await frames(5)
    obs["shots"].append(await shot("home-today-done"))

    from kivy.core.window import Window

    Window.size = (448, 800)  # phone proportions (width*3 a multiple of 4 for Kivy's pixel read-back)
    app.go("therapist")
    screen.show("clients")
    await frames(4)
    screen.column.parent.scroll_y = 0
    await frames(3)
    obs["shots"].append(await shot("therapist-clients-portrait"))
    screen.show("protocols")
    await frames(4)
    screen.column.parent.scroll_y = 0.75
    await frames(3)
    obs["shots"].append(await shot("therapist-protocols-portrait"))


def test_therapist_flow(tmp_path):
    obs = run_flow_subprocess(__file__, tmp_path)
    assert obs["bad_client_message"].startswith("Client id: use letters"), obs["bad_client_message"]
    assert obs["clients_after_save"] == ["c-017"]
    assert obs["form_title"] == "New protocol, starting from coherent-6"
    assert obs["form_phases"] == ["settle", "slow-down", "resonance", "ending"]
    assert "built-in" in obs["builtin_name_message"] and "another name" in obs["builtin_name_message"]
    assert obs["bad_ratio_message"].startswith("phase 1: breath ratio '4-6' must look like 4:6"), obs["bad_ratio_message"]
    assert obs["zero_inhale_message"].startswith("phase 1: breath ratio (inhale) = 0.0 is out of range"), \
        obs["zero_inhale_message"]
    assert obs["zero_minutes_message"] == "phase 1: minutes = 0 is out of range (allowed 0.1-240)"
    assert obs["protocol_message"] == "Saved calm-5.json: name it in a playlist as calm-5.json."
    assert obs["calm5_phases"] == [
        ["settle", 60.0, None, "pentatonic-major", 0.0, ["pad", "piano"]],
        ["slow-down", 480.0, 5.0, "major", 0.0, ["pad", "piano"]],
        ["resonance", 540.0, 5.0, "lydian", 0.0, ["pad", "harp"]],
        ["rest", 180.0, None, "dorian", 2.0, ["pad", "harp"]],  # a new phase keeps the last one's instruments
    ], obs["calm5_phases"]
    assert obs["calm5_source"].startswith("Lehrer")
    assert "used by playlist 'evening-calm'" in obs["delete_used_message"], obs["delete_used_message"]
    assert obs["protocols_after_delete"] == ["calm-5.json"], "a protocol in use is not deleted"
    assert obs["playlists"] == ["evening-calm", "first-only"], "the bad playlist was not stored"
    assert obs["playlist_message"].startswith("Saved playlist evening-calm (2 session")
    assert obs["bad_playlist_message"].startswith("Session 1: Minutes: 0.1 is out of range"), obs["bad_playlist_message"]
    assert obs["bad_playlist_field"].startswith("Minutes: 0.1 is out of range"), "the error sits by its field"
    assert obs["typed_negative"] == "10", "a minus sign is refused as typed"
    assert "Coherent breathing, 6 per minute" in obs["protocol_choices"], "protocols are picked by their titles"
    assert obs["assigned"] == "evening-calm"
    assert obs["bundle_client"] == "c-017" and obs["bundle_playlist"] == "evening-calm"
    assert obs["bundle_protocols"] == ["calm-5.json"], "the bundle carries the custom protocol its playlist uses"
    assert obs["import_missing_message"].startswith("Import failed: bundle c-019-bundle.json cannot be read")
    assert obs["import_message"] == "Imported Brook (c-019) with playlist evening-calm.", obs["import_message"]
    assert obs["conflict_message"].startswith("This bundle has a different client 'c-019'"), obs["conflict_message"]
    assert "--replace" not in obs["conflict_message"], "the app has no command-line flags to offer"
    assert obs["name_after_conflict"] == "Brook" and obs["name_after_replace"] == "Brook B."
    assert obs["render_wav_bytes"] > 48000 * 2 * 2 * 25, "30 s of stereo audio rendered"
    assert obs["render_message"].startswith("Rendered c-018's playlist"), obs["render_message"]
    assert "01-coherent-6.wav" in obs["render_m3u"]
    assert obs["sessions_after_render"] == 0, "a render is not a listening session"
    assert obs["today"]["label"] == "evening-calm, session 1 of 2"
    assert abs(obs["today"]["minutes"] - 0.5) < 1e-6 and obs["today"]["origin"]["client"] == "c-017"
    assert obs["live_mode"] in ("files", "live")
    if obs["live_mode"] == "files":
        assert "No sound output" in obs["live_notice"] and "session.wav" not in obs["live_notice"], "plain words"
        assert "session.wav" in obs["live_detail_notices"][0], "the file's path with Details"
    assert obs["stopped_complete"] is False and 4 <= obs["stopped_duration_s"] < 25, "Stop ended it early, saved"
    assert obs["stopped_client"] == "c-017" and obs["stopped_personalisation"], "stored as the client's session"
    assert obs["stopped_rating"] == 5, obs["rating_note"]
    assert obs["bandit"] is not None, "the client's rating taught the personalisation (rate_session)"
    assert obs["stopped_playlist"] == ["evening-calm", "0"]
    assert obs["after_complete"] == ["evening-calm, session 2 of 2", "calm-5", True, "mon, wed, fri at 19:30"]
    assert obs["due_today"][0] == obs["due_today"][1], "due today exactly when the schedule names today's weekday"
    assert obs["unscheduled_day"] == ["evening-calm, session 2 of 2", False, False]

    # the CLI sees what the app stored (the data dir run_flow_subprocess gave the app)
    env = {**os.environ, "HEARTSONG_DATA_DIR": str(tmp_path / "data" / "heartsong")}
    listed = subprocess.run([sys.executable, "-m", "wellness_app.cli", "client", "list"], capture_output=True,
                            text=True, env=env, cwd=Path(__file__).resolve().parents[1], check=True).stdout
    lines = {line.split()[0]: line for line in listed.splitlines()}
    assert "evening-calm" in lines["c-017"] and lines["c-017"].endswith(" 1 session"), listed
    assert "first-only" in lines["c-018"], listed
    assert "evening-calm" in lines["c-019"] and lines["c-019"].endswith(" 0 sessions"), listed
    assert all(Path(p).stat().st_size > 10_000 for p in obs["shots"])


if __name__ == "__main__":
    run_flow_and_save(flow)
