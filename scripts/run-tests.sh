#!/usr/bin/env bash
# Runs the test suite on a virtual screen (Xvfb) when one can be started, so the Kivy UI tests render.
set -u
cd "$(dirname "$0")/.."
export KIVY_NO_ARGS=1 KIVY_LOG_MODE=PYTHON KIVY_HOME="$PWD/.kivy"
if command -v xvfb-run >/dev/null && [ -z "${DISPLAY:-}" ]; then
    exec xvfb-run -a -s "-screen 0 1280x800x24" .venv/bin/python -m pytest "$@"
fi
exec .venv/bin/python -m pytest "$@"
