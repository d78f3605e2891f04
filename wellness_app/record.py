"""The session record: per-second time series, per-bar policy decisions, raw beats and a summary, saved to the
SQLite store every session-second and to session.json every few seconds.

Store: rows are buffered and committed in one transaction per session-second (``wellness_app.storage``), so a
session killed at any moment keeps everything up to its last second. session.json is rewritten atomically (write
to a temporary file, then rename) every ``SAVE_EVERY_S`` of session time and at the end; it is never half-written.

Storage never stops the music. When the database refuses a write (a full disk), the record stops writing to it for
the rest of the session, tells ``on_notice`` once, and appends every row the database did not get to
``SPILL_NAME`` beside session.json (JSON Lines: a header, then ``{"table": ..., **row}``); session.json still gets
everything but the ECG/ACC samples. ``storage_failure`` then says, in one line, what happened.
"""
from __future__ import annotations

import contextlib
import json
import math
import sqlite3
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from biosignals.types import BREATHING_SURE_CONFIDENCE, breathing_rate_if_sure
from generators.output import create_file
from wellness_app.storage import Store, write_private

SUMMARY_EVERY_S = 5  # session seconds between updates of the running summary in the store
SAVE_EVERY_S = 30.0  # session seconds between saves of session.json (the SQLite store is written every second)
SPILL_NAME = "session.unstored.jsonl"  # beside session.json: the rows the database refused
SPILL_FORMAT = "heartsong-unstored-rows/1"

# Per-second columns of session.json, with their units. Every number shown to a user is defined here or in
# biosignals.estimator (HR, RMSSD, breathing rate) and therapy_profiles.policy (guide, tempo).
SECOND_COLUMNS = {
    "t_s": "session time in seconds",
    "heart_rate_bpm": "60000 / mean artifact-corrected RR over the last 10 s (biosignals.estimator)",
    "rr_ms": "most recent artifact-corrected RR interval",
    "rmssd_ms": "RMSSD over the last 60 s of corrected RR, never across a gap",
    "breathing_rate_bpm": "breaths/min: gated tracker over RR (RSA), ECG R amplitude and chest ACC when present; "
                          "locked to the guide when breathing follows it, else 8-30/min (biosignals.breathing); "
                          "recorded always, shown only when breathing_confidence says it is sure",
    "breathing_confidence": f"0-1 confidence of breathing_rate_bpm; under {BREATHING_SURE_CONFIDENCE:g} the rate is "
                            "shown as unsure, never as a number, and left out of every summary and chart "
                            "(biosignals.types.BREATHING_SURE_CONFIDENCE)",
    "breathing_source": "which sources agreed on the breathing estimate (rr, ecg, acc)",
    "following_guide": "true when breathing follows the breath guide (peak at the guide rate, phase-locked, no "
                       "competing rhythm; when the strap sends ECG or chest motion, those that can tell vote by their weights, "
                       "else RR alone decides), null without a guide (biosignals.breathing)",
    "coherence": "HeartMath-style ratio over the last 64 s: peak power (0.030 Hz around the 0.04-0.26 Hz peak) "
                 "/ (total power - peak power), recomputed every 5 s (biosignals.hrv.hrv_coherence)",
    "lf_hf": "LF (0.04-0.15 Hz) / HF (0.15-0.4 Hz) power over the last 120 s (biosignals.hrv.hrv_frequency)",
    "signal_quality": "0 (unusable) to 1 (clean): contact, artifacts, ACC and RSA checks (biosignals.quality)",
    "guide_rate_bpm": "breaths/min the music guides in the current bar",
    "guide_phase": "0-1 position in the guided breath; inhale while below inhale_fraction",
    "inhale_fraction": "share of the guided breath spent inhaling",
    "tempo_bpm": "music tempo, quarter notes per minute",
    "beats_per_breath": "whole beats per guided breath (one bar)",
    "mode": "musical mode of the current bar",
    "density": "melody notes per beat asked of the generator",
    "volume": "master level ceiling 0-1",
    "phase": "protocol phase name",
    "virtual_breathing_rate_bpm": "virtual strap only: the simulated listener's true breathing rate",
    "virtual_heart_rate_bpm": "virtual strap only: the simulated listener's true heart rate",
}


