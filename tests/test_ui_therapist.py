"""The therapist's path through the Kivy app: create a client (and see a bad one refused), create a playlist,
assign it, export the bundle, render a short playlist to audio, and see it as today's session on Home."""
from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ui_driver import frames, launch, press, run_flow_subprocess, shot, wait_until  # noqa: E402


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
    obs["clients_after_save"] = [c.client_id for c in screen.store.clients()]

    screen.show("playlists")
    await frames(3)
    screen.playlist_name.text = "evening-calm"
    screen.playlist_sessions.text = "coherent-6:0.5, coherent-6:10"
    screen.playlist_days.text, screen.playlist_time.text = "mon,wed,fri", "19:30"
    screen.save_playlist()
    obs["playlist_message"] = screen.message.text
    screen.playlist_name.text, screen.playlist_sessions.text = "broken", "no-such-protocol"
    screen.playlist_days.text = screen.playlist_time.text = ""
    screen.save_playlist()
    obs["bad_playlist_message"] = screen.message.text
    obs["shots"] = [await shot("therapist-playlists")]

    screen.show("clients")
    await frames(3)
    obs["clients_tab_message"] = screen.message.text
    screen.playlist_spinners["c-017"].text = "evening-calm"
    obs["assigned"] = json.loads((screen.store.root / "clients" / "c-017.json").read_text())["playlist"]
    screen.show("clients")
    await frames(3)
    obs["shots"].append(await shot("therapist-clients"))
    client = screen.store.clients()[0]
    bundle = screen.export(client)
    with zipfile.ZipFile(bundle) as archive:
        obs["bundle_files"] = sorted(archive.namelist())
        obs["bundle_playlist"] = json.loads(archive.read("playlist.json"))["name"]

    short = next(p for p in screen.store.playlists() if p.name == "evening-calm").model_copy(
        update={"name": "first-only", "sessions": screen.store.playlists()[0].sessions[:1]})
    task = screen.render(short)
    await wait_until(lambda: screen.progress.opacity == 1, 200, "render progress shown")
    obs["progress_during_render"] = screen.progress.value
    await wait_until(task.done, 20000, "render finished")
    render_dir = screen.store.root / "renders" / "first-only" / "01-coherent-6"
    obs["render_message"] = screen.message.text
    obs["render_wav_bytes"] = (render_dir / "session.wav").stat().st_size

    screen.show("protocols")
    await frames(3)
    obs["shots"].append(await shot("therapist-protocols"))
    screen.use_here(client)
    app.go("home")
    await frames(5)
    today = app.todays_session()
    obs["today"] = {"label": today.label, "minutes": today.minutes, "name": today.protocol_name,
                    "origin": today.origin}
    obs["shots"].append(await shot("home-today"))

    # today's session in real time: no sound card here, so the app says so and records to files; then Stop
    home = app.screens["home"]
    start_today = next(w for w in home.column.walk() if getattr(w, "text", "") == "Start today's session")
    press(start_today)
    await wait_until(lambda: app.manager.current == "sensor", 100, "Sensor screen")
    from wellness_app.ui.sensor import VIRTUAL_STRAP

    app.screens["sensor"].select(VIRTUAL_STRAP)
    press(app.screens["sensor"].start_button)
    await wait_until(lambda: app.manager.current == "session", 3000, "Session screen")
    session = app.screens["session"]
    await wait_until(lambda: session.last_view is not None and session.last_view.elapsed_s > 4, 3000, "4 s played")
    obs["live_mode"] = app.runner.mode
    obs["live_notice"] = session.notice.text
    obs["shots"].append(await shot("session-files-mode"))
    press(session.stop_button)
    await wait_until(lambda: app.manager.current == "summary", 3000, "Summary after Stop")
    record = json.loads((app.session_folder / "session.json").read_text())
    obs["stopped_complete"] = record["summary"]["complete"]
    obs["stopped_duration_s"] = record["summary"]["duration_s"]
    obs["stopped_client"] = json.loads((app.session_folder / "app.json").read_text()).get("client")


def test_therapist_flow(tmp_path):
    obs = run_flow_subprocess(__file__, tmp_path)
    assert "client_id" in obs["bad_client_message"], obs["bad_client_message"]
    assert obs["clients_after_save"] == ["c-017"]
    assert obs["playlist_message"].startswith("Saved playlist evening-calm (2 session")
    assert "no-such-protocol" in obs["bad_playlist_message"]
    assert obs["assigned"] == "evening-calm"
    assert obs["bundle_files"] == ["client.json", "playlist.json"] and obs["bundle_playlist"] == "evening-calm"
    assert obs["render_wav_bytes"] > 48000 * 2 * 2 * 25, "30 s of stereo audio rendered"
    assert obs["render_message"].startswith("Rendered first-only")
    assert obs["today"]["label"] == "evening-calm, session 1 of 2"
    assert abs(obs["today"]["minutes"] - 0.5) < 1e-6 and obs["today"]["origin"]["client"] == "c-017"
    assert obs["live_mode"] in ("files", "live")
    if obs["live_mode"] == "files":
        assert "No sound output" in obs["live_notice"] and "session.wav" in obs["live_notice"]
    assert obs["stopped_complete"] is False and 4 <= obs["stopped_duration_s"] < 25, "Stop ended it early, saved"
    assert obs["stopped_client"] == "c-017"
    assert all(Path(p).stat().st_size > 10_000 for p in obs["shots"])


if __name__ == "__main__":
    observations: dict = {}

    async def driver(app):
        await flow(app, observations)

    launch(driver)
    Path(sys.argv[1]).write_text(json.dumps(observations, default=str))
