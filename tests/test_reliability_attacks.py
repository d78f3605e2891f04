"""The hostile-input suite (issue 14): every attack of the issue, run through the CLI in-process (``main(argv)``), each
checked to end in one line naming the problem (exit 2) or in a meaningful result, never a traceback, with no
session row left behind by a refused session; files never written through a link; control characters refused at
validation and escaped on output; implausible heart-rate packets refused and counted.

Real parts: the CLI, SQLite on disk, the recordings and bundles as files. There is no sound card or Bluetooth
adapter here, so "no sound card" and "no Bluetooth" are this machine's real state, not mocks.
"""
from __future__ import annotations

import json
import math
import os
import stat
import struct
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from biosignals.heart_rate_measurement import HEART_RATE_MEASUREMENT_UUID
from biosignals.packet_decoder import Notice, PacketDecoder
from biosignals.types import SensorPacket
from therapy_profiles import SCHEMA_VERSION, load_protocol
from wellness_app import cli
from wellness_app.bundles import BUNDLE_FORMAT
from wellness_app.session import LiveWavWriter, SessionOptions, build_engine
from wellness_app.storage import Store

ROOT = Path(__file__).resolve().parents[1]
HEADER = {"format": "heartsong-sensor-recording", "version": 1, "source": "t", "sensor": "", "started_unix_s": 0}
HRM = HEART_RATE_MEASUREMENT_UUID
BEAT = "104800" + "04"  # flags 0x10 (RR present), 72 bpm, RR 1024/1024 s


def _recording(*lines) -> bytes:
    """A recording: the header, then each line (a dict as JSON, a str as it is)."""
    return "\n".join([json.dumps(HEADER)] + [line if isinstance(line, str) else json.dumps(line)
                                             for line in lines]).encode() + b"\n"


# name -> file content (bytes) of a recording given as --sensor replay:FILE, and what the one error line says
BAD_RECORDINGS = {
    "empty file": (b"", "not a JSON header"),
    "zeros": (b"\0" * 10_000, "not a JSON header"),
    "text": (b"import os\n", "not a JSON header"),
    "utf-16": ("\ufeff{}".encode("utf-16"), "not a JSON header"),
    "json array header": (b"[1, 2]\n", "not a Heartsong sensor recording"),
    "other format": (b'{"format": "other"}\n', "not a Heartsong sensor recording"),
    "future version": (b'{"format": "heartsong-sensor-recording", "version": 9}\n', "format version 9"),
    "packet without data": (_recording({"t": 0, "c": HRM}), "line 2 is not a packet"),
    "packet bad hex": (_recording({"t": 0, "c": HRM, "d": "zz"}), "line 2 is not a packet"),
    "packet not json": (_recording('{"t": 0, "c"', {"t": 1, "c": HRM, "d": BEAT}), "line 2 is not a packet"),
    "time Infinity": (_recording('{"t": Infinity, "c": "x", "d": "00"}'), "out of order or range"),
    "time NaN": (_recording('{"t": NaN, "c": "x", "d": "00"}'), "out of order or range"),
    "time 1e12": (_recording({"t": 1e12, "c": HRM, "d": BEAT}), "out of order or range"),
    "time -1e12": (_recording({"t": -1e12, "c": HRM, "d": BEAT}), "out of order or range"),
    "9,999,000 s long": (_recording({"t": 0, "c": HRM, "d": BEAT}, {"t": 9_999_000, "c": HRM, "d": BEAT}),
                         "out of order or range"),
    "time going back": (_recording({"t": 1, "c": HRM, "d": BEAT}, {"t": 0.5, "c": HRM, "d": BEAT}), "line 3"),
    "packet over 512 bytes": (_recording({"t": 0, "c": HRM, "d": "00" * 600}), "out of order or range"),
    "line of 20 kB": (_recording('{"t": 0, "c": "' + "x" * 20_000 + '", "d": "00"}', {"t": 1, "c": HRM, "d": BEAT}),
                      "is not a packet"),
    "binary after header": (_recording("\x00\xff\xfe garbage", {"t": 1, "c": HRM, "d": BEAT}), "line 2"),
}


