"""The therapist's workflow: clients, playlists, bundles, history, reports, ratings, personalised offline renders,
as a Python API and as ``heartsong`` subcommands (``add_subcommands``).

Storage (``wellness_app.storage``, one SQLite file): ``clients`` holds each ClientProfile, ``playlists`` each
Playlist by name, ``protocols`` the custom protocols playlists name by file name (``calm-5.json``; built-in
protocols are named without a suffix), ``personalisation`` each client's bandit. Every document is validated by
``therapy_profiles`` before it is written and again when it is read, and every multi-document change (assign a
playlist, import a bundle, rate a session and teach the bandit) is one SQLite transaction: it lands whole or not
at all.

A bundle is one JSON file (format ``heartsong-bundle/1``, at most ``MAX_BUNDLE_BYTES``, data only, never
executed)::

    {"format": "heartsong-bundle/1", "client": {ClientProfile}, "playlist": {Playlist} | null,
     "protocols": {"calm-5.json": {Protocol}, ...}}

Every protocol a bundle's playlist names must be built in or inside the bundle.
"""
from __future__ import annotations

import argparse
import functools
import json
import math
import re
import shutil
import statistics
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from therapy_profiles import (
    SCHEMA_VERSION,
    ClientProfile,
    Overrides,
    Playlist,
    PlaylistEntry,
    ProfileError,
    Protocol,
    builtin_protocol_names,
    load_client_profile,
    load_playlist,
    load_protocol,
)
from therapy_profiles.personalisation import (
    PARAMETERS,
    MusicBandit,
    SessionResponse,
    apply_choice,
    parse_choice,
    reward,
)
from therapy_profiles.schema import MAX_FILE_BYTES, validate_document
from wellness_app.errors import CliError
from wellness_app.storage import SessionInfo, Store, StorageError, open_store, write_private

BUNDLE_FORMAT = "heartsong-bundle/1"
MAX_BUNDLE_BYTES = 1024 * 1024  # a client, a 100-session playlist and a few custom protocols fit in a few KiB
MAX_BUNDLE_PROTOCOLS = 32
PROTOCOL_FILE = re.compile(r"[a-z0-9][a-z0-9-]{0,39}\.(json|toml)")
ADHERENCE_FULL_SCALE_BPM = 3.0  # mean |breathing - guide| at which breathing adherence scores 0
ADHERENCE_MIN_CONFIDENCE = 0.5  # breathing estimates below this confidence are not judged
ADHERENCE_MIN_SECONDS = 10


class TherapistError(Exception):
    """A request that cannot be carried out; ``str()`` is one line naming the problem and the fix."""


class ImportConflict(TherapistError):
    """A bundle would overwrite a stored document that differs: ``kind`` (client, playlist or protocol) ``key``."""

    def __init__(self, kind: str, key: str) -> None:
        super().__init__(f"a different {kind} {key!r} is already stored: pass --replace to overwrite it")
        self.kind, self.key = kind, key


# -- documents ---------------------------------------------------------------------------------------------
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
        if not replace and store_has(db, "clients", "client_id", client.client_id):
            raise TherapistError(f"client {client.client_id!r} already exists: choose another --id or pass --replace")
        if client.playlist is not None and not store_has(db, "playlists", "name", client.playlist):
            raise TherapistError(f"playlist {client.playlist!r} is not stored: assign it with `heartsong playlist assign`")
        Store.put_document(db, "clients", client.client_id, client.model_dump(mode="json"))


def store_has(db, table: str, key_column: str, key: str) -> bool:
    return db.execute(f"SELECT 1 FROM {table} WHERE {key_column} = ?", (key,)).fetchone() is not None


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
    if protocol.name in builtin_protocol_names():
        raise TherapistError(f"{protocol.name!r} is a built-in protocol: give yours another name, e.g. {protocol.name}-mine")
    with store.transaction() as db:
        if file_name != replacing and store_has(db, "protocols", "file_name", file_name):
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


# -- personalisation ---------------------------------------------------------------------------------------
def get_bandit(store: Store, client: ClientProfile) -> MusicBandit:
    """The client's bandit; a new one is restricted to the client's preferred modes and palette, if any."""
    data = store.get_document("personalisation", client.client_id)
    if data is not None:
        return MusicBandit.from_json(data, f"personalisation of client {client.client_id}")
    bandit = MusicBandit.new()
    if client.preferences.modes:
        bandit.allow("mode", list(client.preferences.modes))
    palettes = [p for p in client.preferences.palette if p in PARAMETERS["palette"]]
    if palettes:
        bandit.allow("palette", palettes)
    return bandit


