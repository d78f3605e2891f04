"""Heartsong's SQLite store: session records (written every session-second) and the therapist's clients,
playlists, protocols and personalisation state, in one user-only file.

Where: ``data_dir() / "heartsong.sqlite3"``; ``data_dir()`` is ``$HEARTSONG_DATA_DIR`` when set (tests), else
``platformdirs.user_data_dir("heartsong")``. The directory is created 0700 and the database files 0600 (health
data). The database runs in WAL mode with ``synchronous=NORMAL``: a committed transaction survives a killed
process (only a power cut can lose the last few), and a commit costs no fsync, so committing once per
session-second is cheap.

Schema version 1 (``schema_version`` table), times in seconds from the session start unless named otherwise:

- ``sessions``: id, started (ISO 8601 UTC), protocol (name), client_id, status (running | complete |
  incomplete), complete (1 when the session played to its planned end), pid (of the recording process, so a
  killed session can be told from a running one), out_dir, protocol_json, settings_json, summary_json,
  personalisation_json (the musical choice of the client's bandit, if any), last_t_s, rating (latest, 1-5).
- ``seconds``: one row per session-second: the state (HR, RR, RMSSD, breathing), the breath guide (rate,
  phase, inhale fraction), the music controls (tempo, beats per breath, mode, density, volume) and the protocol
  phase; columns named as in ``wellness_app.record.SECOND_COLUMNS``; any other key goes to ``extra_json``.
- ``beats``: t_s, rr_raw (1/1024 s, as the strap sent it), rr_ms, after_gap (first beat after a gap).
- ``pmd_samples``: t_s, kind (``ecg`` in µV, ``acc`` in mG x/y/z), values_json; ready for Polar H10 streams.
- ``decisions``: one row per bar: the policy's controls for it and the ``reason`` it gives.
- ``events``: t_s, kind, message (sensor lost, gaps, bad packets, ...).
- ``ratings``: every rating given (session_id, rated_at, rating 1-5); ``sessions.rating`` holds the latest.
- ``clients`` (client_id, profile_json), ``playlists`` (name, playlist_json), ``protocols`` (file_name as
  playlists name it, e.g. ``calm-5.json``, protocol_json), ``personalisation`` (client_id, state_json):
  validated by ``therapy_profiles`` before every write and after every read (``wellness_app.clients``, ``playlists``, ``bundles``).

A session whose recording process died is found by ``recover_incomplete()`` (run by ``Store()``): status
``running`` with a pid that is no longer alive becomes ``incomplete``; everything committed stays.
"""
from __future__ import annotations

import datetime as dt
import errno
import json
import os
import sqlite3
import stat
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

from generators.output import replace_file

SCHEMA_VERSION = 1
DB_NAME = "heartsong.sqlite3"
BUSY_TIMEOUT_S = 10.0

# Per-second columns with SQL types; keys of a row not listed here are kept in extra_json.
SECOND_SQL_COLUMNS = {
    "heart_rate_bpm": "REAL", "rr_ms": "REAL", "rmssd_ms": "REAL", "breathing_rate_bpm": "REAL",
    "breathing_confidence": "REAL", "guide_rate_bpm": "REAL", "guide_phase": "REAL", "inhale_fraction": "REAL",
    "tempo_bpm": "REAL", "beats_per_breath": "INTEGER", "mode": "TEXT", "density": "REAL", "volume": "REAL",
    "phase": "TEXT", "virtual_breathing_rate_bpm": "REAL", "virtual_heart_rate_bpm": "REAL",
    "coherence": "REAL",  # biosignals.hrv.hrv_coherence ratio; None until the engine records it
}
DECISION_SQL_COLUMNS = {
    "phase": "TEXT", "guide_rate_bpm": "REAL", "tempo_bpm": "REAL", "beats_per_breath": "INTEGER",
    "inhale_beats": "REAL", "mode": "TEXT", "density": "REAL", "volume": "REAL", "reason": "TEXT",
}


def _columns_sql(columns: dict[str, str]) -> str:
    return ", ".join(f"{name} {kind}" for name, kind in columns.items())