@pytest.fixture
def heartsong(capsys):
    """``heartsong ARGS`` in-process -> (exit code, stdout, stderr); the umask main() sets is restored."""
    def run(*args):
        umask = os.umask(0o022)
        try:
            code = cli.main([str(a) for a in args])
        finally:
            os.umask(umask)
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def _one_error_line(code: int, err: str, expected: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and expected in lines[0], (code, err)
    assert "Traceback" not in err and "\x1b" not in err


def _no_session_rows() -> None:
    with Store() as store:
        assert store.list_sessions() == [], "a refused session leaves no row behind"


@pytest.mark.parametrize("name", sorted(BAD_RECORDINGS))
@pytest.mark.parametrize("offline", [True, False], ids=["offline", "live"])
def test_every_damaged_recording_is_one_line_exit_2_and_no_session_row(heartsong, tmp_path, name, offline):
    content, expected = BAD_RECORDINGS[name]
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    code, _, err = heartsong("session", "--protocol", "coherent-6", "--sensor", f"replay:{path}", "--minutes", "0.5",
                             "--out", tmp_path / "o", *(["--offline"] if offline else []))
    _one_error_line(code, err, expected)
    assert str(path) in err
    _no_session_rows()


SENSOR_ERRORS = [
    ("replay of a missing file", ["--sensor", "replay:{tmp}/missing.jsonl", "--offline"], "cannot be read"),
    ("replay of a folder", ["--sensor", "replay:{tmp}", "--offline"], "cannot be read"),
    ("replay of /dev/zero", ["--sensor", "replay:/dev/zero"], "not a JSON header"),
    ("empty sensor address", ["--sensor", " "], "empty sensor address"),
    ("a strap offline", ["--sensor", "AA:BB:CC:DD:EE:FF", "--offline"], "--offline needs a simulated sensor"),
    ("a strap without a sound card", ["--sensor", "AA:BB:CC:DD:EE:FF"], "a session with a strap plays live"),
    ("a missing sound device asked for", ["--device", "no-such-device"], "no audio output device"),
]


@pytest.mark.parametrize(("name", "options", "expected"), SENSOR_ERRORS, ids=[c[0] for c in SENSOR_ERRORS])
def test_sensor_and_device_errors_are_one_line_exit_2_and_no_session_row(heartsong, tmp_path, name, options, expected):
    options = [o.replace("{tmp}", str(tmp_path)) for o in options]
    code, _, err = heartsong("session", "--protocol", "coherent-6", "--minutes", "0.5", "--out", tmp_path / "o", *options)
    _one_error_line(code, err, expected)
    _no_session_rows()


def test_recording_a_strap_without_bluetooth_is_one_line_and_writes_nothing(heartsong, tmp_path):
    out = tmp_path / "strap.jsonl"
    code, _, err = heartsong("record", "--sensor", "AA:BB:CC:DD:EE:FF", "--minutes", "0.1", "--out", out)
    _one_error_line(code, err, "Bluetooth is not available")
    assert not out.exists()


# (name, argv, exit code, what stderr's one line says, or for exit 0 what stdout says)
ARGUMENT_ATTACKS = [
    ("rate a huge session number", ["rate", "99999999999999999999999", "3"], 2, "no stored session"),
    ("rate session ²", ["rate", "²", "3"], 2, "no stored session '²'"),
    ("rate ²", ["rate", "1", "²"], 2, "give a whole number from 1 to 5"),
    ("rate a huge rating", ["rate", "1", "99999999999999999999999"], 2, "give a whole number from 1 to 5"),
    ("rate Arabic-Indic 3", ["rate", "1", "٣"], 2, "give a whole number from 1 to 5"),
    ("report a huge session number", ["report", "99999999999999999999999"], 2, "no stored session"),
    ("report ²", ["report", "²"], 2, "no stored session '²'"),
    ("history --limit huge", ["history", "--limit", "99999999999999999999999"], 2, "give a whole number from 1"),
    ("history --limit ²", ["history", "--limit", "²"], 2, "give a whole number from 1"),
    ("history --limit 0", ["history", "--limit", "0"], 2, "give a whole number from 1"),
    ("history --limit -5", ["history", "--limit", "-5"], 2, "give a whole number from 1"),
    ("history --weeks ²", ["history", "--weeks", "²"], 2, "give a whole number from 1"),
    ("session --seed -1", ["session", "--protocol", "coherent-6", "--seed", "-1", "--offline"], 2,
     "give a whole number from 0 to 4294967295"),
    ("session --seed 2**64", ["session", "--protocol", "coherent-6", "--seed", str(2**64), "--offline"], 2,
     "give a whole number from 0 to 4294967295"),
    ("session --minutes nan", ["session", "--protocol", "coherent-6", "--minutes", "nan", "--offline"], 2,
     "give a number of minutes above 0"),
    ("session --minutes inf", ["session", "--protocol", "coherent-6", "--minutes", "inf", "--offline"], 2,
     "give a number of minutes above 0"),
    ("demo --minutes -1", ["demo", "--minutes", "-1"], 2, "give a number of minutes above 0"),
    ("record --minutes inf", ["record", "--sensor", "virtual:hrs", "--minutes", "inf", "--out", "{tmp}/r"], 2,
     "give a number of minutes above 0"),
    ("record --minutes nan", ["record", "--sensor", "virtual:hrs", "--minutes", "nan", "--out", "{tmp}/r"], 2,
     "give a number of minutes above 0"),
    ("record --minutes 1e9", ["record", "--sensor", "virtual:hrs", "--minutes", "1e9", "--out", "{tmp}/r"], 2,
     "up to 1440"),
    ("scan --timeout nan", ["scan", "--timeout", "nan"], 2, "give a number of seconds above 0"),
    ("client add --tonic ²", ["client", "add", "--id", "c", "--name", "n", "--tonic", "²"], 2, "from 0 to 11"),
    ("playlist render --seed -1", ["playlist", "render", "--client", "c", "--out", "{tmp}/p", "--seed", "-1"], 2,
     "give a whole number from 0"),
    ("unknown option", ["history", "--bogus"], 2, "unrecognized arguments: --bogus"),
    ("missing protocol", ["session"], 2, "--protocol"),
    ("analyze /dev/zero", ["analyze", "/dev/zero"], 2, "neither JSON nor JSON Lines"),
    ("analyze a folder", ["analyze", "{tmp}"], 2, "cannot analyze"),
    ("analyze a missing file", ["analyze", "{tmp}/missing.json"], 2, "No such file"),
    ("analyze --png x.jpg", ["analyze", "{tmp}/s.json", "--png", "{tmp}/x.jpg"], 2, "neither a .png file nor a folder"),
    ("analyze a 9,999,000-s recording", ["analyze", "{tmp}/long.jsonl"], 2, "out of order or range"),
    ("analyze a session.json over 64 MiB", ["analyze", "{tmp}/huge.json"], 2, "larger than the 64 MiB"),
    ("history --limit 1", ["history", "--limit", "1"], 0, "no sessions recorded yet"),
]


@pytest.mark.parametrize(("name", "argv", "code", "expected"), ARGUMENT_ATTACKS, ids=[c[0] for c in ARGUMENT_ATTACKS])
def test_odd_numbers_and_files_give_one_line(heartsong, tmp_path, name, argv, code, expected):
    (tmp_path / "s.json").write_text(json.dumps({"beats": [{"t_s": i, "rr_raw": 1024, "rr_ms": 1000.0}
                                                           for i in range(5)]}))
    (tmp_path / "long.jsonl").write_bytes(BAD_RECORDINGS["9,999,000 s long"][0])
    with open(tmp_path / "huge.json", "wb") as huge:
        huge.write(b"{")
        huge.truncate(65 * 2**20)  # sparse: no disk used
    got, out, err = heartsong(*[a.replace("{tmp}", str(tmp_path)) for a in argv])
    if code == 2:
        _one_error_line(got, err, expected)
    else:
        assert got == 0 and expected in out and not err, (got, out, err)


def test_analyze_drops_impossible_beats_with_a_count(heartsong, tmp_path):
    """Times Infinity, 1e12, -1e12 and NaN, RR negative and zero: dropped and counted, the rest analysed."""
    beats = [{"t_s": 0.8 * i, "rr_raw": 819, "rr_ms": 800.0} for i in range(150)]
    beats[40:40] = [{"t_s": t, "rr_raw": 1, "rr_ms": 800.0} for t in (math.inf, 1e12, -1e12, math.nan)]
    beats[90]["rr_ms"], beats[91]["rr_ms"] = -850.0, 0.0
    path = tmp_path / "session.json"
    path.write_text(json.dumps({"format": "heartsong-session/1", "beats": beats}))  # writes Infinity, NaN
    code, out, err = heartsong("analyze", path, "--png", tmp_path)
    assert code == 0, err
    summary = dict(line.strip().split(": ", 1) for line in out.splitlines())
    assert summary["beats"] == "148"
    assert summary["dropped_beats"] == "2 RR outside 240-3000 ms, 4 time outside -600 to 86400 s"
    assert 74.0 <= float(summary["mean_heart_rate_bpm"]) <= 76.0, "60000 / 800 ms = 75 bpm, never negative"
    assert summary["chart"] == str(tmp_path / "session.png") and (tmp_path / "session.png").stat().st_size > 1000


def test_a_session_without_a_sound_card_renders_to_files_like_demo(heartsong, tmp_path):
    """This machine has no sound card: `session` (not --offline) says so in one line and renders files."""
    out = tmp_path / "s"
    code, stdout, err = heartsong("session", "--protocol", "coherent-6", "--minutes", "0.4", "--generator", "rules",
                                  "--synth", "builtin", "--out", out)
    assert code == 0, err
    assert " ".join(stdout.split()).count("no audio output device: PortAudio lists none: rendering to files instead") == 1
    with wave.open(str(out / "session.wav")) as audio:
        assert abs(audio.getnframes() / 48000 - 24) <= 5, "the whole session, to the breath boundary nearest 24 s"
    with Store() as store:
        [info] = store.list_sessions()
        assert info.status == "complete"


# -- files are never written through a link, and are the user's alone ----------------------------------------------

def test_outputs_replace_links_and_tighten_modes(heartsong, tmp_path):
    """Links planted at every name a session, a report, a recording, a chart and a bundle write are replaced, their
    targets untouched; an existing 0755 output folder and 0644 file become 0700 and 0600."""
    out, victim = tmp_path / "s", tmp_path / "victim.txt"
    victim.write_text("precious")
    out.mkdir(mode=0o755)
    os.chmod(out, 0o755)
    (out / "session.mid").write_bytes(b"old")
    os.chmod(out / "session.mid", 0o644)
    links = [out / "session.wav", out / "session.json", tmp_path / "rep" / "seconds.csv",
             tmp_path / "rep" / "report.html", tmp_path / "rec.jsonl", tmp_path / "chart.png", tmp_path / "b.json"]
    (tmp_path / "rep").mkdir()
    for link in links:
        link.symlink_to(victim)
    code, _, err = heartsong("session", "--protocol", "coherent-6", "--minutes", "0.4", "--offline", "--generator",
                             "rules", "--synth", "builtin", "--out", out)
    assert code == 0, err
    assert heartsong("report", "1", "--out", tmp_path / "rep")[0] == 0
    assert heartsong("record", "--sensor", "virtual:hrs", "--minutes", "0.02", "--out", tmp_path / "rec.jsonl")[0] == 0
    assert heartsong("analyze", out / "session.json", "--png", tmp_path / "chart.png")[0] == 0
    assert heartsong("client", "add", "--id", "c1", "--name", "Ann")[0] == 0
    assert heartsong("bundle", "export", "--client", "c1", "--out", tmp_path / "b.json")[0] == 0
    assert victim.read_text() == "precious"
    for path in links + [out / "session.mid"]:
        assert not path.is_symlink() and stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(out.stat().st_mode) == 0o700 and stat.S_IMODE((tmp_path / "rep").stat().st_mode) == 0o700
    assert not list(out.glob(".*.tmp")), "no temporary file left behind"


# -- terminal injection ---------------------------------------------------------------------------------------------

CONTROL_CHARACTERS = {"ESC": "\x1b[2J", "NUL": "\x00", "CR": "\r", "LF": "\n", "DEL": "\x7f", "C1 CSI": "\x9b",
                      "RLO": "\u202e", "LRE": "\u202a", "RLI": "\u2067", "PDI": "\u2069", "LINE SEPARATOR": "\u2028"}


def _bundle(tmp_path: Path, *, name="Ann", description="Calm.", protocol_name="calm-5") -> Path:
    protocol = load_protocol("coherent-6").model_dump(mode="json") | {"name": protocol_name, "description": description}
    bundle = {"format": BUNDLE_FORMAT,
              "client": {"schema_version": SCHEMA_VERSION, "client_id": "c-9", "display_name": name, "playlist": "p"},
              "playlist": {"schema_version": SCHEMA_VERSION, "name": "p", "sessions": [{"protocol": f"{protocol_name}.json"}]},
              "protocols": {f"{protocol_name}.json": protocol}}
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle))
    return path


