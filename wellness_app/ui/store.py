"""The app's files until the storage issue lands: past sessions (session.json + app.json sidecar) and the
therapist's clients, playlists and protocols as validated JSON under the user data directory."""
from __future__ import annotations

import datetime as dt
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wellness_app.storage import data_dir
from wellness_app.ui.runner import sessions_dir

SIDECAR = "app.json"  # per-session app data: rating 1-5, client and playlist the session came from


@dataclass
class PastSession:
    """One saved session: its folder, start time, protocol name, summary dict and app sidecar."""

    folder: Path
    started: dt.datetime
    protocol: str
    summary: dict[str, Any]
    app: dict[str, Any]

    def load_record(self) -> dict[str, Any]:
        return json.loads((self.folder / "session.json").read_text())


def _write_json(path: Path, data: Any) -> None:
    """Atomic, user-only write (health data)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


def past_sessions(folder: Path | None = None) -> list[PastSession]:
    """Every readable session under ``folder`` (default: the user's sessions dir), newest first.

    A folder without a readable session.json (a session still starting, a damaged file) is skipped.
    """
    found = []
    for path in sorted((folder or sessions_dir()).glob("*/session.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        sidecar = path.parent / SIDECAR
        try:
            app = json.loads(sidecar.read_text()) if sidecar.exists() else {}
        except (OSError, ValueError):
            app = {}
        found.append(PastSession(path.parent, _started(path.parent), record.get("protocol", {}).get("name", "?"),
                                 record.get("summary", {}), app))
    return sorted(found, key=lambda s: s.started, reverse=True)


def _started(folder: Path) -> dt.datetime:
    try:
        return dt.datetime.strptime(folder.name[:15], "%Y%m%d-%H%M%S")
    except ValueError:
        return dt.datetime.fromtimestamp(folder.stat().st_mtime)


def update_sidecar(folder: Path, **values: Any) -> dict[str, Any]:
    """Merge ``values`` into the session's app.json (e.g. ``rating=4``) and return the result."""
    path = folder / SIDECAR
    data = json.loads(path.read_text()) if path.exists() else {}
    data.update(values)
    _write_json(path, data)
    return data


class TherapistStore:
    """Clients, playlists and custom protocols as JSON files, validated by therapy_profiles on every load."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or data_dir() / "therapist"
        for kind in ("clients", "playlists", "protocols"):
            (self.root / kind).mkdir(parents=True, exist_ok=True, mode=0o700)

    def clients(self):
        from therapy_profiles.schema import load_client_profile

        return [load_client_profile(p) for p in sorted((self.root / "clients").glob("*.json"))]

    def playlists(self):
        from therapy_profiles.schema import load_playlist

        return [load_playlist(p) for p in sorted((self.root / "playlists").glob("*.json"))]

    def playlist(self, name: str):
        from therapy_profiles.schema import load_playlist

        return load_playlist(self.root / "playlists" / f"{name}.json")

    def save_client(self, data: dict[str, Any]):
        """Validate and save a client profile; raises ProfileError (one line) when a field is wrong."""
        from therapy_profiles.schema import SCHEMA_VERSION, ClientProfile, validate_document

        client = validate_document(ClientProfile, {"schema_version": SCHEMA_VERSION, **data}, "client profile")
        _write_json(self.root / "clients" / f"{client.client_id}.json", client.model_dump(mode="json"))
        return client

    def save_playlist(self, data: dict[str, Any]):
        """Validate and save a playlist; every protocol it names must load."""
        from therapy_profiles.schema import SCHEMA_VERSION, Playlist, validate_document, protocol_for_entry

        playlist = validate_document(Playlist, {"schema_version": SCHEMA_VERSION, **data}, "playlist")
        for entry in playlist.sessions:
            protocol_for_entry(entry, self.root / "protocols")
        _write_json(self.root / "playlists" / f"{playlist.name}.json", playlist.model_dump(mode="json", exclude_none=True))
        return playlist

    def assign(self, client_id: str, playlist: str | None):
        """Give a client a playlist (None removes it)."""
        client = next(c for c in self.clients() if c.client_id == client_id)
        data = client.model_dump(mode="json")
        data.pop("schema_version")
        return self.save_client({**data, "playlist": playlist})

    def export_bundle(self, client_id: str, target: Path) -> Path:
        """A zip with the client's profile, the assigned playlist and every protocol file it uses, for the
        listener's device. Returns the zip path."""
        client = next(c for c in self.clients() if c.client_id == client_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as bundle:
            bundle.write(self.root / "clients" / f"{client_id}.json", "client.json")
            if client.playlist:
                playlist = self.playlist(client.playlist)
                bundle.write(self.root / "playlists" / f"{playlist.name}.json", "playlist.json")
                for entry in playlist.sessions:
                    local = self.root / "protocols" / entry.protocol
                    if local.is_file():
                        bundle.write(local, entry.protocol)
        return target
