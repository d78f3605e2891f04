"""Helpers for scripting the Kivy app in a subprocess: launch with a driver coroutine, wait frames, take screenshots.

Kivy's Window is a process singleton, so each UI test runs its flow with ``python tests/test_ui_x.py OUT.json``
and asserts on the observations the flow writes. Waits count frames, not seconds (the Clock counts from import).
"""
from __future__ import annotations

import asyncio
import json
import os
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