@pytest.mark.parametrize("character", sorted(CONTROL_CHARACTERS))
@pytest.mark.parametrize("field", ["display_name", "description"])
def test_control_characters_in_a_bundle_are_refused(heartsong, tmp_path, character, field):
    text = f"Ann{CONTROL_CHARACTERS[character]}Bob"
    path = _bundle(tmp_path, **({"name": text} if field == "display_name" else {"description": text}))
    code, out, err = heartsong("bundle", "import", path)
    _one_error_line(code, err, "holds the control character")
    assert field in err
    assert heartsong("client", "list")[1].startswith("no clients yet")


def test_a_bundle_cannot_install_a_protocol_named_like_a_built_in(heartsong, tmp_path):
    code, _, err = heartsong("bundle", "import", _bundle(tmp_path, protocol_name="coherent-6"))
    _one_error_line(code, err, "'coherent-6' is a built-in protocol")


def test_stored_control_characters_are_escaped_on_output(heartsong):
    """Documents written into the store by something else (an older Heartsong, a hand edit) never reach the
    terminal raw: the listing names the bad field in one escaped line."""
    protocol = load_protocol("coherent-6").model_dump(mode="json") | {"name": "evil", "description": "\x1b[2Jgone"}
    with Store() as store, store.transaction() as db:
        Store.put_document(db, "clients", "c-1", {"schema_version": 1, "client_id": "c-1", "display_name": "\x1b]0;x\x07"})
        Store.put_document(db, "protocols", "evil.json", protocol)
    code, out, err = heartsong("client", "list")
    _one_error_line(code, err, "\\x1b]0;x\\x07")
    code, out, err = heartsong("protocols")
    assert code == 0 and "coherent-6" in out and "\x1b" not in out + err and "\\x1b[2J" in err