def sure_breathing(row: dict[str, Any]) -> float | None:
    """A per-second row's breathing rate, None when there is none or it is unsure
    (``biosignals.types.breathing_rate_if_sure``)."""
    return breathing_rate_if_sure(row.get("breathing_rate_bpm"), row.get("breathing_confidence"))


def guide_gaps(rows: list[dict[str, Any]]) -> list[float]:
    """|breathing - guide| (breaths/min) of each per-second row that has a sure breathing rate and a guide."""
    return [abs(breathing - r["guide_rate_bpm"]) for r in rows
            if (breathing := sure_breathing(r)) is not None and r.get("guide_rate_bpm") is not None]


def shown_value(row: dict[str, Any], column: str) -> Any:
    """A per-second row's ``column`` as a summary or chart may show it: the breathing rate only when sure."""
    return sure_breathing(row) if column == "breathing_rate_bpm" else row.get(column)


@dataclass
class SessionRecord:
    """Everything a session leaves behind, built up while it runs.

    With a ``store``, the session gets a row (``session_id``) at its first second, tagged with ``client_id`` and
    the ``personalisation`` choice the session was played with (see ``therapy_profiles.personalisation``).
    """

    path: Path
    protocol: dict[str, Any]
    settings: dict[str, Any]
    seconds: list[dict[str, Any]] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    beats: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    complete: bool = False
    store: Store | None = None
    client_id: str | None = None
    personalisation: dict[str, Any] | None = None
    session_id: int | None = None
    _last_save_t: float = -math.inf
    _pending: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {"seconds": [], "beats": [], "decisions": [], "events": [], "pmd": []}
    )
    on_notice: Callable[[str], None] | None = None  # told once, plainly, when the database or an output file fails
    storage_failure: str | None = None  # one line: why the database stopped recording; None while it records
    output_failure: str | None = None  # one line: the first output file write that failed (``output_failed``)
    _spill: BinaryIO | None = None
    unsaved_rows: int = 0  # rows neither the database nor the spill file could take (both disks full)

    @property
    def spill_path(self) -> Path:
        return self.path.parent / SPILL_NAME

    def add_second(self, row: dict[str, Any]) -> None:
        self.seconds.append(row)
        self._pending["seconds"].append(row)
        summary_due = row["t_s"] % SUMMARY_EVERY_S == 0
        self._flush(summary=self.summary() if summary_due else None)
        if row["t_s"] - self._last_save_t >= SAVE_EVERY_S:
            self._last_save_t = row["t_s"]
            try:
                self._save_json()
            except OSError as error:  # the database has every second, and the final save may work
                self.output_failed(row["t_s"], f"{self.path} could not be saved at {row['t_s']} s "
                                               f"({error.strerror or error})")

    def output_failed(self, t_s: float, message: str) -> None:
        """An output file could not be written (a full disk): the first time, noted in the events and told; the
        music goes on."""
        if self.output_failure is None:
            self.output_failure = message
            self.add_event(t_s, "output_error", message)
            self._tell(f"{message}: the music goes on")

    def add_beat(self, row: dict[str, Any]) -> None:
        self.beats.append(row)
        self._pending["beats"].append(row)

    def add_decision(self, row: dict[str, Any]) -> None:
        self.decisions.append(row)
        self._pending["decisions"].append(row)

    def add_event(self, t_s: float, kind: str, message: str) -> None:
        event = {"t_s": round(t_s, 3), "kind": kind, "message": message}
        self.events.append(event)
        self._pending["events"].append(event)

    def add_pmd(self, t_s: float, kind: str, values: list[float]) -> None:
        """Polar PMD samples at session time ``t_s`` (s): kind ``ecg`` (µV) or ``acc`` (mG, x/y/z); store only."""
        self._pending["pmd"].append({"t_s": round(t_s, 4), "kind": kind, "values": values})

    def _flush(self, summary: dict[str, Any] | None = None, finished: bool = False) -> None:
        """Commit the buffered rows (and the running ``summary``, or the final one when ``finished``) in one
        transaction. A write the database refuses ends its part in this session: see the module doc."""
        if self.store is None:
            return
        if self.storage_failure is None:
            try:
                if self.session_id is None:
                    self.session_id = self.store.begin_session(
                        protocol=self.protocol, settings=self.settings, client_id=self.client_id,
                        out_dir=self.path.parent.resolve(), personalisation=self.personalisation,
                    )
                self.store.append(self.session_id, **self._pending, summary=summary,
                                  complete=self.complete if finished else None)
            except sqlite3.Error as error:
                t_s = self.seconds[-1]["t_s"] if self.seconds else 0
                self.storage_failure = f"the session database stopped recording at {t_s} s ({error})"
                self.add_event(t_s, "storage_error", f"{self.storage_failure}; the rest goes to {SPILL_NAME}")
                self._tell(f"{self.storage_failure}: the music goes on, and the rest of the session is kept in "
                           f"{self.path} and {self.spill_path}")
            else:
                for rows in self._pending.values():
                    rows.clear()
                return
        self._spill_pending(summary)

    def _spill_pending(self, summary: dict[str, Any] | None) -> None:
        """Append the rows the database did not get to the spill file (created with a header on first use)."""
        lines = [{"table": table, **row} for table, rows in self._pending.items() for row in rows]
        if summary is not None:
            lines.append({"table": "summary", **summary})
        for rows in self._pending.values():
            rows.clear()
        try:
            if self._spill is None:
                self._spill = create_file(self.spill_path)
                self._spill.write(json.dumps({
                    "format": SPILL_FORMAT, "session_id": self.session_id, "reason": self.storage_failure,
                    "protocol": self.protocol.get("name"), "settings": self.settings, "client_id": self.client_id,
                }).encode() + b"\n")
            self._spill.write(b"".join(json.dumps(line, allow_nan=False).encode() + b"\n" for line in lines))
            self._spill.flush()
        except OSError:
            self.unsaved_rows += len(lines)

    def _tell(self, message: str) -> None:
        if self.on_notice is not None:
            self.on_notice(message)

    def summary(self) -> dict[str, Any]:
        """Before/after figures: first and last 30 s of the session (means of the per-second values; for breathing,
        of the sure seconds only: ``shown_value``; None when the window has none)."""
        def window_mean(column: str, first: bool) -> float | None:
            if not self.seconds:
                return None
            t_end = self.seconds[-1]["t_s"]
            rows = [r for r in self.seconds if (r["t_s"] < 30 if first else r["t_s"] > t_end - 30)]
            values = [v for r in rows if (v := shown_value(r, column)) is not None]
            return round(statistics.fmean(values), 2) if values else None

        return {
            "duration_s": self.seconds[-1]["t_s"] + 1 if self.seconds else 0,
            "complete": self.complete,
            "beats": len(self.beats),
            "summary_windows": "first 30 s vs last 30 s of the session, means of per-second values (breathing: "
                               "only the seconds Heartsong was sure of)",
            **{f"{column}_{edge}": window_mean(column, edge == "start")
               for column in ("heart_rate_bpm", "rmssd_ms", "breathing_rate_bpm", "guide_rate_bpm", "tempo_bpm")
               for edge in ("start", "end")},
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "format": "heartsong-session/1",
            "protocol": self.protocol,
            "settings": self.settings,
            "columns": SECOND_COLUMNS,
            "summary": self.summary(),
            "seconds": self.seconds,
            "decisions": self.decisions,
            "events": self.events,
            "beats": self.beats,
        }

    def save(self) -> None:
        """The end of the session: commit what is buffered, store the summary and whether the session is
        ``complete``, and write session.json."""
        self._flush(summary=self.summary(), finished=True)
        if self._spill is not None:
            with contextlib.suppress(OSError):
                self._spill.close()
        self._save_json()

    def _save_json(self) -> None:
        """Atomically replace the JSON file; readable by the user alone (health data)."""
        write_private(self.path, json.dumps(self.to_json(), separators=(",", ":"), allow_nan=False))
