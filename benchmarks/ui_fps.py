"""Frames per second of the Kivy app during a real-time session (virtual strap, live charts), peak memory, and
audio underruns caused by a late engine. Run under a display, e.g.:

    xvfb-run -a -s "-screen 0 1280x800x24" .venv/bin/python benchmarks/ui_fps.py --seconds 30

The session plays through PortAudio into JACK's dummy driver (a clocked virtual sound card, started here when
``jackd`` is installed), so its underruns are the player's real ones. Without JACK (or with ``--no-sound-card``)
the session runs in the app's ``files`` mode: the same ``run_live`` on the app's loop, paced by a wall-clock player
that counts an underrun whenever the music was not rendered in time. Goal: >= 30 fps, 0 underruns.

``--launch N`` measures instead how long the app takes from starting its process to its first frame on screen
(Home drawn), N times, and prints the median. Goal: <= 3 s.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import tempfile
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
GOAL_FPS = 30.0
GOAL_LAUNCH_S = 3.0


def BareGuide():
    """A Kivy app showing one BreathGuide whose phase advances every frame: the platform's drawing floor."""
    from kivy.app import App
    from kivy.clock import Clock

    from wellness_app.ui.widgets import BreathGuide

    class Bare(App):
        def build(self):
            guide = BreathGuide()
            Clock.schedule_interval(lambda dt: setattr(guide, "phase", (guide.phase + dt / 10) % 1.0), 0)
            return guide

    return Bare()


async def _run_bare(app, driver) -> None:
    await asyncio.gather(app.async_run(async_lib="asyncio"), driver(app))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="seconds of session to measure (default 30)")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds ignored after the session starts")
    parser.add_argument("--accelerated", type=float, default=None, metavar="SPEED",
                        help="measure the accelerated mode instead (offline engine in a worker thread)")
    parser.add_argument("--no-vsync", action="store_true",
                        help="do not wait for vertical sync on buffer swaps (Xvfb has no real refresh to wait for)")
    parser.add_argument("--size", default="1280x800", help="window size WIDTHxHEIGHT (default 1280x800)")
    parser.add_argument("--bare", action="store_true",
                        help="baseline: the same window showing only an animated breath guide (no app, no session)")
    parser.add_argument("--no-sound-card", action="store_true",
                        help="do not start JACK's dummy driver: the session runs in files mode")
    parser.add_argument("--json", action="store_true", help="also print the figures as one JSON line (for run.py)")
    parser.add_argument("--ui-stall-ms", type=float, default=0.0, metavar="MS",
                        help="a busy UI: every --ui-stall-every seconds a frame blocks the app's loop this long")
    parser.add_argument("--ui-stall-every", type=float, default=1.0, metavar="S", help="(default 1 s)")
    parser.add_argument("--launch", type=int, default=0, metavar="N",
                        help="measure launch to first frame N times (a new process each) instead of fps")
    parser.add_argument("--first-frame", type=float, default=None, help=argparse.SUPPRESS)  # a --launch child
    args = parser.parse_args()
    if args.first_frame is not None:
        return first_frame(args)
    if args.launch:
        return measure_launch(args)
    wants_sound_card = not (args.no_sound_card or args.bare or args.accelerated)
    if wants_sound_card and "JACK_DEFAULT_SERVER" not in os.environ:
        returncode = _in_child_with_sound_card()
        if returncode is not None:
            return returncode
    return measure(args)


def measure_launch(args) -> int:
    """Start the app ``args.launch`` times, each in a new process with an empty data dir (a first run), and time
    process start to the first frame displayed."""
    times = []
    for _ in range(args.launch):
        with tempfile.TemporaryDirectory(prefix="heartsong-launch-") as data:
            env = os.environ | {"HEARTSONG_DATA_DIR": data, "XDG_CONFIG_HOME": data}
            started = time.time()
            child = subprocess.run([sys.executable, __file__, "--size", args.size, "--first-frame", str(started)],
                                   env=env, capture_output=True, text=True, cwd=ROOT)
            if child.returncode != 0:
                print(child.stderr[-2000:], file=sys.stderr)
                return child.returncode
            times.append(float(child.stdout.strip().splitlines()[-1]))
    median = statistics.median(times)
    print(f"launch to first frame, window {args.size}: median {median:.2f} s over {len(times)} launches "
          f"(goal {GOAL_LAUNCH_S:.0f} s, ratio {median / GOAL_LAUNCH_S:.2f}); each: "
          + ", ".join(f"{t:.2f}" for t in times))
    if args.json:
        print(json.dumps({"launch_median_s": median, "launch_s": times, "size": args.size}))
    return 0


def first_frame(args) -> int:
    """A --launch child: run the app, print seconds from ``args.first_frame`` (the parent's clock at spawn) to
    the first frame displayed, and quit."""
    size = tuple(int(v) for v in args.size.split("x"))
    os.environ.setdefault("KIVY_HOME", str(ROOT / ".kivy"))
    from wellness_app.ui import prepare_kivy_environment, run_app

    prepare_kivy_environment(offscreen=not os.environ.get("DISPLAY"), size=size)
    from kivy.clock import Clock

    from wellness_app.ui.app import HeartsongApp

    app = HeartsongApp()

    async def driver(app):
        try:
            while Clock.frames_displayed < 1:
                await asyncio.sleep(0.001)
            print(f"{time.time() - args.first_frame:.3f}")
        finally:
            app.stop()

    asyncio.run(run_app(app, driver))
    return 0


