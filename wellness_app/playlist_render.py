"""Renders a client's playlist offline to audio files and an M3U playlist, as the client would hear it."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from wellness_app.clients import client_playlist, get_client
from wellness_app.personalised import personalised_protocol
from wellness_app.session import SessionOptions, build_engine, run_offline
from wellness_app.storage import Store, private_folder, write_private


SILENT_RECORDING = json.dumps({"format": "heartsong-sensor-recording", "version": 1, "source": "no sensor",
                               "sensor": "none", "started_unix_s": 0.0, "packets": 0}) + "\n"


def render_playlist(store: Store, client_id: str, out_dir: Path, *, synth: str = "auto", seed: int = 1,
                    on_session=None) -> Path:
    """Render every session of the client's playlist offline, as the client hears it (client overrides and the
    bandit's best choice so far), to ``NN-protocol.wav`` (+ ``.mid``) in ``out_dir`` and an M3U playlist.
    There is no sensor: the policy follows the plan (a recording without packets stands in for the strap).
    Renders are not listening sessions, so nothing is added to the session history. Returns the M3U path."""
    client = get_client(store, client_id)
    playlist = client_playlist(store, client)
    private_folder(out_dir)
    lines = ["#EXTM3U", f"#PLAYLIST:{playlist.name} for {client.client_id}"]
    # Rendered inside out_dir, so each file is renamed into place: a link at its name is replaced, never followed.
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".heartsong-render-") as work:
        silent = Path(work) / "no-sensor.jsonl"
        silent.write_text(SILENT_RECORDING)
        for index, entry in enumerate(playlist.sessions, start=1):
            protocol, choice = personalised_protocol(store, client_id, entry, explore=False)
            protocol_file = Path(work) / f"{index:02d}-protocol.json"
            protocol_file.write_text(json.dumps(protocol.model_dump(mode="json")))
            minutes = protocol.total_duration_s / 60.0
            options = SessionOptions(protocol=str(protocol_file), minutes=minutes, out_dir=Path(work) / f"{index:02d}",
                                     sensor=f"replay:{silent}", synth=synth, offline=True, seed=seed + index,
                                     client_id=client_id)
            engine, _ = build_engine(options)
            engine.record.store = None  # a render is not a listening session: keep it out of the history
            if on_session:
                on_session(index, len(playlist.sessions), protocol, choice)
            run_offline(engine)
            stem = f"{index:02d}-{protocol.name}"
            os.replace(options.out_dir / "session.wav", out_dir / f"{stem}.wav")
            os.replace(options.out_dir / "session.mid", out_dir / f"{stem}.mid")
            title = f"{index}. {protocol.name} ({minutes:.1f} min, {choice['mode']})"
            lines += [f"#EXTINF:{round(protocol.total_duration_s)},{title}", f"{stem}.wav"]
    m3u = out_dir / f"{playlist.name}.m3u"
    write_private(m3u, "\n".join(lines) + "\n")
    return m3u
