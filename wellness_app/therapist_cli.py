"""The therapist's and the history subcommands of ``heartsong`` (client, playlist, bundle, history, report, rate),
added to the parser by ``add_subcommands``; each prints one-line errors (exit 2) through ``CliError``."""
from __future__ import annotations

import argparse
import functools
import json
import math
import re
from pathlib import Path

from therapy_profiles import SCHEMA_VERSION, ClientProfile, ProfileError, load_client_profile
from therapy_profiles.personalisation import PARAMETERS, MusicBandit, parse_choice
from therapy_profiles.schema import validate_document
from wellness_app.bundles import export_bundle, import_bundle
from wellness_app.clients import assign_playlist, client_playlist, get_client, list_clients, save_client
from wellness_app.arguments import seed, whole_number
from wellness_app.errors import CliError, TherapistError
from wellness_app.personalised import get_bandit, personalised_protocol, rate_session
from wellness_app.playlist_render import render_playlist
from wellness_app.storage import SessionInfo, Store, StorageError, open_store
from wellness_app.terminal import shown
from wellness_app.ui.names import count_text

MAX_HISTORY_LIMIT = 100_000


def _session_id(store: Store, reference: str) -> int:
    """A session number from `heartsong history`, or the folder holding its session.json."""
    if re.fullmatch(r"[0-9]{1,18}", reference):  # ASCII digits only: '²'.isdigit() is True; SQLite takes 63 bits
        return store.session(int(reference)).id
    path = Path(reference)
    info = store.session_by_out_dir(path.parent if path.name == "session.json" else path)
    if info is None:
        raise TherapistError(f"no stored session {reference!r}: give a number from `heartsong history` or a session folder")
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
        print(f"{shown(client.client_id):<20} {shown(client.display_name):<24} playlist {shown(client.playlist or '--'):<20} "
              f"{count_text(sessions, 'session')}")


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
    print(f"personalisation after {count_text(bandit.sessions, 'rated session')}: best so far "
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
    print(f"playlist {playlist.name} ({count_text(len(playlist.sessions), 'session')}) assigned to {args.client}")


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
          f"{count_text(len(bundle['protocols']), 'custom protocol')})")


@_cli
def cmd_bundle_import(args, store: Store) -> None:
    client = import_bundle(store, Path(args.file), replace=args.replace)
    print(f"client {client.client_id} imported" + (f" with playlist {client.playlist}" if client.playlist else ""))


def history_line(info: SessionInfo) -> str:
    s = info.summary
    hr = f"HR {_number(s.get('heart_rate_bpm_start'))}->{_number(s.get('heart_rate_bpm_end'))}"
    minutes = f"{((info.last_t_s or -1) + 1) / 60:.1f} min"
    return (f"{info.id:>5}  {info.started.astimezone():%Y-%m-%d %H:%M}  {shown(info.protocol):<22} "
            f"{shown(info.client_id or '--'):<14} "
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
    learnt = rate_session(store, session_id, args.rating)
    print(f"session {session_id} rated {args.rating}" + (f"; personalisation learnt reward {learnt:.2f}" if learnt is not None else ""))


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
    add.add_argument("--tonic", type=whole_number(0, 11), help="preferred key, pitch class 0-11 (0 = C)")
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
    render.add_argument("--seed", type=seed, default=1, help="random seed for the music, 0 to 4294967295 (default 1)")
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
    history.add_argument("--limit", type=whole_number(1, MAX_HISTORY_LIMIT), default=50,
                         help=f"at most this many, 1 to {MAX_HISTORY_LIMIT} (default 50)")
    history.add_argument("--weeks", type=whole_number(1, 5200), default=0, metavar="N",
                         help="instead, a line per week for the last N weeks with sessions (see wellness_app/trends.py)")
    history.set_defaults(func=cmd_history)

    report = sub.add_parser("report", help="a session's HTML report and CSV files")
    report.add_argument("session", help="session number (see `heartsong history`) or session folder")
    report.add_argument("--out", help="output folder (default heartsong-report-ID)")
    report.set_defaults(func=cmd_report)

    rate = sub.add_parser("rate", help="rate a session 1-5 (teaches the client's personalisation)")
    rate.add_argument("session", help="session number (see `heartsong history`) or session folder")
    rate.add_argument("rating", type=whole_number(1, 5), help="1 (not helpful) to 5 (very helpful)")
    rate.set_defaults(func=cmd_rate)
