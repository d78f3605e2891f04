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
