"""The therapist's command line against a real store: clients, playlists from files, bundles (round trip and
hostile files: one clear line, nothing half-imported), history, ratings that teach the personalisation, and a
personalised offline render to WAV + M3U."""
from __future__ import annotations

import argparse
import json
import sqlite3

import pytest
import soundfile

from wellness_app import bundles, cli, clients, personalised, playlists, therapist_cli
from wellness_app.storage import DB_NAME, Store


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    folder = tmp_path / "data"
    monkeypatch.setenv("HEARTSONG_DATA_DIR", str(folder))
    return folder


@pytest.fixture
def heartsong(data_dir, monkeypatch, capsys):
    """``heartsong ARGS`` in-process -> (exit code, stdout, stderr); the therapist subcommands are added if the
    CLI does not add them yet."""
    build = cli.build_parser

    def build_with_therapist():
        parser = build()
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        if "client" not in sub.choices:
            therapist_cli.add_subcommands(sub)
        return parser

    monkeypatch.setattr(cli, "build_parser", build_with_therapist)

    def run(*args):
        code = cli.main([str(a) for a in args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def dump(data_dir) -> list[str]:
    db = sqlite3.connect(data_dir / DB_NAME)
    try:
        return list(db.iterdump())
    finally:
        db.close()


CALM = {"schema_version": 1, "name": "calm-5", "description": "Five per minute, long exhale.",
        "source": "Lehrer & Gevirtz 2014, resonance breathing", "tonic": 2,
        "phases": [{"name": "settle", "duration_s": 60.0},
                   {"name": "slow", "duration_s": 240.0, "breath_rate_bpm": 5.0, "mode": "dorian"}]}


@pytest.fixture
def client_with_playlist(heartsong, tmp_path):
    (tmp_path / "calm-5.json").write_text(json.dumps(CALM))
    (tmp_path / "weekly.toml").write_text(
        'schema_version = 1\nname = "weekly"\n'
        '[[sessions]]\nprotocol = "calm-5.json"\n[sessions.overrides]\nminutes = 0.5\n'
        '[[sessions]]\nprotocol = "coherent-6"\n[sessions.overrides]\nminutes = 0.5\nmode = "lydian"\n'
    )
    assert heartsong("client", "add", "--id", "c-17", "--name", "Robin", "--resonance-rate", 5.5,
                     "--max-volume", 0.6, "--modes", "dorian,minor,major")[0] == 0
    code, out, err = heartsong("playlist", "assign", "--client", "c-17", tmp_path / "weekly.toml")
    assert code == 0, err
    return "c-17"


def test_client_add_list_show_and_playlist(heartsong, client_with_playlist):
    code, out, _ = heartsong("client", "list")
    assert code == 0 and "c-17" in out and "Robin" in out and "weekly" in out
    code, out, _ = heartsong("client", "show", "c-17")
    assert code == 0 and '"resonance_rate_bpm": 5.5' in out
    assert "1. calm-5, 0.5 min" in out and "2. coherent-6, 0.5 min, mode lydian" in out, "entry mode override wins"
    with Store() as store:
        entry = playlists.get_playlist(store, "weekly").sessions[0]
        protocol, choice = personalised.personalised_protocol(store, "c-17", entry, explore=True, seed=1)
    assert protocol.limits.max_volume == 0.6, "the client's volume limit applies"
    assert protocol.phases[1].breath_rate_bpm == 5.5, "the client's resonance rate is the breath target"
    assert choice["mode"] in ("dorian", "minor", "major"), "the bandit keeps to the client's preferred modes"
    assert all(p.mode == choice["mode"] for p in protocol.phases)


@pytest.mark.parametrize("args, expected", [
    (["--id", "c-2", "--name", "A", "--resonance-rate", 40], "resonance_rate_bpm = 40.0 is out of range (allowed 4-7.5 breaths/min)"),
    (["--id", "c 2", "--name", "A"], "client_id = 'c 2' is not allowed"),
    (["--id", "c-2", "--name", "A", "--modes", "jazz"], "preferences.modes[0] = 'jazz' is not allowed (choose one of major"),
    (["--id", "c-17", "--name", "Again"], "client 'c-17' already exists"),
])
def test_bad_client_is_one_line(heartsong, client_with_playlist, data_dir, args, expected):
    before = dump(data_dir)
    code, _, err = heartsong("client", "add", *args)
    assert code == 2 and len(err.strip().splitlines()) == 1 and expected in err, err
    assert dump(data_dir) == before


def test_bundle_round_trip_into_a_fresh_store(heartsong, client_with_playlist, tmp_path, monkeypatch):
    bundle = tmp_path / "c-17.json"
    assert heartsong("bundle", "export", "--client", "c-17", "--out", bundle)[0] == 0
    data = json.loads(bundle.read_text())
    assert data["format"] == "heartsong-bundle/1" and list(data["protocols"]) == ["calm-5.json"]
    assert oct(bundle.stat().st_mode & 0o777) == "0o600"
    monkeypatch.setenv("HEARTSONG_DATA_DIR", str(tmp_path / "elsewhere"))
    code, out, err = heartsong("bundle", "import", bundle)
    assert code == 0 and "c-17 imported with playlist weekly" in out, err
    assert heartsong("bundle", "import", bundle)[0] == 0, "importing the same bundle again changes nothing"
    code, out, _ = heartsong("client", "show", "c-17")
    assert "1. calm-5, 0.5 min" in out


HOSTILE = [  # (label, change to a valid bundle, expected part of the one-line error)
        ("breath guide 40/min", lambda b: b["protocols"]["calm-5.json"]["phases"][1].update(breath_rate_bpm=40),
         "protocols['calm-5.json']: phases[1].breath_rate_bpm = 40 is out of range (allowed 3-20 breaths/min)"),
        ("wrong type", lambda b: b["client"].update(resonance_rate_bpm="slow"),
         "client: resonance_rate_bpm = 'slow' must be a number"),
        ("unknown protocol version", lambda b: b["protocols"]["calm-5.json"].update(schema_version=2),
         "schema_version = 2 is not supported"),
        ("unknown bundle format", lambda b: b.update(format="heartsong-bundle/9"),
         "format = 'heartsong-bundle/9' is not supported"),
        ("path in a file name", lambda b: b["protocols"].update({"../../x.json": b["protocols"]["calm-5.json"]}),
         "protocols['../../x.json'] is not a valid file name"),
        ("missing protocol", lambda b: b["protocols"].clear(),
         "playlist.sessions[0].protocol = 'calm-5.json' is neither built in nor in the bundle's protocols"),
        ("unknown field", lambda b: b.update(script="rm -rf /"), "script is not a known field"),
        ("playlist mismatch", lambda b: b["client"].update(playlist="other"),
         "client.playlist = 'other' does not match the bundle's playlist 'weekly'"),
        ("override out of range", lambda b: b["playlist"]["sessions"][0]["overrides"].update(minutes=0.1),
         "playlist: sessions[0].overrides.minutes = 0.1 is out of range (allowed 0.5-240 min)"),
]


@pytest.mark.parametrize("case", range(len(HOSTILE)))
def test_hostile_bundle_is_one_line_and_imports_nothing(heartsong, client_with_playlist, tmp_path, data_dir, case):
    bundle = tmp_path / "b.json"
    heartsong("bundle", "export", "--client", "c-17", "--out", bundle)
    data = json.loads(bundle.read_text())
    label, change, expected = HOSTILE[case]
    change(data)
    data["client"]["client_id"] = "c-99"  # a new client: any partial import would show
    if data["client"].get("playlist") == "weekly":
        data["playlist"]["name"] = data["client"]["playlist"] = "weekly-2"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    before = dump(data_dir)
    code, _, err = heartsong("bundle", "import", bad)
    assert code == 2 and len(err.strip().splitlines()) == 1 and expected in err, (label, err)
    assert dump(data_dir) == before, f"{label}: nothing imported"


@pytest.mark.parametrize("content, expected", [
    (b"[" * 100_000, "nested too deeply"),
    (b" " * (bundles.MAX_BUNDLE_BYTES + 1), "larger than the 1024 KiB limit"),
    (b'{"format": "heartsong-bundle/1", "client": NaN}', "NaN is not a number JSON allows"),
    (b"\xff\xfe", "not UTF-8"),
    (b"[1, 2]", "top level must be an object"),
])
def test_malformed_bundle_files(heartsong, data_dir, tmp_path, content, expected):
    Store().close()
    before = dump(data_dir)
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    code, _, err = heartsong("bundle", "import", bad)
    assert code == 2 and len(err.strip().splitlines()) == 1 and expected in err, err
    assert dump(data_dir) == before


def test_a_failure_inside_the_import_transaction_rolls_everything_back(heartsong, client_with_playlist, tmp_path,
                                                                       data_dir, monkeypatch):
    bundle = tmp_path / "b.json"
    heartsong("bundle", "export", "--client", "c-17", "--out", bundle)
    data = json.loads(bundle.read_text())
    data["client"]["client_id"] = "c-50"
    data["protocols"]["calm-5.json"]["description"] = "changed"
    bundle.write_text(json.dumps(data))
    before = dump(data_dir)
    writes = []
    real_put = Store.put_document

    def failing_put(db, table, key, value):
        writes.append(table)
        if len(writes) == 3:  # protocol and playlist written, the client write fails (e.g. disk full)
            raise sqlite3.OperationalError("database or disk is full")
        real_put(db, table, key, value)

    monkeypatch.setattr(Store, "put_document", staticmethod(failing_put))
    with Store() as store, pytest.raises(sqlite3.OperationalError):
        bundles.import_bundle(store, bundle, replace=True)
    assert writes == ["protocols", "playlists", "clients"]
    assert dump(data_dir) == before


def test_history_rate_and_personalisation_learning(heartsong, client_with_playlist, tmp_path):
    from wellness_app.session import SessionOptions, build_engine, run_offline

    with Store() as store:
        entry = playlists.get_playlist(store, "weekly").sessions[1]
        protocol, choice = personalised.personalised_protocol(store, "c-17", entry, explore=True, seed=4)
    path = tmp_path / "p.json"
    path.write_text(json.dumps(protocol.model_dump(mode="json")))
    engine, _ = build_engine(SessionOptions(protocol=str(path), minutes=0.5, out_dir=tmp_path / "s", offline=True,
                                            client_id="c-17"))
    engine.record.personalisation = choice  # what the lead's session start does for a client session
    run_offline(engine)
    code, out, _ = heartsong("history", "--client", "c-17")
    assert code == 0 and "coherent-6" in out and "complete" in out and "rated --" in out
    code, out, err = heartsong("rate", tmp_path / "s", 5)
    assert code == 0 and "rated 5; personalisation learnt reward" in out, err
    with Store() as store:
        bandit = personalised.get_bandit(store, clients.get_client(store, "c-17"))
        assert bandit.sessions == 1
        assert store.list_sessions("c-17")[0].rating == 5
    code, out, _ = heartsong("rate", "1", 2)
    assert code == 0 and "learnt" not in out, "re-rating does not count the session twice"
    assert heartsong("rate", "1", 7)[2].strip().endswith("give a whole number from 1 to 5")
    assert "no session 42" in heartsong("rate", "42", 3)[2]


def test_tune_locks_a_choice(heartsong, client_with_playlist):
    code, out, err = heartsong("client", "tune", "c-17", "--lock", "tempo_offset_bpm=-6", "--allow", "palette=harp,pad")
    assert code == 0, err
    code, out, _ = heartsong("client", "show", "c-17")
    assert "tempo_offset_bpm -6.0" in out and "locked: tempo_offset_bpm=-6.0" in out
    code, _, err = heartsong("client", "tune", "c-17", "--lock", "mode=jazz")
    assert code == 2 and "mode = 'jazz' is not a choice (allowed: major, minor" in err


def test_playlist_render_writes_audio_and_m3u(heartsong, client_with_playlist, tmp_path):
    out = tmp_path / "render"
    code, stdout, err = heartsong("playlist", "render", "--client", "c-17", "--out", out, "--synth", "builtin")
    assert code == 0, err
    m3u = (out / "weekly.m3u").read_text().splitlines()
    assert m3u[0] == "#EXTM3U"
    assert [line for line in m3u if not line.startswith("#")] == ["01-calm-5.wav", "02-coherent-6.wav"]
    assert "#EXTINF:30,2. coherent-6 (0.5 min, lydian)" in m3u
    for name in ("01-calm-5.wav", "02-coherent-6.wav"):
        audio, rate = soundfile.read(out / name)
        # a render ends on the final cadence at the breath boundary nearest 30 s (breaths are at most 12 s)
        assert abs(audio.shape[0] / rate - 30) <= 6 and abs(audio).max() > 0.01
        assert (out / name.replace(".wav", ".mid")).stat().st_size > 100
    with Store() as store:
        assert store.list_sessions() == [], "renders are not listening sessions"
