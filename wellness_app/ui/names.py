"""What the app says in words: a protocol's and a phase's title (the protocol file's ``title``, else its name made
readable), a length in minutes, a count with the right plural, a breathing rate or "unsure", a session's change in
one sentence, and a validator's message in a form's words."""
from __future__ import annotations

from biosignals.types import breathing_rate_if_sure

# what a breathing rate reads as when its confidence is under biosignals.types.BREATHING_SURE_CONFIDENCE
UNSURE = "unsure"


def readable(slug: str) -> str:
    """'slow-down' -> 'Slow down' (for protocols and phases stored without a title)."""
    words = slug.removesuffix(".json").replace("-", " ").replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def protocol_title(protocol) -> str:
    """A Protocol (or its JSON document) by its title, e.g. "Coherent breathing, 6 per minute"."""
    if isinstance(protocol, dict):
        return protocol.get("title") or readable(protocol.get("name", "session"))
    return protocol.title or readable(protocol.name)


def phase_title(protocol, phase_name: str | None) -> str:
    """The title of ``protocol``'s phase named ``phase_name`` (a Protocol), e.g. "Slowing down"."""
    if not phase_name:
        return "Starting"
    for phase in getattr(protocol, "phases", ()):
        if phase.name == phase_name:
            return phase.title or readable(phase.name)
    return readable(phase_name)


def minutes_text(minutes: float) -> str:
    """A length to the nearest half minute: '10.5 min', '7 min' (6.77 min)."""
    return f"{round(minutes * 2) / 2:g} min"


def count_text(count: int, noun: str) -> str:
    """'1 session', '3 sessions'."""
    return f"{count} {noun}" + ("" if count == 1 else "s")


def breathing_text(rate_bpm: float | None, confidence: float | None, missing: str = "--") -> str:
    """A breathing rate to one decimal, ``UNSURE`` when the tracker is not sure of it
    (``biosignals.types.breathing_rate_if_sure``), ``missing`` when there is no estimate at all."""
    if rate_bpm is None:
        return missing
    sure = breathing_rate_if_sure(rate_bpm, confidence)
    return UNSURE if sure is None else f"{sure:.1f}"


# the schema's rules in a form's words (the validators' messages name patterns and lengths)
PLAIN_RULES = (
    ("string should match pattern '^[A-Za-z0-9_-]{1,64}$'", "use letters, digits, - and _ only (no spaces), up to 64"),
    ("string should have at least 1 character", "this cannot be empty"),
)


def plain_error(message: str, fields: dict[str, str]) -> tuple[str | None, str]:
    """A validator's one line, e.g. "client profile: client_id = 'bad id!' is not allowed (string should match
    pattern ...)", as (the form field it names or None, the problem in the form's words: "Client id: use
    letters, digits, - and _ only (no spaces), up to 64")."""
    detail = message.split(": ", 1)[-1] if " = " in message else message
    key = next((k for k in fields if detail.startswith(f"{k} = ")), None)
    subject = fields[key] if key else detail.split(" = ")[0]
    for rule, words in PLAIN_RULES:
        if rule in detail:
            return key, f"{subject}: {words}"
    if key is not None:
        detail = f"{subject} {detail[len(key) + 3:]}"  # "Name 'calm 5' is not a valid name (allowed: ...)"
    return key, detail[:1].upper() + detail[1:]


# the before and after windows are the first and last 30 s (wellness_app.record): shorter, they overlap
MIN_COMPARED_S = 120.0


def change_sentence(summary: dict) -> str:
    """What changed from the first 30 s to the last 30 s, in one plain sentence, e.g. "Heart rate 3 beats/min
    lower, HRV 12 % higher, breathing slowed from 12 to 6.5 per minute." A session shorter than
    ``MIN_COMPARED_S`` is said to be too short to compare. The breathing rates come from sure seconds only
    (``wellness_app.record``): one window without any is said ``UNSURE``; both without, the breathing rate is said
    ``UNSURE`` beside the heart-rate or HRV change (with neither, the strap's signal was not clear)."""
    if summary.get("duration_s", 0) < MIN_COMPARED_S:
        return (f"This session was too short to compare before and after: that needs at least "
                f"{MIN_COMPARED_S / 60:.0f} minutes.")
    parts = []
    hr = (summary.get("heart_rate_bpm_start"), summary.get("heart_rate_bpm_end"))
    if None not in hr:
        change = round(hr[1] - hr[0])
        parts.append(f"heart rate {abs(change)} beats/min {'lower' if change < 0 else 'higher'}" if change
                     else "heart rate unchanged")
    hrv = (summary.get("rmssd_ms_start"), summary.get("rmssd_ms_end"))
    if None not in hrv and hrv[0] > 0:
        change = round(100 * (hrv[1] / hrv[0] - 1))
        parts.append(f"HRV {abs(change)} % {'higher' if change > 0 else 'lower'}" if change else "HRV unchanged")
    start, end = (None if v is None else round(v * 2) / 2  # to the nearest half breath
                  for v in (summary.get("breathing_rate_bpm_start"), summary.get("breathing_rate_bpm_end")))
    if start is not None and end is not None:
        parts.append(f"breathing stayed at about {end:g} per minute" if start == end else
                     f"breathing {'slowed' if end < start else 'quickened'} from {start:g} to {end:g} per minute")
    elif start is not None or end is not None:
        known, edge, other = (end, "end", "start") if start is None else (start, "start", "end")
        parts.append(f"breathing about {known:g} per minute at the {edge} ({UNSURE} at the {other})")
    elif parts:
        parts.append(f"breathing rate {UNSURE}")
    if not parts:
        return "The strap's signal was not clear enough to compare before and after."
    sentence = ", ".join(parts)
    return sentence[0].upper() + sentence[1:] + "."