SCHEMA = f"""
CREATE TABLE schema_version (version INTEGER NOT NULL);
CREATE TABLE sessions (
    id INTEGER PRIMARY KEY,
    started TEXT NOT NULL,
    protocol TEXT NOT NULL,
    client_id TEXT,
    status TEXT NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'complete', 'incomplete')),
    complete INTEGER NOT NULL DEFAULT 0,
    pid INTEGER,
    out_dir TEXT,
    protocol_json TEXT NOT NULL,
    settings_json TEXT NOT NULL,
    summary_json TEXT,
    personalisation_json TEXT,
    last_t_s REAL,
    rating INTEGER CHECK (rating BETWEEN 1 AND 5)
);
CREATE INDEX sessions_client ON sessions (client_id, started);
CREATE TABLE seconds (
    session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    t_s INTEGER NOT NULL, {_columns_sql(SECOND_SQL_COLUMNS)}, extra_json TEXT,
    PRIMARY KEY (session_id, t_s)
) WITHOUT ROWID;
CREATE TABLE beats (
    session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    t_s REAL NOT NULL, rr_raw INTEGER NOT NULL, rr_ms REAL NOT NULL, after_gap INTEGER NOT NULL
);
CREATE INDEX beats_session ON beats (session_id, t_s);
CREATE TABLE pmd_samples (
    session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    t_s REAL NOT NULL, kind TEXT NOT NULL CHECK (kind IN ('ecg', 'acc')), values_json TEXT NOT NULL
);
CREATE INDEX pmd_session ON pmd_samples (session_id, t_s);
CREATE TABLE decisions (
    session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    t_s REAL NOT NULL, {_columns_sql(DECISION_SQL_COLUMNS)}, extra_json TEXT
);
CREATE INDEX decisions_session ON decisions (session_id, t_s);
CREATE TABLE events (
    session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    t_s REAL NOT NULL, kind TEXT NOT NULL, message TEXT NOT NULL
);
CREATE INDEX events_session ON events (session_id, t_s);
CREATE TABLE ratings (
    session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    rated_at TEXT NOT NULL, rating INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5)
);
CREATE TABLE clients (client_id TEXT PRIMARY KEY, profile_json TEXT NOT NULL);
CREATE TABLE playlists (name TEXT PRIMARY KEY, playlist_json TEXT NOT NULL);
CREATE TABLE protocols (file_name TEXT PRIMARY KEY, protocol_json TEXT NOT NULL);
CREATE TABLE personalisation (client_id TEXT PRIMARY KEY, state_json TEXT NOT NULL);
"""


class StorageError(Exception):
    """The store cannot be used; ``str()`` is one line naming the problem and the fix."""


def data_dir() -> Path:
    """Heartsong's user data directory: ``$HEARTSONG_DATA_DIR`` if set, else the platform's user data dir."""
    override = os.environ.get("HEARTSONG_DATA_DIR")
    return Path(override) if override else Path(platformdirs.user_data_dir("heartsong"))


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (``generators.output.replace_file``: a new 0600 file renamed over it, a
    link at ``path`` replaced, never followed), creating missing folders 0700; a folder that exists keeps its
    mode (``private_folder`` is for the output folders Heartsong fills). On failure (a full disk) the previous
    file stays as it was and no temporary file is left beside it."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    replace_file(path, text.encode("utf-8"))