def personalised_protocol(store: Store, client_id: str, entry: PlaylistEntry, *, explore: bool,
                          seed: int | None = None) -> tuple[Protocol, dict[str, Any]]:
    """A playlist entry as this client hears it: client overrides, then the bandit's musical choice (a sample
    when ``explore``, for a session the listener will rate; else the best learnt so far, for offline renders).
    An entry that fixes the mode keeps it. Returns the protocol and the choice to record with the session."""
    client = get_client(store, client_id)
    protocol = entry_protocol(entry, custom_protocols(store)).with_overrides(client_overrides(client, entry))
    bandit = get_bandit(store, client)
    choice = bandit.choose(np.random.default_rng(seed)) if explore else bandit.preferred()
    if entry.overrides.mode is not None:
        choice["mode"] = entry.overrides.mode
    return apply_choice(protocol, choice), choice


def measured_response(seconds: list[dict[str, Any]], summary: dict[str, Any], rating: int | None) -> SessionResponse:
    """The session's response for the bandit: HR and RMSSD change (summary: last 30 s minus first 30 s),
    breathing adherence (1 - mean |breathing - guide| / ``ADHERENCE_FULL_SCALE_BPM``, over seconds whose
    breathing confidence is at least ``ADHERENCE_MIN_CONFIDENCE``) and, if recorded, coherence as the mean share
    of HRV power in the peak: ratio c = peak / (total - peak) -> c / (1 + c) = peak / total, 0-1."""
    def change(column: str) -> float | None:
        start, end = summary.get(f"{column}_start"), summary.get(f"{column}_end")
        return end - start if start is not None and end is not None else None

    gaps = [abs(r["breathing_rate_bpm"] - r["guide_rate_bpm"]) for r in seconds
            if r.get("breathing_rate_bpm") is not None and r.get("guide_rate_bpm") is not None
            and (r.get("breathing_confidence") or 0.0) >= ADHERENCE_MIN_CONFIDENCE]
    adherence = None
    if len(gaps) >= ADHERENCE_MIN_SECONDS:
        adherence = max(0.0, 1.0 - statistics.fmean(gaps) / ADHERENCE_FULL_SCALE_BPM)
    coherence_values = [c / (1.0 + c) for r in seconds if (c := r.get("coherence")) is not None and math.isfinite(c)]
    return SessionResponse(
        rating=rating, hr_change_bpm=change("heart_rate_bpm"), rmssd_change_ms=change("rmssd_ms"),
        adherence=adherence, coherence=statistics.fmean(coherence_values) if coherence_values else None,
    )


def rate_session(store: Store, session_id: int, rating: int) -> float | None:
    """Store the rating; when the session was played with a personalisation choice for a client, teach the
    client's bandit in the same transaction. Returns the reward learnt from (None when nothing was learnt)."""
    info = store.session(session_id)
    choice = store.session_details(session_id)["personalisation"]
    if info.client_id is None or choice is None:
        store.rate(session_id, rating)
        return None
    client = get_client(store, info.client_id)
    bandit = get_bandit(store, client)
    value = reward(measured_response(store.seconds(session_id), info.summary, rating))
    if store.ratings(session_id):
        value = None  # a changed rating does not count the session twice
    with store.transaction() as db:
        if value is not None:
            bandit.update({p: parse_choice(p, str(v)) for p, v in choice.items()}, value)
            Store.put_document(db, "personalisation", client.client_id, bandit.to_json())
        store.rate(session_id, rating)
    return value


# -- playlists and bundles ---------------------------------------------------------------------------------
def assign_playlist(store: Store, client_id: str, source: str) -> Playlist:
    """Give the client a playlist: a stored playlist's name, or a playlist file (.toml/.json) whose custom
    protocol files lie next to it; the file, its protocols and the assignment are stored in one transaction."""
    client = get_client(store, client_id)
    path = Path(source)
    if path.suffix.lower() in (".toml", ".json") or path.exists():
        playlist = load_playlist(path)  # validates every protocol it names
        protocols = {e.protocol: load_protocol(path.parent / e.protocol)
                     for e in playlist.sessions if PROTOCOL_FILE.fullmatch(e.protocol)}
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
        protocols[file_name] = validate_document(Protocol, protocol_data, f"{what}: protocols[{file_name!r}]")
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


# -- rendering ---------------------------------------------------------------------------------------------
SILENT_RECORDING = json.dumps({"format": "heartsong-sensor-recording", "version": 1, "source": "no sensor",
                               "sensor": "none", "started_unix_s": 0.0, "packets": 0}) + "\n"


