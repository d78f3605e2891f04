"""The SQLite session store: a real offline session lands in the database second by second and matches
session.json; file modes, WAL, schema version; and a session killed with SIGKILL keeps every second up to the
kill and is marked incomplete on the next open."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from wellness_app.session import SessionOptions, build_engine, run_offline
from therapy_profiles.schema import ClientProfile
from wellness_app.clients import save_client
from wellness_app.storage import DB_NAME, SCHEMA_VERSION, Store, StorageError


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "data"
    monkeypatch.setenv("HEARTSONG_DATA_DIR", str(folder))
    return folder


def test_offline_session_is_stored_and_matches_the_json(data_dir, tmp_path):
    out = tmp_path / "session"
    with Store() as store:
        save_client(store, ClientProfile(schema_version=1, client_id="c-1", display_name="C"))
    engine, _ = build_engine(SessionOptions(minutes=0.5, out_dir=out, offline=True, seed=2, client_id="c-1"))
    run_offline(engine)
    record = json.loads((out / "session.json").read_text())
    with Store() as store:
        [info] = store.list_sessions()
        assert info.status == "complete" and info.complete and info.client_id == "c-1"
        assert info.out_dir == str(out.resolve()) and store.session_by_out_dir(out).id == info.id
        assert info.summary == record["summary"]
        assert store.seconds(info.id) == record["seconds"]
        assert store.session_details(info.id)["personalisation"], "a client's session records its musical choice"
        seconds = [r["t_s"] for r in store.seconds(info.id)]  # the session ends on the breath nearest 30 s
        assert seconds == list(range(len(seconds))) and abs(len(seconds) - 30) <= 4
        assert store.beats(info.id) == record["beats"] and len(record["beats"]) > 20
        assert store.decisions(info.id) == record["decisions"]
        assert store.events(info.id) == record["events"]
        assert store.session_details(info.id)["protocol"] == record["protocol"]
        assert all(isinstance(b["rr_raw"], int) and b["rr_ms"] == pytest.approx(b["rr_raw"] * 1000 / 1024, abs=0.01)
                   for b in store.beats(info.id))
        store.rate(info.id, 4)
        assert store.session(info.id).rating == 4 and store.ratings(info.id)[0][1] == 4
        with pytest.raises(StorageError, match="from 1 to 5"):
            store.rate(info.id, 6)


def test_files_are_private_wal_and_versioned(data_dir):
    with Store() as store:
        store.begin_session(protocol={"name": "x"}, settings={})
        assert stat.S_IMODE(os.stat(data_dir).st_mode) == 0o700
        for name in (DB_NAME, DB_NAME + "-wal"):
            assert stat.S_IMODE(os.stat(data_dir / name).st_mode) == 0o600, name
        db = sqlite3.connect(data_dir / DB_NAME)
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
        db.close()
    db = sqlite3.connect(data_dir / DB_NAME)
    db.execute("UPDATE schema_version SET version = 99")
    db.commit()
    db.close()
    with pytest.raises(StorageError, match="schema version \\[99\\], this Heartsong reads version 1"):
        Store()


def test_a_killed_session_keeps_every_second_and_is_marked_incomplete(data_dir, tmp_path):
    out = tmp_path / "killed"
    env = os.environ | {"HEARTSONG_DATA_DIR": str(data_dir)}
    process = subprocess.Popen(
        [sys.executable, "-m", "wellness_app.cli", "session", "--protocol", "coherent-6", "--minutes", "5",
         "--offline", "--out", str(out), "--synth", "builtin"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        last = None
        while time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
            try:
                with sqlite3.connect(data_dir / DB_NAME, timeout=5) as db:
                    last = db.execute("SELECT MAX(t_s) FROM seconds").fetchone()[0]
            except sqlite3.OperationalError:  # the file or schema is not there yet
                continue
            if last is not None and last >= 12:
                break
        assert process.poll() is None, f"the session ended before the kill: {process.stderr.read()}"
        process.send_signal(signal.SIGKILL)
        process.wait()
    finally:
        process.kill()

    with Store() as store:  # opening runs recover_incomplete()
        [info] = store.list_sessions()
        assert info.status == "incomplete" and not info.complete
        seconds = store.seconds(info.id)
        t_last = seconds[-1]["t_s"]
        assert 12 <= t_last < 300 and info.last_t_s == t_last
        assert [r["t_s"] for r in seconds] == list(range(t_last + 1)), "every second up to the last one"
        beats = store.beats(info.id)
        assert beats and beats[-1]["t_s"] <= t_last + 1 and len(beats) > t_last * 0.8, "beats kept up to the kill"
        assert store.decisions(info.id)[-1]["t_s"] <= t_last + 1 + 20
        assert info.summary["duration_s"] >= t_last - 5, "the running summary was kept"
    saved = json.loads((out / "session.json").read_text())  # saved every 30 s: never ahead of the database
    assert 0 < len(saved["seconds"]) <= len(seconds) and saved["seconds"] == seconds[:len(saved["seconds"])]


def test_a_running_session_of_a_live_process_is_not_marked_incomplete(data_dir):
    with Store() as store:
        session_id = store.begin_session(protocol={"name": "x"}, settings={})
        other = Store()  # a second process-local opener (e.g. `heartsong history` while a session runs)
        assert other.session(session_id).status == "running"
        other.close()