# -- heart-rate packets ------------------------------------------------------------------------------------------------

def test_heart_rate_packets_outside_20_to_250_bpm_are_refused_and_counted():
    decoder = PacketDecoder()
    values = [15044, 65535, 19, 251, 72, 0, 250, 20]
    items = [decoder.feed(SensorPacket(0.5 * i, HRM, b"\x11" + struct.pack("<HH", bpm, 800)))
             for i, bpm in enumerate(values)]
    refused = [bpm for bpm, got in zip(values, items) if got and isinstance(got[0], Notice)]
    assert refused == [15044, 65535, 19, 251] and decoder.bad_packets == 4
    assert "outside 20-250 bpm" in items[0][0].message
    assert decoder.last_reported_hr[1] == 20, "only plausible heart rates are reported"


def test_a_strap_address_without_bluetooth_is_one_line_with_a_sound_card(jack_server, tmp_path):
    """With a (virtual) sound card the session gets as far as the strap: no Bluetooth here, so one line, exit 2."""
    env = os.environ | {"JACK_DEFAULT_SERVER": jack_server, "JACK_NO_START_SERVER": "1"}
    result = subprocess.run([sys.executable, "-m", "wellness_app.cli", "session", "--protocol", "coherent-6",
                             "--sensor", "AA:BB:CC:DD:EE:FF", "--minutes", "0.5", "--out", str(tmp_path / "o")],
                            env=env, capture_output=True, text=True, timeout=120, cwd=ROOT)
    _one_error_line(result.returncode, result.stderr, "Bluetooth is not available")
    _no_session_rows()
    assert not (tmp_path / "o" / "session.wav").exists()


def test_a_live_wav_file_on_a_full_disk_stops_the_file_not_the_music(tmp_path):
    """A live session's WAV writer on a 64 KiB tmpfs (root only): the write the disk refuses is noted once, the
    blocks after it are dropped without an error, and the file holds a valid WAV of what fitted."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("mounting a small tmpfs needs root")
    try:
        notices = []
        engine, _ = build_engine(SessionOptions(minutes=0.5, out_dir=disk / "s", generator="rules", synth="builtin"))
        engine.record.on_notice = notices.append
        with LiveWavWriter(engine) as wav:
            for _ in range(20):  # 2 s of audio, 768 KiB: far more than fits
                wav.write(np.zeros((4800, 2), dtype=np.float32))
        with wave.open(str(disk / "s" / "session.wav")) as audio:
            frames = audio.getnframes()
    finally:
        subprocess.run(["umount", "--lazy", str(disk)], check=True)
    assert 0 < frames < 20 * 4800 and wav.failed
    assert len(notices) == 1 and "cannot write WAV file" in notices[0] and "the music goes on" in notices[0]
    assert [e["kind"] for e in engine.record.events] == ["output_error"]
