"""Text from data files and the store made safe to print: control characters shown as escapes, never sent raw."""
from __future__ import annotations

from therapy_profiles.schema import is_control_character


def shown(text: object) -> str:
    """``str(text)`` with every control character (``therapy_profiles.schema.is_control_character``: ESC, NUL, CR,
    LF, bidirectional overrides, ...) replaced by its escape, e.g. ``\\x1b`` or ``\\u202e``; other text unchanged."""
    return "".join(ascii(ch)[1:-1] if is_control_character(ch) else ch for ch in str(text))
