"""The Kivy app: ``heartsong app`` (``add_subcommand``) and ``run_app``, which runs it on an asyncio loop."""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

EXIT_USAGE = 2


def display_problem(environ=os.environ, platform: str = sys.platform) -> str | None:
    """One line saying why no window can open here, or None when a display is available (or not needed)."""
    if platform.startswith("linux") and "ANDROID_ARGUMENT" not in environ:
        if not environ.get("DISPLAY") and not environ.get("WAYLAND_DISPLAY"):
            return ("no display found (DISPLAY and WAYLAND_DISPLAY are unset): run `heartsong app` on a desktop, "
                    "under `xvfb-run -a`, or add --offscreen to render without a window")
    return None


def prepare_kivy_environment(*, offscreen: bool, size: tuple[int, int] | None = None) -> None:
    """Settings Kivy reads at import: no argv parsing, Python logging, a private config dir, window size.

    Must run before the first ``import kivy``.
    """
    import platformdirs

    os.environ.setdefault("KIVY_NO_ARGS", "1")
    os.environ.setdefault("KIVY_LOG_MODE", "PYTHON")
    os.environ.setdefault("KIVY_HOME", os.path.join(platformdirs.user_config_dir("heartsong"), "kivy"))
    os.makedirs(os.environ["KIVY_HOME"], exist_ok=True)  # Kivy creates only the last path component
    os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")
    if offscreen:
        os.environ["SDL_VIDEODRIVER"] = "offscreen"
    kivy_logger = logging.getLogger("kivy")  # KIVY_LOG_MODE=PYTHON: Kivy logs here, from its first import on
    kivy_logger.setLevel(logging.WARNING)
    kivy_logger.addFilter(_drop_kivy_noise)
    from kivy.config import Config

    width, height = size or (1280, 800)
    Config.set("graphics", "width", str(width))
    Config.set("graphics", "height", str(height))
    Config.set("kivy", "exit_on_escape", "0")
    Config.set("input", "mouse", "mouse,disable_multitouch")
    # Kivy asks for 2x multisampling by default; with software GL (Xvfb's llvmpipe, phone emulators) that costs
    # almost two thirds of every frame: 40 -> 112 fps at 1280x800 (benchmarks/ui_fps.py). Round shapes keep smooth
    # edges through SmoothLine outlines instead.
    Config.set("graphics", "multisamples", "0")
    from kivy.clock import Clock

    # Kivy stops sleeping between frames once less than 1.8x its clock resolution is left, and by default that
    # resolution is a third of a frame: without vsync (Xvfb, some desktops) the app then draws ~100 fps at a
    # whole core's cost instead of its 60. A 2 ms resolution keeps frames near 60 fps (benchmarks/ui_fps.py).
    Clock.clock_resolution = 0.002


async def run_app(app, driver=None) -> None:
    """Run ``app`` on the current asyncio loop (bleak and the session engine share it). ``driver`` is an optional
    coroutine function called with the app once it runs (tests and benchmarks script the UI with it)."""
    tasks = [asyncio.ensure_future(app.async_run(async_lib="asyncio"))]
    if driver is not None:
        tasks.append(asyncio.ensure_future(driver(app)))
    try:
        await tasks[0]
    finally:
        await app.close_session()
        for task in tasks[1:]:
            if not task.done():
                task.cancel()
        results = await asyncio.gather(*tasks[1:], return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                raise result


def _drop_kivy_noise(record: logging.LogRecord) -> bool:
    """Kivy warns about every clipboard tool it probes and does not find (the app needs only SDL's clipboard) and
    about creating its config file on a first run; neither is anything a listener can act on."""
    message = str(record.msg)
    return not message.startswith(("xclip", "xsel", "Cutbuffer", "Config: Older configuration", "Config: Upgrading"))


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"window size {text!r} must look like 1280x800") from None
    return width, height


def _speed(text: str) -> float:
    value = float(text)
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError(f"--accelerated {text} is out of range: use 1-100 (times real time)")
    return value


def cmd_app(args) -> int:
    problem = None if args.offscreen else display_problem()
    if problem:
        print(f"heartsong: {problem}", file=sys.stderr)
        return EXIT_USAGE
    prepare_kivy_environment(offscreen=args.offscreen, size=args.size)
    from wellness_app.ui.app import HeartsongApp

    app = HeartsongApp(accelerated=args.accelerated, quick_minutes=args.minutes)
    asyncio.run(run_app(app))
    return 0


def add_subcommand(subparsers) -> None:
    """Register ``heartsong app`` on the CLI's subparsers."""
    parser = subparsers.add_parser("app", help="open the Heartsong app (Kivy)")
    parser.add_argument("--offscreen", action="store_true",
                        help="render without a window (screenshots, tests); no display needed")
    parser.add_argument("--size", type=_size, default=None, help="window size WIDTHxHEIGHT (default 1280x800; "
                        "540x960 shows phone proportions)")
    parser.add_argument("--minutes", type=float, default=10.0, help="quick-start session length (default 10)")
    parser.add_argument("--accelerated", type=_speed, default=None, metavar="SPEED",
                        help="demo mode: virtual strap, simulated time at SPEED x real time, no sound (files only)")
    parser.set_defaults(func=cmd_app)
