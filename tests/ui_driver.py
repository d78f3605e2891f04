"""Helpers for scripting the Kivy app in a subprocess: launch with a driver coroutine, wait frames, take screenshots,
and find what a listener would see as broken on screen (``layout_problems``).

Kivy's Window is a process singleton, so each UI test runs its flow with ``python tests/test_ui_x.py OUT.json``
and asserts on the observations the flow writes. Waits count frames, not seconds (the Clock counts from import).
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCREENS = ROOT / "artifacts" / "screens"


def launch(driver, *, accelerated: float | None = None, quick_minutes: float = 10.0, size=(1280, 800)) -> None:
    """Start the app in this process with ``driver(app)`` scripting it; returns when the app has stopped."""
    sys.path.insert(0, str(ROOT))
    from wellness_app.ui import prepare_kivy_environment, run_app

    prepare_kivy_environment(offscreen=not os.environ.get("DISPLAY"), size=size)
    from wellness_app.ui.app import HeartsongApp

    app = HeartsongApp(accelerated=accelerated, quick_minutes=quick_minutes)

    async def guarded(app):
        try:
            await driver(app)
        finally:
            app.stop()

    asyncio.run(run_app(app, guarded))


def run_flow_and_save(flow, **launch_kwargs) -> None:
    """A UI test file's ``__main__``: run ``flow(app, observations)`` in the app (``launch_kwargs`` as for
    ``launch``), then write the observations to the JSON file named by ``sys.argv[1]``."""
    observations: dict = {}

    async def driver(app):
        await flow(app, observations)

    launch(driver, **launch_kwargs)
    Path(sys.argv[1]).write_text(json.dumps(observations, default=str))


async def frames(n: int) -> None:
    """Let ``n`` frames render."""
    from kivy.clock import Clock

    start = Clock.frames
    while Clock.frames < start + n:
        await asyncio.sleep(0.002)


async def wait_until(condition, max_frames: int, what: str) -> int:
    """Wait frame by frame until ``condition()``; returns the frames waited, raises after ``max_frames``."""
    for waited in range(max_frames):
        if condition():
            return waited
        await frames(1)
    raise AssertionError(f"UI flow: {what} did not happen within {max_frames} frames")


async def shot(name: str) -> str:
    """Screenshot the window to artifacts/screens/<name>.png (after two frames so the latest state is drawn)."""
    from kivy.app import App
    from kivy.core.window import Window

    manager = App.get_running_app().manager
    await wait_until(lambda: not manager.transition.is_active, 200, "screen transition finished")
    await frames(2)
    SCREENS.mkdir(parents=True, exist_ok=True)
    target = SCREENS / f"{name}.png"
    made = Window.screenshot(name=str(SCREENS / f"{name}-tmp.png"))
    os.replace(made, target)
    return str(target)


def press(button) -> None:
    button.dispatch("on_press")
    button.dispatch("on_release")


def run_flow_subprocess(test_file: str, tmp_path: Path, timeout_s: float = 240, env: dict | None = None) -> dict:
    """Run ``test_file`` as a script (its flow) with a private data dir; returns the observations it wrote.
    ``env``: extra environment variables for the app (e.g. JACK_DEFAULT_SERVER for a sound card)."""
    out = tmp_path / "observations.json"
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "HEARTSONG_DATA_DIR": str(tmp_path / "data" / "heartsong"),
           "KIVY_NO_ARGS": "1", "KIVY_LOG_MODE": "PYTHON", "KIVY_HOME": str(ROOT / ".kivy"), **(env or {})}
    result = subprocess.run([sys.executable, test_file, str(out)], env=env, capture_output=True, text=True,
                            timeout=timeout_s, cwd=ROOT)
    assert result.returncode == 0 and out.exists(), f"UI flow failed:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
    return json.loads(out.read_text())


# -- layout checks: what a listener would see as broken ----------------------------------------------------------
def visible_rect(widget):
    """``widget``'s rectangle in window coordinates, clipped by the scroll views it sits in; None when hidden."""
    from kivy.uix.scrollview import ScrollView

    x0, y0 = widget.to_window(widget.x, widget.y)
    x1, y1 = widget.to_window(widget.right, widget.top)
    node = widget.parent
    while node is not None and node is not node.parent:
        if getattr(node, "opacity", 1) == 0:
            return None
        if isinstance(node, ScrollView):
            vx0, vy0 = node.to_window(node.x, node.y)
            vx1, vy1 = node.to_window(node.right, node.top)
            x0, y0, x1, y1 = max(x0, vx0), max(y0, vy0), min(x1, vx1), min(y1, vy1)
        node = node.parent
    if x1 - x0 < 1 or y1 - y0 < 1:
        return None
    return x0, y0, x1, y1


