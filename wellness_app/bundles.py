"""Bundles: a client, their playlist and the custom protocols it uses, in one JSON file to export and import.

A bundle (format ``heartsong-bundle/1``, at most ``MAX_BUNDLE_BYTES``, data only, never executed)::

    {"format": "heartsong-bundle/1", "client": {ClientProfile}, "playlist": {Playlist} | null,
     "protocols": {"calm-5.json": {Protocol}, ...}}

Every protocol a bundle's playlist names must be built in or inside the bundle. An import is validated whole,
then stored in one SQLite transaction: it lands whole or not at all.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from therapy_profiles import ClientProfile, Playlist, ProfileError, Protocol, builtin_protocol_names, load_protocol
from therapy_profiles.schema import MAX_FILE_BYTES, reserved_protocol_name_error, validate_document
from wellness_app.clients import client_overrides, client_playlist, get_client
from wellness_app.errors import TherapistError
from wellness_app.playlists import PROTOCOL_FILE, custom_protocols
from wellness_app.storage import Store, write_private


BUNDLE_FORMAT = "heartsong-bundle/1"
MAX_BUNDLE_BYTES = 1024 * 1024  # a client, a 100-session playlist and a few custom protocols fit in a few KiB
MAX_BUNDLE_PROTOCOLS = 32


class ImportConflict(TherapistError):
    """A bundle would overwrite a stored document that differs: ``kind`` (client, playlist or protocol) ``key``."""

    def __init__(self, kind: str, key: str) -> None:
        super().__init__(f"a different {kind} {key!r} is already stored: pass --replace to overwrite it")
        self.kind, self.key = kind, key


def export_bundle(store: Store, client_id: str, target: Path) -> dict[str, Any]:
    """Write the client, their playlist and the custom protocols it uses to ``target`` (user-only file)."""
    client = get_client(store, client_id)
    playlist = client_playlist(store, client) if client.playlist else None
    custom = custom_protocols(store)
    used = sorted({e.protocol for e in playlist.sessions if e.protocol in custom}) if playlist else []
    bundle = {
        "format": BUNDLE_FORMAT,
        "client": client.model_dump(mode="json"),
        "playlist": playlist.model_dump(mode="json") if playlist else None,
        "protocols": {name: custom[name].model_dump(mode="json") for name in used},
    }
    write_private(target, json.dumps(bundle, indent=1, allow_nan=False))
    return bundle


def read_bundle(path: Path) -> tuple[ClientProfile, Playlist | None, dict[str, Protocol]]:
    """Parse and validate a bundle completely; raises one ProfileError line naming the field and the fix."""
    what = f"bundle {path.name}"
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_BUNDLE_BYTES + 1)  # bounded: stat sizes lie for pipes and /dev files
    except OSError as error:
        raise ProfileError(f"{what} cannot be read ({error.strerror or error})") from None
    if len(raw) > MAX_BUNDLE_BYTES:
        raise ProfileError(f"{what} is larger than the {MAX_BUNDLE_BYTES // 1024} KiB limit (a real bundle is a few KiB)")
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
    except UnicodeDecodeError as error:
        raise ProfileError(f"{what} is not UTF-8 text (bad byte at offset {error.start})") from None
    except json.JSONDecodeError as error:
        raise ProfileError(f"{what} is not valid JSON ({error.msg} at line {error.lineno}, column {error.colno})") from None
    except ValueError as error:
        raise ProfileError(f"{what} is not valid JSON ({error})") from None
    except RecursionError:
        raise ProfileError(f"{what} is nested too deeply") from None
    if not isinstance(data, dict):
        raise ProfileError(f"{what}: the top level must be an object with format, client, playlist, protocols")
    if data.get("format") != BUNDLE_FORMAT:
        raise ProfileError(f"{what}: format = {data.get('format')!r} is not supported (this Heartsong reads "
                           f"{BUNDLE_FORMAT!r}; export the bundle again)")
    unknown = sorted(set(data) - {"format", "client", "playlist", "protocols"})
    if unknown:
        raise ProfileError(f"{what}: {unknown[0]} is not a known field (allowed: format, client, playlist, protocols)")
    client = validate_document(ClientProfile, data.get("client"), f"{what}: client")
    raw_protocols = data.get("protocols") or {}
    if not isinstance(raw_protocols, dict) or len(raw_protocols) > MAX_BUNDLE_PROTOCOLS:
        raise ProfileError(f"{what}: protocols must be an object of at most {MAX_BUNDLE_PROTOCOLS} protocols by file name")
    protocols = {}
    for file_name, protocol_data in raw_protocols.items():
        if not PROTOCOL_FILE.fullmatch(file_name):
            raise ProfileError(f"{what}: protocols[{file_name[:60]!r}] is not a valid file name "
                               "(allowed: 1-40 lower-case letters, digits and '-', then .json or .toml)")
        if len(json.dumps(protocol_data)) > MAX_FILE_BYTES:
            raise ProfileError(f"{what}: protocols[{file_name!r}] is larger than {MAX_FILE_BYTES // 1024} KiB")
        protocol = validate_document(Protocol, protocol_data, f"{what}: protocols[{file_name!r}]")
        reserved = reserved_protocol_name_error(file_name, protocol)
        if reserved:
            raise ProfileError(f"{what}: protocols[{file_name!r}]: {reserved}")
        protocols[file_name] = protocol
    playlist = None
    if data.get("playlist") is not None:
        playlist = validate_document(Playlist, data["playlist"], f"{what}: playlist")
        builtin = set(builtin_protocol_names())
        for index, entry in enumerate(playlist.sessions):
            if entry.protocol not in protocols and entry.protocol not in builtin:
                raise ProfileError(f"{what}: playlist.sessions[{index}].protocol = {entry.protocol!r} is neither built in "
                                   "nor in the bundle's protocols (add it to protocols)")
            base = protocols.get(entry.protocol) or load_protocol(entry.protocol)
            try:
                base.with_overrides(client_overrides(client, entry))
            except ProfileError as error:
                raise ProfileError(f"{what}: playlist.sessions[{index}]: {error}") from None
    if (playlist.name if playlist else None) != client.playlist:
        raise ProfileError(f"{what}: client.playlist = {client.playlist!r} does not match the bundle's playlist "
                           f"{playlist.name if playlist else None!r} (they must name the same playlist)")
    return client, playlist, protocols


def import_bundle(store: Store, path: Path, *, replace: bool = False) -> ClientProfile:
    """Validate the whole bundle, then store client, playlist and protocols in one transaction. Existing
    documents with other contents are only overwritten when ``replace``; the client's learnt personalisation
    is kept."""
    client, playlist, protocols = read_bundle(path)
    writes = [("protocols", name, p.model_dump(mode="json")) for name, p in protocols.items()]
    if playlist is not None:
        writes.append(("playlists", playlist.name, playlist.model_dump(mode="json")))
    writes.append(("clients", client.client_id, client.model_dump(mode="json")))
    with store.transaction() as db:
        for table, key, value in writes:
            existing = store.get_document(table, key)
            if existing is not None and existing != value and not replace:
                raise ImportConflict({"protocols": "protocol", "playlists": "playlist", "clients": "client"}[table], key)
            Store.put_document(db, table, key, value)
    return client


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")
