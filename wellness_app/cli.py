"""The ``heartsong`` command line: sessions, the demo, sensors, protocols; other modules add their subcommands."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from wellness_app.arguments import OneLineParser, positive_amount, seed
from wellness_app.errors import CliError
from wellness_app.terminal import shown

EXIT_USAGE = 2


def _progress_printer(console, total_s: float):
    """A rich progress bar that also shows the live state (HR, breathing or "unsure", guide, tempo)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from wellness_app.ui.names import UNSURE, breathing_text

    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[status]}"),
        TimeRemainingColumn(), console=console, transient=False,
    )
    task = progress.add_task("session", total=total_s, status="")

    def update(t, state, bar):
        controls = bar.decision.controls
        hr = f"{state.heart_rate_bpm:.0f}" if state.heart_rate_bpm else "--"
        br = breathing_text(state.breathing_rate_bpm, state.breathing_confidence)
        breathing = br if br == UNSURE else f"{br}/min"
        status = (f"HR {hr} bpm · breathing {breathing} · guide {controls.breath_rate_bpm:.1f}/min · "
                  f"{controls.tempo_bpm:.0f} bpm {controls.mode} · {bar.decision.phase_name}")
        progress.update(task, completed=t, status=status)

    return progress, update


def summary_line(summary: dict) -> str:
    """The end of a session in one line: heart rate, breathing (sure seconds only: "unsure" without any) and guide,
    first vs last 30 s (``wellness_app.record.SessionRecord.summary``)."""
    from wellness_app.ui.names import UNSURE

    start, end = (UNSURE if (v := summary[f"breathing_rate_bpm_{edge}"]) is None else f"{v} /min"
                  for edge in ("start", "end"))
    return (f"heart rate {summary['heart_rate_bpm_start']} -> {summary['heart_rate_bpm_end']} bpm, breathing {start} "
            f"-> {end} (guide {summary['guide_rate_bpm_start']} -> {summary['guide_rate_bpm_end']} /min); first vs "
            "last 30 s (breathing: sure seconds only)")


GENERATORS = ("model", "model-torch", "rules")


def cmd_session(args) -> int:
    """``demo`` and ``session``: build the session, play it live, or render it to files (``--offline``, or when
    there is no sound card and the sensor can be simulated); one line and exit 2 on any failure, also when the
    database stopped recording (the music never stops for storage: see ``wellness_app.record``)."""
    from rich.console import Console
    from rich.markup import escape

    from biosignals.sources import SensorError
    from generators.player import AudioDeviceError
    from wellness_app.session import SessionOptions, build_engine, run_live_blocking, run_offline

    console = Console(stderr=False)

    def note(message: str) -> None:
        console.print("[yellow]note:[/]", escape(shown(message)))

    options = SessionOptions(
        protocol=args.protocol, minutes=args.minutes, out_dir=Path(args.out), sensor=args.sensor,
        generator=args.generator, synth=args.synth, offline=args.offline, seed=args.seed,
        client_id=getattr(args, "client", None),
    )
    progress, update = _progress_printer(console, options.minutes * 60.0)
    engine, notices = build_engine(options, on_progress=update)
    for notice in notices:
        note(notice)
    engine.record.on_notice = note
    player = None if options.offline else _open_player(engine, args.device, note)
    with progress:
        try:
            if player is None:
                run_offline(engine)
            else:
                try:
                    run_live_blocking(engine, player)
                except AudioDeviceError as error:
                    raise CliError(f"{error}; everything up to now is saved in {options.out_dir}") from None
                finally:
                    player.close()
        except SensorError as error:  # the strap could not be reached: nothing was recorded
            raise CliError(str(error)) from None
        except OSError as error:  # an output file cannot be written (disk full)
            raise CliError(f"{error}; the session database keeps every second up to then "
                           "(see `heartsong history`)") from None
    out, record = options.out_dir, engine.record
    console.print(f"[green]session written:[/] {out / 'session.wav'}, {out / 'session.mid'}, {out / 'session.json'}")
    console.print(summary_line(record.summary()))
    if record.storage_failure:
        from wellness_app.storage import data_dir

        kept = f"{record.path} and {record.spill_path}" if record.spill_path.exists() else str(record.path)
        lost = f"; {record.unsaved_rows} rows could not be saved anywhere" if record.unsaved_rows else ""
        raise CliError(f"{record.storage_failure}: the session played to its end and is kept in {kept}{lost}; free "
                       f"some space for the database in {data_dir()} before the next session")
    if record.output_failure:
        raise CliError(f"{record.output_failure}: the session played to its end; the database keeps every second "
                       "(see `heartsong history`)")
    return 0


def _open_player(engine, device: str | None, note):
    """The sound card, started; None when there is none and the session can be rendered to files instead (a
    simulated sensor). Refused, before anything is recorded, when the ``device`` asked for cannot be opened, and
    for a strap session, which needs real time."""
    from generators.player import AudioDeviceError, LivePlayer

    try:
        player = LivePlayer(sample_rate=engine.sample_rate, device=device)
        player.open()
        return player
    except AudioDeviceError as error:
        if device is not None:
            raise CliError(str(error)) from None
        problem = str(error).split(";")[0]
        if not hasattr(engine.source, "packets_until"):
            raise CliError(f"{problem}: a session with a strap plays live and needs one (connect a sound card, or "
                           "use --offline with --sensor virtual or replay:FILE to render files)") from None
        note(f"{problem}: rendering to files instead")
        return None