def render_playlist(store: Store, client_id: str, out_dir: Path, *, synth: str = "auto", seed: int = 1,
                    on_session=None) -> Path:
    """Render every session of the client's playlist offline, as the client hears it (client overrides and the
    bandit's best choice so far), to ``NN-protocol.wav`` (+ ``.mid``) in ``out_dir`` and an M3U playlist.
    There is no sensor: the policy follows the plan (a recording without packets stands in for the strap).
    Renders are not listening sessions, so nothing is added to the session history. Returns the M3U path."""
    from wellness_app.session import SessionOptions, build_engine, run_offline

    client = get_client(store, client_id)
    playlist = client_playlist(store, client)
    out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    lines = ["#EXTM3U", f"#PLAYLIST:{playlist.name} for {client.client_id}"]
    with tempfile.TemporaryDirectory(prefix="heartsong-render-") as work:
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
            shutil.move(options.out_dir / "session.wav", out_dir / f"{stem}.wav")
            shutil.move(options.out_dir / "session.mid", out_dir / f"{stem}.mid")
            title = f"{index}. {protocol.name} ({minutes:.1f} min, {choice['mode']})"
            lines += [f"#EXTINF:{round(protocol.total_duration_s)},{title}", f"{stem}.wav"]
    m3u = out_dir / f"{playlist.name}.m3u"
    m3u.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return m3u


# -- command line ------------------------------------------------------------------------------------------
def _session_id(store: Store, reference: str) -> int:
    """A session number from `heartsong history`, or the folder holding its session.json."""
    if reference.isdigit():
        return store.session(int(reference)).id
    path = Path(reference)
    info = store.session_by_out_dir(path.parent if path.name == "session.json" else path)
    if info is None:
        raise TherapistError(f"no stored session for {reference!r}: give a number from `heartsong history` or a session folder")
    return info.id


def _cli(func):
    """Run a subcommand with the user's store; one-line errors (the CLI prints them and exits 2)."""
    @functools.wraps(func)
    def run(args) -> int:
        try:
            with open_store() as store:
                return func(args, store) or 0
        except (TherapistError, ProfileError, StorageError) as error:
            raise CliError(str(error)) from None
        except OSError as error:
            raise CliError(f"{error.filename or 'file'}: {error.strerror or error}") from None
    return run


def _number(value: float | None, digits: int = 0) -> str:
    return "--" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


@_cli
def cmd_client_add(args, store: Store) -> None:
    if args.file:
        client = load_client_profile(args.file)
    else:
        if not args.id or not args.name:
            raise TherapistError("give --id and --name (or --file PROFILE.toml)")
        data = {"schema_version": SCHEMA_VERSION, "client_id": args.id, "display_name": args.name,
                "preferences": {"modes": _list(args.modes), "palette": _list(args.palette)},
                "limits": {"max_volume": args.max_volume, "min_tempo_bpm": args.min_tempo}}
        if args.resonance_rate is not None:
            data["resonance_rate_bpm"] = args.resonance_rate
        if args.tonic is not None:
            data["preferences"]["tonic"] = args.tonic
        client = validate_document(ClientProfile, data, "client")
    save_client(store, client, replace=args.replace)
    print(f"client {client.client_id} saved")


