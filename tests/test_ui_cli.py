"""`heartsong app` without a display: one line naming the problem and the way on, exit code 2, no window."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from wellness_app.ui import display_problem

ROOT = Path(__file__).resolve().parents[1]
RUN_APP_SUBCOMMAND = """
import argparse, sys
from wellness_app.ui import add_subcommand
parser = argparse.ArgumentParser(prog="heartsong")
add_subcommand(parser.add_subparsers(dest="command", required=True))
args = parser.parse_args(sys.argv[1:])
sys.exit(args.func(args))
"""


def test_app_without_a_display_says_so_in_one_line():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    result = subprocess.run([sys.executable, "-c", RUN_APP_SUBCOMMAND, "app"], env=env, capture_output=True,
                            text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no display" in lines[0] and "--offscreen" in lines[0], result.stderr


def test_display_detection():
    assert display_problem({}, "linux") is not None
    assert display_problem({"DISPLAY": ":99"}, "linux") is None
    assert display_problem({"WAYLAND_DISPLAY": "wayland-0"}, "linux") is None
    assert display_problem({}, "darwin") is None
    assert display_problem({"ANDROID_ARGUMENT": "x"}, "linux") is None


def test_android_entry_point_opens_the_app(tmp_path):
    """main.py (what python-for-android starts) runs the app until it is stopped: alive after 10 s, then a
    SIGTERM closes it cleanly (SDL turns it into a quit event), with no traceback."""
    env = {**os.environ, "HEARTSONG_DATA_DIR": str(tmp_path / "data"), "KIVY_HOME": str(tmp_path / "kivy"),
           "XDG_CONFIG_HOME": str(tmp_path / "config")}
    if not env.get("DISPLAY"):
        env["SDL_VIDEODRIVER"] = "offscreen"
    process = subprocess.Popen([sys.executable, "main.py"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        process.wait(timeout=10)
        still_running = False
    except subprocess.TimeoutExpired:
        still_running = True
        process.terminate()
    _out, err = process.communicate(timeout=30)
    assert still_running, f"main.py ended by itself (exit {process.returncode}): {err[-2000:]}"
    assert process.returncode == 0 and "Traceback" not in err, err[-2000:]
    assert (tmp_path / "kivy").is_dir(), "the app's private Kivy folder was used"
