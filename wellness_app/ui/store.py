"""The app's few operations on the shared SQLite store that ``wellness_app.clients`` and ``playlists`` have no single call for
(save a playlist from the form, edit or unassign a client, read a session back for the Summary screen);
everything else the screens call in ``wellness_app.clients``, ``playlists``, ``bundles`` and ``storage`` directly, as the CLI does."""
from __future__ import annotations

from typing import Any

from therapy_profiles import SCHEMA_VERSION, ClientProfile, Playlist
from therapy_profiles.schema import validate_document
from wellness_app.storage import Store
from wellness_app.clients import assign_playlist, get_client, save_client
from wellness_app.playlists import custom_protocols, entry_protocol


def save_playlist(store: Store, data: dict[str, Any]) -> Playlist:
    """Validate a playlist from the form and store it (replacing one of that name); every protocol it names must
    be built in or a stored custom protocol. Raises ProfileError (one line) naming the wrong field."""
    playlist = validate_document(Playlist, {"schema_version": SCHEMA_VERSION, **data}, "playlist")
    custom = custom_protocols(store)
    for entry in playlist.sessions:
        entry_protocol(entry, custom)
    with store.transaction() as db:
        Store.put_document(db, "playlists", playlist.name, playlist.model_dump(mode="json"))
    return playlist


def save_client_form(store: Store, data: dict[str, Any]) -> ClientProfile:
    """Create or edit a client from the form's fields; an edited client keeps its playlist. Raises ProfileError
    (one line) naming the wrong field."""
    stored = store.get_document("clients", str(data.get("client_id", "")))
    if stored and stored.get("playlist"):
        data = {"playlist": stored["playlist"], **data}
    client = validate_document(ClientProfile, {"schema_version": SCHEMA_VERSION, **data}, "client profile")
    save_client(store, client, replace=True)
    return client


def set_playlist(store: Store, client_id: str, playlist: str | None) -> None:
    """Give the client a stored playlist by name, or remove their playlist (None)."""
    if playlist is not None:
        assign_playlist(store, client_id, playlist)
        return
    save_client(store, get_client(store, client_id).model_copy(update={"playlist": None}), replace=True)


def session_record(store: Store, session_id: int) -> dict[str, Any]:
    """A stored session as the Summary screen shows it: protocol, summary and per-second series."""
    return {"protocol": store.session_details(session_id)["protocol"], "summary": store.session(session_id).summary,
            "seconds": store.seconds(session_id)}