def private_folder(folder: Path) -> Path:
    """``folder``, created if needed, readable by the user alone (0700, also when it already existed, unless it is a
    shared sticky folder such as /tmp)."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not folder.stat().st_mode & stat.S_ISVTX:  # never a shared folder such as /tmp
        os.chmod(folder, 0o700)
    return folder


def storage_error(error: sqlite3.Error | OSError, path: Path) -> StorageError:
    """One line for a database that cannot be used: a full disk asks for space, anything else to move the file."""
    if _disk_full(error):
        return StorageError(f"session database {path} cannot be written ({error}): free some space on that disk, "
                            "or set HEARTSONG_DATA_DIR to a folder on another one")
    if isinstance(error, OSError):
        return StorageError(f"cannot create the data directory {path.parent} ({error.strerror or error}): "
                            "set HEARTSONG_DATA_DIR to a writable folder")
    return StorageError(f"session database {path} cannot be used ({error}): move it aside and retry")


def _disk_full(error: Exception) -> bool:
    return "disk is full" in str(error) or getattr(error, "errno", None) in (errno.ENOSPC, errno.EDQUOT)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process holds that pid: ours is gone
        return False
    try:  # a killed child not yet reaped by its parent is a zombie: dead for our purpose
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def _flat(session_id: int, row: dict[str, Any], columns: dict[str, str]) -> tuple[Any, ...]:
    """(session_id, t_s, the values of ``columns`` in order, the remaining keys as JSON or None)."""
    extra = {k: v for k, v in row.items() if k not in columns and k != "t_s"}
    return (session_id, row["t_s"], *(row.get(name) for name in columns),
            json.dumps(extra, allow_nan=False) if extra else None)


def _joined(row: sqlite3.Row, columns: dict[str, str]) -> dict[str, Any]:
    out = {"t_s": row["t_s"], **{name: row[name] for name in columns}}
    if row["extra_json"]:
        out.update(json.loads(row["extra_json"]))
    return out


@dataclass(frozen=True)
class SessionInfo:
    """One stored session as ``list_sessions`` returns it."""

    id: int
    started: dt.datetime  # UTC
    protocol: str
    client_id: str | None
    status: str  # running | complete | incomplete
    complete: bool
    out_dir: str | None
    last_t_s: float | None  # last recorded session-second
    rating: int | None
    summary: dict[str, Any]  # wellness_app.record.SessionRecord.summary() as last saved ({} before the first)


class Store:
    """The database. Thread-safe (one connection behind a lock); open once per process and share it.

    ``path`` defaults to ``data_dir() / DB_NAME``. Opening creates the file and schema if needed, refuses an
    unknown schema version, and marks sessions whose process died as incomplete.
    """

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self.path = Path(path) if path is not None else data_dir() / DB_NAME
        try:
            private_folder(self.path.parent)
            # SQLite gives the -wal and -shm files the database file's mode, so 0600 here covers all three.
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600))
            os.chmod(self.path, 0o600)
            self._db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                       check_same_thread=False)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._lock = threading.RLock()
            self._create_or_check_schema()
        except (sqlite3.DatabaseError, OSError) as error:
            raise storage_error(error, self.path) from None
        self.recover_incomplete()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One all-or-nothing write: commits on success, rolls back on any exception. A transaction opened
        inside another joins it, so composite operations stay whole."""
        with self._lock:
            if self._db.in_transaction:
                yield self._db
                return
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:  # also after a COMMIT the full disk refused: the next write starts afresh
                    with suppress(sqlite3.Error):
                        self._db.execute("ROLLBACK")
                raise

    def _query(self, sql: str, args: Iterable[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, tuple(args)).fetchall()

    def _create_or_check_schema(self) -> None:
        with self._lock:
            # Idempotent, in one transaction: two processes opening a new file at once both succeed.
            self._db.executescript(
                "BEGIN IMMEDIATE;" + SCHEMA.replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS")
                .replace("CREATE INDEX", "CREATE INDEX IF NOT EXISTS")
                + f"INSERT INTO schema_version SELECT {SCHEMA_VERSION} WHERE NOT EXISTS (SELECT 1 FROM schema_version);"
                "COMMIT;"
            )
            versions = [row[0] for row in self._db.execute("SELECT version FROM schema_version")]
        if versions != [SCHEMA_VERSION]:
            raise sqlite3.DatabaseError(
                f"schema version {versions}, this Heartsong reads version {SCHEMA_VERSION}; upgrade Heartsong"
            )

    def recover_incomplete(self) -> list[int]:
        """Mark sessions left ``running`` by a process that is gone as ``incomplete``; returns their ids. On a
        database that cannot be written now (a full disk) they stay ``running`` until a later open: reading
        never needs the disk to have room."""
        try:
            with self.transaction() as db:
                running = db.execute("SELECT id, pid FROM sessions WHERE status = 'running'").fetchall()
                dead = [row["id"] for row in running if row["pid"] != os.getpid() and not _pid_alive(row["pid"])]
                db.executemany("UPDATE sessions SET status = 'incomplete', complete = 0 WHERE id = ?",
                               [(i,) for i in dead])
        except sqlite3.OperationalError:
            return []
        return dead

    # -- writing a session ----------------------------------------------------------------------------------
    def begin_session(self, *, protocol: dict[str, Any], settings: dict[str, Any], client_id: str | None = None,
                      out_dir: str | os.PathLike | None = None, personalisation: dict[str, Any] | None = None,
                      started: dt.datetime | None = None) -> int:
        """A new session row (status ``running``, owned by this process); returns its id."""
        started = started or dt.datetime.now(dt.timezone.utc)
        with self.transaction() as db:
            cursor = db.execute(
                "INSERT INTO sessions (started, protocol, client_id, pid, out_dir, protocol_json, settings_json,"
                " personalisation_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (started.isoformat(timespec="seconds"), protocol.get("name", "?"), client_id, os.getpid(),
                 None if out_dir is None else str(out_dir), json.dumps(protocol), json.dumps(settings),
                 None if personalisation is None else json.dumps(personalisation)),
            )
            return cursor.lastrowid

    def append(self, session_id: int, *, seconds: list[dict] = (), beats: list[dict] = (),
               decisions: list[dict] = (), events: list[dict] = (), pmd: list[dict] = (),
               summary: dict[str, Any] | None = None, complete: bool | None = None) -> None:
        """Add rows to a session in one transaction (the record calls this once per session-second); optionally
        replace its running ``summary``; ``complete`` True/False ends the session as complete/incomplete."""
        second_rows = [_flat(session_id, r, SECOND_SQL_COLUMNS) for r in seconds]
        decision_rows = [_flat(session_id, r, DECISION_SQL_COLUMNS) for r in decisions]
        with self.transaction() as db:
            if second_rows:
                marks = ", ".join("?" * (len(SECOND_SQL_COLUMNS) + 3))
                db.executemany(f"INSERT OR REPLACE INTO seconds VALUES ({marks})", second_rows)
                db.execute("UPDATE sessions SET last_t_s = ? WHERE id = ?", (seconds[-1]["t_s"], session_id))
            db.executemany("INSERT INTO beats VALUES (?, ?, ?, ?, ?)",
                           [(session_id, r["t_s"], r["rr_raw"], r["rr_ms"], int(r["after_gap"])) for r in beats])
            if decision_rows:
                marks = ", ".join("?" * (len(DECISION_SQL_COLUMNS) + 3))
                db.executemany(f"INSERT INTO decisions VALUES ({marks})", decision_rows)
            db.executemany("INSERT INTO events VALUES (?, ?, ?, ?)",
                           [(session_id, r["t_s"], r["kind"], r["message"]) for r in events])
            db.executemany("INSERT INTO pmd_samples VALUES (?, ?, ?, ?)",
                           [(session_id, r["t_s"], r["kind"], json.dumps(r["values"])) for r in pmd])
            if summary is not None:
                db.execute("UPDATE sessions SET summary_json = ? WHERE id = ?", (json.dumps(summary), session_id))
            if complete is not None:
                db.execute("UPDATE sessions SET status = ?, complete = ? WHERE id = ?",
                           ("complete" if complete else "incomplete", int(complete), session_id))

    def rate(self, session_id: int, rating: int) -> None:
        """The listener's rating of a session, 1 (not helpful) to 5 (very helpful)."""
        if type(rating) is not int or not 1 <= rating <= 5:
            raise StorageError(f"rating {rating!r} is out of range: give a whole number from 1 to 5")
        with self.transaction() as db:
            self._require_session(db, session_id)
            db.execute("INSERT INTO ratings VALUES (?, ?, ?)", (session_id, _now(), rating))
            db.execute("UPDATE sessions SET rating = ? WHERE id = ?", (rating, session_id))

    # -- reading sessions -----------------------------------------------------------------------------------
    @staticmethod
    def _require_session(db: sqlite3.Connection, session_id: int) -> sqlite3.Row:
        row = db.execute("SELECT * FROM sessions WHERE id = ?", (session_id,)).fetchone()
        if row is None:
            raise StorageError(f"no session {session_id}: see `heartsong history` for the session numbers")
        return row

    def list_sessions(self, client_id: str | None = None, limit: int | None = None) -> list[SessionInfo]:
        """Stored sessions, newest first; only ``client_id``'s when given."""
        sql = "SELECT * FROM sessions" + (" WHERE client_id = ?" if client_id else "") + " ORDER BY started DESC, id DESC"
        args: list[Any] = [client_id] if client_id else []
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [self._info(row) for row in self._query(sql, args)]

    def session(self, session_id: int) -> SessionInfo:
        with self._lock:
            return self._info(self._require_session(self._db, session_id))

    def session_by_out_dir(self, out_dir: str | os.PathLike) -> SessionInfo | None:
        """The newest session recorded into ``out_dir`` (the folder holding its session.json), if any."""
        rows = self._query("SELECT * FROM sessions WHERE out_dir = ? ORDER BY id DESC LIMIT 1",
                           (str(Path(out_dir).resolve()),))
        return self._info(rows[0]) if rows else None

    @staticmethod
    def _info(row: sqlite3.Row) -> SessionInfo:
        return SessionInfo(
            id=row["id"], started=dt.datetime.fromisoformat(row["started"]), protocol=row["protocol"],
            client_id=row["client_id"], status=row["status"], complete=bool(row["complete"]), out_dir=row["out_dir"],
            last_t_s=row["last_t_s"], rating=row["rating"],
            summary=json.loads(row["summary_json"]) if row["summary_json"] else {},
        )

    def session_details(self, session_id: int) -> dict[str, Any]:
        """protocol, settings and personalisation dicts of a session (as recorded at its start)."""
        with self._lock:
            row = self._require_session(self._db, session_id)
        return {"protocol": json.loads(row["protocol_json"]), "settings": json.loads(row["settings_json"]),
                "personalisation": json.loads(row["personalisation_json"]) if row["personalisation_json"] else None}

    def seconds(self, session_id: int) -> list[dict[str, Any]]:
        """The per-second series, in time order: dicts keyed as ``wellness_app.record.SECOND_COLUMNS``."""
        rows = self._query("SELECT * FROM seconds WHERE session_id = ? ORDER BY t_s", (session_id,))
        return [_joined(row, SECOND_SQL_COLUMNS) for row in rows]

    def beats(self, session_id: int) -> list[dict[str, Any]]:
        rows = self._query("SELECT t_s, rr_raw, rr_ms, after_gap FROM beats WHERE session_id = ? ORDER BY rowid",
                           (session_id,))
        return [{"t_s": r["t_s"], "rr_raw": r["rr_raw"], "rr_ms": r["rr_ms"], "after_gap": bool(r["after_gap"])}
                for r in rows]

    def decisions(self, session_id: int) -> list[dict[str, Any]]:
        rows = self._query("SELECT * FROM decisions WHERE session_id = ? ORDER BY rowid", (session_id,))
        return [_joined(row, DECISION_SQL_COLUMNS) for row in rows]

    def events(self, session_id: int) -> list[dict[str, Any]]:
        rows = self._query("SELECT t_s, kind, message FROM events WHERE session_id = ? ORDER BY rowid", (session_id,))
        return [dict(row) for row in rows]

    def pmd_samples(self, session_id: int) -> list[dict[str, Any]]:
        rows = self._query("SELECT t_s, kind, values_json FROM pmd_samples WHERE session_id = ? ORDER BY rowid",
                           (session_id,))
        return [{"t_s": r["t_s"], "kind": r["kind"], "values": json.loads(r["values_json"])} for r in rows]

    def ratings(self, session_id: int) -> list[tuple[str, int]]:
        """Every rating given to the session: (rated_at ISO 8601 UTC, rating), oldest first."""
        rows = self._query("SELECT rated_at, rating FROM ratings WHERE session_id = ? ORDER BY rowid", (session_id,))
        return [(r["rated_at"], r["rating"]) for r in rows]

    # -- therapist documents (validated by wellness_app.clients, playlists, bundles) -------------------------------------------
    def get_document(self, table: str, key: str) -> dict[str, Any] | None:
        """A stored client profile, playlist, protocol or personalisation state as parsed JSON (None if absent)."""
        key_column, value_column = _DOCUMENT_TABLES[table]
        rows = self._query(f"SELECT {value_column} FROM {table} WHERE {key_column} = ?", (key,))
        return json.loads(rows[0][0]) if rows else None

    def documents(self, table: str) -> dict[str, dict[str, Any]]:
        """Every stored document of ``table``, by key, sorted."""
        key_column, value_column = _DOCUMENT_TABLES[table]
        rows = self._query(f"SELECT {key_column}, {value_column} FROM {table} ORDER BY {key_column}")
        return {row[0]: json.loads(row[1]) for row in rows}

    @staticmethod
    def has(db: sqlite3.Connection, table: str, key_column: str, key: str) -> bool:
        """Whether ``table`` holds a row whose ``key_column`` is ``key`` (inside a transaction)."""
        return db.execute(f"SELECT 1 FROM {table} WHERE {key_column} = ?", (key,)).fetchone() is not None

    @staticmethod
    def put_document(db: sqlite3.Connection, table: str, key: str, value: dict[str, Any]) -> None:
        """Insert or replace one document; call inside ``transaction()`` so a set of documents lands whole."""
        key_column, value_column = _DOCUMENT_TABLES[table]
        db.execute(f"INSERT OR REPLACE INTO {table} ({key_column}, {value_column}) VALUES (?, ?)",
                   (key, json.dumps(value, allow_nan=False)))


_DOCUMENT_TABLES = {
    "clients": ("client_id", "profile_json"),
    "playlists": ("name", "playlist_json"),
    "protocols": ("file_name", "protocol_json"),
    "personalisation": ("client_id", "state_json"),
}


def open_store() -> Store:
    """The user's store (``data_dir() / DB_NAME``)."""
    return Store()