def _list(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


@_cli
def cmd_client_list(args, store: Store) -> None:
    clients = list_clients(store)
    if not clients:
        print("no clients yet: add one with `heartsong client add --id ID --name NAME`")
    for client in clients:
        sessions = len(store.list_sessions(client.client_id))
        print(f"{client.client_id:<20} {client.display_name:<24} playlist {client.playlist or '--':<20} {sessions} session(s)")


@_cli
def cmd_client_show(args, store: Store) -> None:
    client = get_client(store, args.client_id)
    print(json.dumps(client.model_dump(mode="json"), indent=1))
    if client.playlist:
        playlist = client_playlist(store, client)
        print(f"playlist {playlist.name}:")
        for index, entry in enumerate(playlist.sessions, start=1):
            protocol, choice = personalised_protocol(store, client.client_id, entry, explore=False)
            print(f"  {index}. {protocol.name}, {protocol.total_duration_s / 60:.1f} min, "
                  + ", ".join(f"{k} {v}" for k, v in choice.items()))
    bandit = get_bandit(store, client)
    print(f"personalisation after {bandit.sessions} rated session(s): best so far "
          + ", ".join(f"{k} {v}" for k, v in bandit.preferred().items())
          + (f"; locked: {', '.join(f'{k}={v}' for k, v in bandit.locked.items())}" if bandit.locked else ""))


@_cli
def cmd_client_tune(args, store: Store) -> None:
    client = get_client(store, args.client_id)
    bandit = MusicBandit.new() if args.reset else get_bandit(store, client)
    for item in args.lock or []:
        parameter, _, value = item.partition("=")
        bandit.lock(parameter, parse_choice(parameter, value))
    for parameter in args.unlock or []:
        bandit.unlock(parameter)
    for item in args.allow or []:
        parameter, _, values = item.partition("=")
        bandit.allow(parameter, [parse_choice(parameter, v) for v in _list(values)])
    with store.transaction() as db:
        Store.put_document(db, "personalisation", client.client_id, bandit.to_json())
    print(f"personalisation of {client.client_id}: locked {bandit.locked or 'nothing'}; allowed "
          + "; ".join(f"{p} {', '.join(map(str, v))}" for p, v in bandit.allowed.items()))


@_cli
def cmd_playlist_assign(args, store: Store) -> None:
    playlist = assign_playlist(store, args.client, args.playlist)
    print(f"playlist {playlist.name} ({len(playlist.sessions)} session(s)) assigned to {args.client}")


@_cli
def cmd_playlist_render(args, store: Store) -> None:
    def progress(index, total, protocol, choice):
        print(f"rendering {index}/{total}: {protocol.name} ({protocol.total_duration_s / 60:.1f} min, {choice['mode']})")

    m3u = render_playlist(store, args.client, Path(args.out), synth=args.synth, seed=args.seed, on_session=progress)
    print(f"playlist written: {m3u}")


@_cli
def cmd_bundle_export(args, store: Store) -> None:
    bundle = export_bundle(store, args.client, Path(args.out))
    print(f"bundle written: {args.out} (client, {'a playlist' if bundle['playlist'] else 'no playlist'}, "
          f"{len(bundle['protocols'])} custom protocol(s))")


@_cli
def cmd_bundle_import(args, store: Store) -> None:
    client = import_bundle(store, Path(args.file), replace=args.replace)
    print(f"client {client.client_id} imported" + (f" with playlist {client.playlist}" if client.playlist else ""))


def history_line(info: SessionInfo) -> str:
    s = info.summary
    hr = f"HR {_number(s.get('heart_rate_bpm_start'))}->{_number(s.get('heart_rate_bpm_end'))}"
    minutes = f"{((info.last_t_s or -1) + 1) / 60:.1f} min"
    return (f"{info.id:>5}  {info.started.astimezone():%Y-%m-%d %H:%M}  {info.protocol:<22} {info.client_id or '--':<14} "
            f"{minutes:>9}  {info.status:<10} {hr:<12} rated {info.rating or '--'}")


@_cli
def cmd_history(args, store: Store) -> None:
    sessions = store.list_sessions(args.client, limit=None if args.weeks else args.limit)
    if not sessions:
        print("no sessions recorded yet")
        return
    if args.weeks:
        from wellness_app.trends import week_line, weekly_trends

        for week in weekly_trends(sessions)[-args.weeks:]:
            print(week_line(week))
        return
    print(f"{'id':>5}  {'started':<16}  {'protocol':<22} {'client':<14} {'length':>9}  {'status':<10} {'heart rate':<12} rating")
    for info in sessions:
        print(history_line(info))


@_cli
def cmd_report(args, store: Store) -> None:
    from wellness_app.reports import write_report

    session_id = _session_id(store, args.session)
    out = Path(args.out) if args.out else Path(f"heartsong-report-{session_id}")
    files = write_report(store, session_id, out)
    print(f"report written: {files['html']} (CSV: {', '.join(p.name for k, p in files.items() if k != 'html')})")


@_cli
def cmd_rate(args, store: Store) -> None:
    session_id = _session_id(store, args.session)
    if not 1 <= args.rating <= 5:
        raise TherapistError(f"rating {args.rating} is out of range: give a whole number from 1 to 5")
    learnt = rate_session(store, session_id, args.rating)
    print(f"session {session_id} rated {args.rating}" + (f"; personalisation learnt reward {learnt:.2f}" if learnt is not None else ""))


def _week_count(text: str) -> int:
    try:
        weeks = int(text)
    except ValueError:
        weeks = 0
    if weeks < 1:
        raise argparse.ArgumentTypeError(f"--weeks {text} must be a whole number of weeks, 1 or more, e.g. 8")
    return weeks


def add_subcommands(sub: argparse._SubParsersAction) -> None:
    """Add the therapist's subcommands to the ``heartsong`` parser's subparsers."""
    client = sub.add_parser("client", help="clients: add, list, show, tune personalisation")
    client_sub = client.add_subparsers(dest="client_command", required=True, metavar="ACTION")
    add = client_sub.add_parser("add", help="add a client (pseudonymous: no real names or contact details)")
    add.add_argument("--file", help="a client profile file (.toml or .json) instead of the options below")
    add.add_argument("--id", help="pseudonymous client id: letters, digits, '_' and '-', up to 64")
    add.add_argument("--name", help="display name, up to 80 characters")
    add.add_argument("--resonance-rate", type=float, help="assessed resonance breathing rate, 4-7.5 breaths/min")
    add.add_argument("--max-volume", type=float, default=1.0, help="level ceiling 0-1 (default 1)")
    add.add_argument("--min-tempo", type=float, default=40.0, help="lowest tempo 40-120 beats/min (default 40)")
    add.add_argument("--modes", help="preferred modes, comma-separated: the personalisation chooses among these")
    add.add_argument("--palette", help="preferred instruments, comma-separated (e.g. piano,harp)")
    add.add_argument("--tonic", type=int, help="preferred key, pitch class 0-11 (0 = C)")
    add.add_argument("--replace", action="store_true", help="replace an existing client of that id")
    add.set_defaults(func=cmd_client_add)
    client_sub.add_parser("list", help="list clients").set_defaults(func=cmd_client_list)
    show = client_sub.add_parser("show", help="a client's profile, playlist and personalisation")
    show.add_argument("client_id")
    show.set_defaults(func=cmd_client_show)
    tune = client_sub.add_parser("tune", help="lock, unlock or limit the personalisation's musical choices")
    tune.add_argument("client_id")
    tune.add_argument("--lock", action="append", metavar="PARAM=VALUE",
                      help=f"always use VALUE ({', '.join(PARAMETERS)}); repeatable")
    tune.add_argument("--unlock", action="append", metavar="PARAM", help="let the personalisation choose again")
    tune.add_argument("--allow", action="append", metavar="PARAM=V1,V2", help="choose only among these values")
    tune.add_argument("--reset", action="store_true", help="forget what was learnt, locks and limits")
    tune.set_defaults(func=cmd_client_tune)

    playlist = sub.add_parser("playlist", help="playlists: assign to a client, render to audio files")
    playlist_sub = playlist.add_subparsers(dest="playlist_command", required=True, metavar="ACTION")
    assign = playlist_sub.add_parser("assign", help="assign a playlist (file or stored name) to a client")
    assign.add_argument("--client", required=True)
    assign.add_argument("playlist", help="a playlist file (.toml/.json, custom protocols next to it) or a stored name")
    assign.set_defaults(func=cmd_playlist_assign)
    render = playlist_sub.add_parser("render", help="render the client's playlist to WAV files and an M3U playlist")
    render.add_argument("--client", required=True)
    render.add_argument("--out", required=True, help="output folder")
    render.add_argument("--synth", default="auto", choices=["auto", "fluidsynth", "builtin"])
    render.add_argument("--seed", type=int, default=1, help="random seed for the music")
    render.set_defaults(func=cmd_playlist_render)

    bundle = sub.add_parser("bundle", help="one JSON file with a client, their playlist and protocols")
    bundle_sub = bundle.add_subparsers(dest="bundle_command", required=True, metavar="ACTION")
    export = bundle_sub.add_parser("export", help="write a client's bundle")
    export.add_argument("--client", required=True)
    export.add_argument("--out", required=True, help="bundle file to write (.json)")
    export.set_defaults(func=cmd_bundle_export)
    load = bundle_sub.add_parser("import", help="validate and import a bundle, all or nothing")
    load.add_argument("file")
    load.add_argument("--replace", action="store_true", help="overwrite stored documents that differ")
    load.set_defaults(func=cmd_bundle_import)

    history = sub.add_parser("history", help="recorded sessions, newest first")
    history.add_argument("--client", help="only this client's sessions")
    history.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    history.add_argument("--weeks", type=_week_count, default=0, metavar="N",
                         help="instead, a line per week for the last N weeks with sessions (see wellness_app/trends.py)")
    history.set_defaults(func=cmd_history)

    report = sub.add_parser("report", help="a session's HTML report and CSV files")
    report.add_argument("session", help="session number (see `heartsong history`) or session folder")
    report.add_argument("--out", help="output folder (default heartsong-report-ID)")
    report.set_defaults(func=cmd_report)

    rate = sub.add_parser("rate", help="rate a session 1-5 (teaches the client's personalisation)")
    rate.add_argument("session", help="session number (see `heartsong history`) or session folder")
    rate.add_argument("rating", type=int, help="1 (not helpful) to 5 (very helpful)")
    rate.set_defaults(func=cmd_rate)
