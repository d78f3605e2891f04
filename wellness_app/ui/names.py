"""What the app calls things in words: a protocol's and a phase's title (the protocol file's ``title``, else its
name made readable), a length in minutes, and a count of things with the right plural."""
from __future__ import annotations


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