def shows_something(widget) -> bool:
    from kivy.uix.label import Label

    if widget.opacity == 0 or widget.width < 1 or widget.height < 1:
        return False
    return bool(widget.text.strip()) if isinstance(widget, Label) else True


def leaves(widget):
    """The widgets a listener sees as separate things: labels, buttons, fields, sliders, and drawn widgets (the
    breath guide's circle, a chart) as wholes with their own labels."""
    from kivy.uix.label import Label
    from kivy.uix.layout import Layout
    from kivy.uix.scrollview import ScrollView
    from kivy.uix.slider import Slider
    from kivy.uix.textinput import TextInput

    if isinstance(widget, (Label, Slider, TextInput)) or not widget.children:
        yield widget
        return
    if not isinstance(widget, (Layout, ScrollView)):
        yield widget  # a drawn widget (the breath guide, a chart): its area, then its own labels
    for child in widget.children:
        yield from leaves(child)


def _inside(widget, ancestor) -> bool:
    while widget is not None and widget is not widget.parent:
        if widget is ancestor:
            return True
        widget = widget.parent
    return False


def _broken_words(label) -> list[str]:
    """Words of a wrapping label wider than its text box: Kivy then breaks them mid-word ("Expor t")."""
    width = label.text_size[0] if label.text_size and label.text_size[0] else None
    if width is None:
        return []
    plain = re.sub(r"\[/?[a-z]+[^\]]*\]", "", label.text) if label.markup else label.text
    return [word for word in plain.split() if label._label.get_extents(word)[0] > width + 1]


def layout_problems(root, where: str) -> list[str]:
    """What is broken on screen under ``root``: a label whose text does not fit its widget (clipped, or wider than
    it), a word broken mid-word, and two visible widgets that overlap (neither inside the other)."""
    from kivy.uix.label import Label

    problems = []
    shown = []
    for widget in leaves(root):
        if not shows_something(widget):
            continue
        rect = visible_rect(widget)
        if rect is None:
            continue
        name = f"{type(widget).__name__} {getattr(widget, 'text', '')[:40]!r}"
        if isinstance(widget, Label) and widget.shorten:
            full = widget._label.get_extents(widget.text)[0]
            if full > widget.width - 2 * widget.padding_x + 1:
                problems.append(f"{where}: {name} is cut short ({full:.0f} px of text in {widget.width:.0f} px)")
        elif isinstance(widget, Label):
            widget.texture_update()
            tw, th = widget.texture_size
            if tw > widget.width + 2 or th > widget.height + 2:
                problems.append(f"{where}: {name} text {tw:.0f}x{th:.0f} px does not fit its "
                                f"{widget.width:.0f}x{widget.height:.0f} px widget")
            for word in _broken_words(widget):
                problems.append(f"{where}: {name} breaks the word {word!r} mid-word")
        shown.append((name, rect, widget))
    for i, (name_a, (ax0, ay0, ax1, ay1), a) in enumerate(shown):
        for name_b, (bx0, by0, bx1, by1), b in shown[i + 1:]:
            overlap_x, overlap_y = min(ax1, bx1) - max(ax0, bx0), min(ay1, by1) - max(ay0, by0)
            if overlap_x > 1 and overlap_y > 1 and not (_inside(a, b) or _inside(b, a)):
                problems.append(f"{where}: {name_a} at {_box(a)} overlaps {name_b} at {_box(b)}")
    return problems


def _box(widget) -> str:
    x, y = widget.to_window(widget.x, widget.y)
    return f"({x:.0f},{y:.0f} {widget.width:.0f}x{widget.height:.0f})"