def cmd_protocols(args) -> int:
    """The built-in protocols, then the therapist's stored ones (played by their file name, e.g. calm-5.json)."""
    from therapy_profiles import builtin_protocols
    from wellness_app.storage import StorageError, open_store
    from wellness_app.playlists import custom_protocols

    protocols = sorted(builtin_protocols().items())
    try:
        protocols += sorted(custom_protocols(open_store()).items())
    except (StorageError, ValueError) as error:
        print(f"heartsong: the stored protocols cannot be listed ({shown(error)})", file=sys.stderr)
    for name, protocol in protocols:
        minutes = protocol.total_duration_s / 60.0
        print(f"{shown(name):<22} {minutes:5.1f} min  {shown(protocol.description)}")
    return 0


def cmd_scan(args) -> int:
    import asyncio

    from biosignals.sources import SensorError, scan_straps

    try:
        straps = asyncio.run(scan_straps(virtual=args.virtual, timeout=args.timeout))
    except SensorError as error:
        raise CliError(str(error)) from None
    if not straps:
        print("no heart-rate straps found: wear the strap (moisten the electrodes) and scan again")
        return 0
    print(f"{'address':<20} {'name':<24} {'RSSI':>8}  PMD (ECG/ACC)")
    for strap in straps:
        rssi = f"{strap.rssi_dbm} dBm" if strap.rssi_dbm is not None else "--"
        pmd = {True: "yes", False: "no", None: "not probed"}[strap.offers_pmd]
        print(f"{shown(strap.address):<20} {shown(strap.name or '(no name)'):<24} {rssi:>8}  {pmd}")
    return 0


def cmd_record(args) -> int:
    import asyncio

    from biosignals.sources import SensorError, open_source
    from biosignals.sources.replay import record_session
    from generators.output import create_file

    try:
        source = open_source(args.sensor)
        count = asyncio.run(record_session(source, args.minutes, lambda: create_file(args.out), sensor=args.sensor))
    except SensorError as error:
        raise CliError(str(error)) from None
    except OSError as error:
        raise CliError(f"cannot write recording {args.out} ({error.strerror or error}): choose another --out") from None
    print(f"recorded {count} packets to {args.out}; replay with --sensor replay:{args.out}")
    return 0


def _add_session_options(parser: argparse.ArgumentParser, *, demo: bool) -> None:
    parser.add_argument("--minutes", type=positive_amount(240, "minutes"), default=3.0,
                        help="session length in minutes, up to 240 (default 3)")
    parser.add_argument("--out", default="out/demo" if demo else "out/session", help="output directory")
    parser.add_argument("--generator", default="model", choices=list(GENERATORS),
                        help="model: the learned melody model (NumPy inference); model-torch: the same model on "
                             "PyTorch; rules: the rule-based baseline")
    parser.add_argument("--synth", default="auto", choices=["auto", "fluidsynth", "builtin"],
                        help="synthesiser: FluidSynth with a GM SoundFont, or the built-in one (auto: FluidSynth when installed)")
    parser.add_argument("--seed", type=seed, default=1,
                        help="random seed for the virtual listener and the music, 0 to 4294967295 (default 1)")
    parser.add_argument("--device", default=None,
                        help="audio output device: index or part of its name (default: the system default)")
    if demo:
        parser.set_defaults(protocol="coherent-6", sensor="virtual", offline=False)
        parser.add_argument("--offline", action="store_true", help="render files without playing")
    else:
        parser.add_argument("--protocol", required=True, help="protocol name (see `heartsong protocols`) or file")
        parser.add_argument("--sensor", default="virtual",
                            help="virtual (simulated listener), virtual:hrs|hr-only|h10 (Bluetooth lab), "
                                 "replay:FILE, or a strap address")
        parser.add_argument("--offline", action="store_true",
                            help="run faster than real time and render files without a sound card")
        parser.add_argument("--client", default=None,
                            help="client id (see `heartsong client list`): their limits and personalised music")


def build_parser() -> argparse.ArgumentParser:
    from biosignals.sources.replay import MAX_RECORDING_S

    parser = OneLineParser(prog="heartsong", description="Biofeedback relaxation music.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="a guided coherent-breathing session with the virtual strap")
    _add_session_options(demo, demo=True)
    demo.set_defaults(func=cmd_session)

    session = sub.add_parser("session", help="a guided session with a chosen protocol and sensor")
    _add_session_options(session, demo=False)
    session.set_defaults(func=cmd_session)

    scan = sub.add_parser("scan", help="list heart-rate straps in range")
    scan.add_argument("--virtual", action="store_true", help="scan the virtual sensor lab instead of Bluetooth")
    scan.add_argument("--timeout", type=positive_amount(600, "seconds"), default=5.0,
                      help="seconds to scan (default 5)")
    scan.set_defaults(func=cmd_scan)

    record = sub.add_parser("record", help="record a strap's raw packets to a replayable file")
    record.add_argument("--sensor", required=True, help="strap address, virtual:hrs|hr-only|h10")
    record.add_argument("--minutes", type=positive_amount(MAX_RECORDING_S / 60, "minutes"), required=True,
                        help=f"how long to record, up to {MAX_RECORDING_S / 3600:g} h")
    record.add_argument("--out", required=True, help="recording file (JSON Lines)")
    record.set_defaults(func=cmd_record)

    protocols = sub.add_parser("protocols", help="list the built-in protocols and the stored custom ones")
    protocols.set_defaults(func=cmd_protocols)

    from generators.model import cli as model_cli
    from wellness_app import analyze, therapist_cli, ui

    model_cli.add_subcommands(sub)
    analyze.add_subcommand(sub)
    therapist_cli.add_subcommands(sub)
    ui.add_subcommand(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from wellness_app.session import SessionSetupError

    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # --help, or a usage error already printed in one line
        return stop.code
    os.umask(0o077)  # session files hold health data: readable by the user alone
    try:
        return args.func(args)
    except (CliError, SessionSetupError) as error:
        print(f"heartsong: error: {shown(error)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("heartsong: stopped; everything recorded so far is saved", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