def _busy_wait(seconds: float) -> None:
    """Hold the app's thread (and so its asyncio loop) like a slow layout or a long callback would."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def _in_child_with_sound_card() -> int | None:
    """Start JACK's dummy driver and measure in a child process that plays into it; None when JACK cannot run.

    A child, because PortAudio must find the server when it loads and must shut down before the server does."""
    from generators.dummy_sound_card import DummySoundCardError, dummy_sound_card

    name = f"hs_ui_fps_{os.getpid()}"
    env = os.environ | {"JACK_DEFAULT_SERVER": name, "JACK_NO_START_SERVER": "1"}
    try:
        with dummy_sound_card(name):
            return subprocess.run([sys.executable, *sys.argv], env=env).returncode
    except DummySoundCardError as error:
        print(f"ui_fps: no virtual sound card ({error}); measuring in files mode", file=sys.stderr)
        return None


def measure(args) -> int:
    size = tuple(int(v) for v in args.size.split("x"))
    os.environ.setdefault("KIVY_HOME", str(ROOT / ".kivy"))
    if "HEARTSONG_DATA_DIR" not in os.environ:  # benchmark sessions stay out of the user's history
        os.environ["HEARTSONG_DATA_DIR"] = tempfile.mkdtemp(prefix="heartsong-ui-fps-")
    from wellness_app.ui import prepare_kivy_environment, run_app

    prepare_kivy_environment(offscreen=not os.environ.get("DISPLAY"), size=size)
    if args.no_vsync:
        from kivy.config import Config

        Config.set("graphics", "vsync", "0")
    from kivy.clock import Clock

    from wellness_app.ui.app import HeartsongApp

    app = BareGuide() if args.bare else HeartsongApp(
        accelerated=args.accelerated, quick_minutes=max(2.0, (args.seconds + args.warmup) / 60 + 1))
    result = {}

    async def driver(app):
        try:
            await asyncio.sleep(0.5)
            if not args.bare:
                app.sensor_spec = "virtual"
                app.plan_session("coherent-6", app.quick_minutes, label="benchmark")
                await app.start_session()
            await asyncio.sleep(args.warmup)
            frame_times = []
            tick = Clock.schedule_interval(lambda dt: frame_times.append(dt), 0)
            stall = Clock.schedule_interval(lambda dt: _busy_wait(args.ui_stall_ms / 1000), args.ui_stall_every)
            start_frames, start, start_cpu = Clock.frames_displayed, time.perf_counter(), time.process_time()
            await asyncio.sleep(args.seconds)
            tick.cancel()
            stall.cancel()
            elapsed = time.perf_counter() - start
            cpu_share = (time.process_time() - start_cpu) / elapsed
            if args.bare:
                result.update(mode="bare window", underruns=None, device_underflows=None, tachogram_points=None)
            else:
                result.update(mode=app.runner.mode, underruns=getattr(app.runner.player, "underruns", None),
                              device_underflows=getattr(app.runner.player, "device_underflows", None),
                              tachogram_points=app.screens["session"].tachogram.point_count)
            result.update(
                cpu_share=cpu_share,
                fps=(Clock.frames_displayed - start_frames) / elapsed,
                p95_ms=1000 * sorted(frame_times)[int(0.95 * len(frame_times))],
                median_ms=1000 * statistics.median(frame_times),
            )
        finally:
            app.stop()

    asyncio.run(run_app(app, driver) if not args.bare else _run_bare(app, driver))
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    display = "Xvfb/X11" if os.environ.get("DISPLAY") else "SDL offscreen"
    tuning = ", vsync off" if args.no_vsync else ""
    tuning += f", UI blocks the loop {args.ui_stall_ms:g} ms every {args.ui_stall_every:g} s" if args.ui_stall_ms else ""
    tuning += f", LP_NUM_THREADS={os.environ['LP_NUM_THREADS']}" if "LP_NUM_THREADS" in os.environ else ""
    print(f"display {display}{tuning}, window {args.size}, mode {result['mode']}, {args.seconds:.0f} s measured after {args.warmup:.0f} s warm-up")
    print(f"fps (frames drawn per second) {result['fps']:.1f} (goal {GOAL_FPS:.0f}, ratio {result['fps'] / GOAL_FPS:.2f}); "
          f"frame time median {result['median_ms']:.1f} ms, p95 {result['p95_ms']:.1f} ms; "
          f"process CPU {100 * result['cpu_share']:.0f} % of one core (GL rasterising included)")
    print(f"peak memory (max RSS) {peak_mib:.0f} MiB; audio underruns {result['underruns']} "
          f"(device underflows {result['device_underflows']}); "
          f"tachogram points {result['tachogram_points']}")
    if args.json:
        print(json.dumps(result | {"display": display, "size": args.size, "peak_mib": peak_mib}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
