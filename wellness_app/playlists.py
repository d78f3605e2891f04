"""Stored playlists and the therapist's custom protocols, and the protocol a playlist entry names.

Storage (``wellness_app.storage``): ``playlists`` holds each Playlist by name, ``protocols`` the custom protocols
playlists name by file name (``calm-5.json``; built-in protocols are named without a suffix). Every document is
validated by ``therapy_profiles`` before it is written and again when it is read.
"""
from __future__ import annotations

import re

from therapy_profiles import Playlist, PlaylistEntry, ProfileError, Protocol, load_protocol
from therapy_profiles.schema import reserved_protocol_name_error, validate_document
from wellness_app.errors import TherapistError
from wellness_app.storage import Store


PROTOCOL_FILE = re.compile(r"[a-z0-9][a-z0-9-]{0,39}\.(json|toml)")


def get_playlist(store: Store, name: str) -> Playlist:
    data = store.get_document("playlists", name)
    if data is None:
        raise TherapistError(f"no playlist {name!r} is stored: assign one from a file with `heartsong playlist assign`")
    return validate_document(Playlist, data, f"stored playlist {name}")


def custom_protocols(store: Store) -> dict[str, Protocol]:
    """The stored custom protocols, by the file name playlists use."""
    return {key: validate_document(Protocol, data, f"stored protocol {key}") for key, data in store.documents("protocols").items()}


def protocol_file_name(protocol: Protocol) -> str:
    """The name playlists use for a custom protocol: its name plus ``.json`` (built-ins are named bare)."""
    return f"{protocol.name}.json"


def save_custom_protocol(store: Store, protocol: Protocol, *, replacing: str | None = None) -> str:
    """Store a therapist's own protocol under ``protocol_file_name`` and return that name.

    A new protocol may not take a built-in's name or another stored protocol's (``replacing`` names the one being
    edited, which may keep or change its name; renaming one that playlists use is refused, as they would lose it).
    Every playlist that uses the protocol must still be valid with its overrides. One transaction.
    """
    file_name = protocol_file_name(protocol)
    reserved = reserved_protocol_name_error(file_name, protocol)
    if reserved:
        raise TherapistError(reserved)
    with store.transaction() as db:
        if file_name != replacing and Store.has(db, "protocols", "file_name", file_name):
            raise TherapistError(f"a protocol named {protocol.name!r} is already stored: pick another name, or edit that one")
        renamed = replacing is not None and replacing != file_name
        for playlist in list_playlists(store):
            for index, entry in enumerate(playlist.sessions):
                if renamed and entry.protocol == replacing:
                    raise TherapistError(f"{replacing} is used by playlist {playlist.name!r}: keep its name, or save "
                                         "it as a new protocol")
                if entry.protocol == file_name:
                    try:
                        protocol.with_overrides(entry.overrides)
                    except ProfileError as error:
                        raise TherapistError(f"playlist {playlist.name!r}, session {index + 1}: {error}") from None
        if renamed:
            db.execute("DELETE FROM protocols WHERE file_name = ?", (replacing,))
        Store.put_document(db, "protocols", file_name, protocol.model_dump(mode="json"))
    return file_name


def delete_custom_protocol(store: Store, file_name: str) -> None:
    """Remove a stored custom protocol; refused while a playlist uses it."""
    using = _playlists_using(store, file_name)
    if using:
        raise TherapistError(f"{file_name} is used by playlist {using[0]!r}: take it out of that playlist first")
    with store.transaction() as db:
        db.execute("DELETE FROM protocols WHERE file_name = ?", (file_name,))


def list_playlists(store: Store) -> list[Playlist]:
    """Every stored playlist, by name, validated."""
    return [validate_document(Playlist, data, f"stored playlist {name}") for name, data in store.documents("playlists").items()]


def _playlists_using(store: Store, file_name: str) -> list[str]:
    return [p.name for p in list_playlists(store) if any(e.protocol == file_name for e in p.sessions)]


def entry_protocol(entry: PlaylistEntry, custom: dict[str, Protocol]) -> Protocol:
    """The protocol a playlist entry names (built in, or a custom protocol file name), before any overrides."""
    if entry.protocol in custom:
        return custom[entry.protocol]
    if PROTOCOL_FILE.fullmatch(entry.protocol):
        raise ProfileError(f"protocol file {entry.protocol!r} is not stored: include it next to the playlist or in the bundle")
    return load_protocol(entry.protocol)
