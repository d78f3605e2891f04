"""The therapist's clients: stored profiles, the playlist assigned to each, and the overrides a client's personal
parameters add to a playlist entry. Storage: ``clients`` holds each ClientProfile by id; assigning a playlist
stores it, its custom protocols and the assignment in one transaction.
"""
from __future__ import annotations

from pathlib import Path

from therapy_profiles import ClientProfile, Overrides, Playlist, PlaylistEntry, load_playlist, load_protocol
from therapy_profiles.schema import reserved_protocol_name_error, validate_document
from wellness_app.errors import TherapistError
from wellness_app.playlists import PROTOCOL_FILE, get_playlist
from wellness_app.storage import Store


def get_client(store: Store, client_id: str) -> ClientProfile:
    data = store.get_document("clients", client_id)
    if data is None:
        raise TherapistError(f"no client {client_id!r}: see `heartsong client list`, or add one with `heartsong client add`")
    return validate_document(ClientProfile, data, f"stored client {client_id}")


def list_clients(store: Store) -> list[ClientProfile]:
    return [validate_document(ClientProfile, data, f"stored client {key}") for key, data in store.documents("clients").items()]


def save_client(store: Store, client: ClientProfile, *, replace: bool = False) -> None:
    """Store a validated profile; an existing client is only replaced when ``replace``."""
    with store.transaction() as db:
        if not replace and Store.has(db, "clients", "client_id", client.client_id):
            raise TherapistError(f"client {client.client_id!r} already exists: choose another --id or pass --replace")
        if client.playlist is not None and not Store.has(db, "playlists", "name", client.playlist):
            raise TherapistError(f"playlist {client.playlist!r} is not stored: assign it with `heartsong playlist assign`")
        Store.put_document(db, "clients", client.client_id, client.model_dump(mode="json"))


def client_overrides(client: ClientProfile, entry: PlaylistEntry) -> Overrides:
    """The entry's overrides completed by the client's personal parameters: resonance rate as the breath target,
    preferred tonic, and the stricter of the two volume and tempo limits."""
    mine = entry.overrides
    return Overrides(
        breath_rate_bpm=mine.breath_rate_bpm if mine.breath_rate_bpm is not None else client.resonance_rate_bpm,
        mode=mine.mode,
        tonic=mine.tonic if mine.tonic is not None else client.preferences.tonic,
        max_volume=min(v for v in (mine.max_volume, client.limits.max_volume) if v is not None),
        min_tempo_bpm=max(v for v in (mine.min_tempo_bpm, client.limits.min_tempo_bpm) if v is not None),
        minutes=mine.minutes,
    )


def assign_playlist(store: Store, client_id: str, source: str) -> Playlist:
    """Give the client a playlist: a stored playlist's name, or a playlist file (.toml/.json) whose custom
    protocol files lie next to it; the file, its protocols and the assignment are stored in one transaction."""
    client = get_client(store, client_id)
    path = Path(source)
    if path.suffix.lower() in (".toml", ".json") or path.exists():
        playlist = load_playlist(path)  # validates every protocol it names
        protocols = {e.protocol: load_protocol(path.parent / e.protocol)
                     for e in playlist.sessions if PROTOCOL_FILE.fullmatch(e.protocol)}
        for file_name, protocol in protocols.items():
            reserved = reserved_protocol_name_error(file_name, protocol)
            if reserved:
                raise TherapistError(f"playlist {path.name}: protocol file {file_name}: {reserved}")
    else:
        playlist, protocols = get_playlist(store, source), {}
    with store.transaction() as db:
        for file_name, protocol in protocols.items():
            Store.put_document(db, "protocols", file_name, protocol.model_dump(mode="json"))
        Store.put_document(db, "playlists", playlist.name, playlist.model_dump(mode="json"))
        updated = client.model_copy(update={"playlist": playlist.name})
        Store.put_document(db, "clients", client.client_id, updated.model_dump(mode="json"))
    return playlist


def client_playlist(store: Store, client: ClientProfile) -> Playlist:
    if client.playlist is None:
        raise TherapistError(f"client {client.client_id!r} has no playlist: assign one with `heartsong playlist assign`")
    return get_playlist(store, client.playlist)
