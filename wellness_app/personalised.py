"""A playlist entry as one client hears it (their overrides and the personalisation bandit's musical choice),
and what a rated session teaches that client's bandit. Storage: ``personalisation`` holds each client's bandit;
rating a session and teaching the bandit is one transaction.
"""
from __future__ import annotations

import math
import statistics
from typing import Any

import numpy as np

from therapy_profiles import ClientProfile, PlaylistEntry, Protocol
from therapy_profiles.personalisation import PARAMETERS, MusicBandit, SessionResponse, apply_choice, parse_choice, reward
from wellness_app.clients import client_overrides, get_client
from wellness_app.playlists import custom_protocols, entry_protocol
from wellness_app.record import guide_gaps
from wellness_app.storage import Store


ADHERENCE_FULL_SCALE_BPM = 3.0  # mean |breathing - guide| at which breathing adherence scores 0
ADHERENCE_MIN_SECONDS = 10


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
    breathing adherence (1 - mean |breathing - guide| / ``ADHERENCE_FULL_SCALE_BPM``, over the seconds whose
    breathing rate is sure: ``wellness_app.record.guide_gaps``, as in the report) and, if recorded, coherence as
    the mean share of HRV power in the peak: ratio c = peak / (total - peak) -> c / (1 + c) = peak / total, 0-1."""
    def change(column: str) -> float | None:
        start, end = summary.get(f"{column}_start"), summary.get(f"{column}_end")
        return end - start if start is not None and end is not None else None

    gaps = guide_gaps(seconds)
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
