"""Colours, type sizes and spacing for the Heartsong app: calm, high-contrast, large type (WCAG AA or better)."""
from __future__ import annotations

from kivy.metrics import dp, sp


def rgba(hex_colour: str, alpha: float = 1.0) -> tuple[float, float, float, float]:
    """'#RRGGBB' -> Kivy RGBA floats 0-1."""
    h = hex_colour.lstrip("#")
    return (int(h[0:2], 16) / 255, int(h[2:4], 16) / 255, int(h[4:6], 16) / 255, alpha)


# A deep night-blue background with off-white text: contrast ratio ~14:1. Accents are muted, never alarm-red.
BACKGROUND = rgba("#0F1621")
SURFACE = rgba("#18222F")
SURFACE_RAISED = rgba("#223042")
TEXT = rgba("#EEF1F5")
TEXT_MUTED = rgba("#A9B4C2")  # ~7.5:1 on BACKGROUND
INHALE = rgba("#6FD3C1")  # sea green: breathing in, the swell
EXHALE = rgba("#7FA7E8")  # soft blue: breathing out, the release
ACCENT = rgba("#6FD3C1")
HEART = rgba("#F2A3A0")  # soft coral for heart rate
BREATH = rgba("#B9A8F0")  # lavender for breathing rate
NOTICE = rgba("#F0C674")  # warm amber for calm notices (sensor lost, no sound card)
GRID = rgba("#2C3A4D")

# Type scale in sp (scales with the user's font preference on Android).
FONT_SMALL = sp(16)
FONT_BODY = sp(20)
FONT_LARGE = sp(26)
FONT_TITLE = sp(34)
FONT_NUMBER = sp(48)

PAD = dp(16)
GAP = dp(12)
BUTTON_HEIGHT = dp(64)  # comfortably above the 48 dp touch-target minimum
ROW_HEIGHT = dp(72)
RADIUS = dp(14)
