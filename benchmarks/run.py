"""Heartsong's benchmark table: every speed, latency and memory figure of issue 8, each beside its goal.

Run: .venv/bin/python benchmarks/run.py [--quick]   (about 3 min; --quick about 1.5 min)

Rows and where their goal comes from:
- offline render speed, x real time on one core, wall clock (CPU time beside it shows how much a busy machine
  took away) (issue 2: >= 30x);
- generator speed, music seconds per CPU second on one core, RuleBasedGenerator and the trained ModelGenerator
  (torch and NumPy backends, via ``generators.model.evaluate.speed``) (issue 5: >= 200x);
- estimator cost with all H10 streams, share of one core (issue 4: < 1 %), by running
  ``benchmarks/estimator_cost.py``;
- a live session end to end (virtual Polar H10 in the Bluetooth lab -> engine -> PortAudio -> JACK's dummy driver,
  instrumented by ``benchmarks/soak.py``): CPU share (process CPU / wall, goal < 25 % of one core so a core four
  times slower still keeps up), BLE packet-to-state latency p50/p95 (strap notification to the next estimator state;
  goal p95 < 100 ms, a tenth of the 1 s notification period), state-to-audible latency p50/p95 (a state at any
  moment to the audible start of the first bar the policy decides after it; goal p95 <= one bar + the 1.5 s render
  lead, since changes land on bar boundaries), startup to first sound (process start, through connecting the
  strap, to the first non-silent audio callback; goal < 5 s) and peak RSS (goal < 512 MB, a quarter of a 2 GB phone);
- the Kivy app during a real-time session with its live charts (``benchmarks/ui_fps.py``, under Xvfb at 1280x800
  when there is no display): frames drawn per second (issue 7: >= 30 fps) and audio underruns (issue 7: none
  caused by the UI).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import runpy
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from generators.controls import MusicControls  # noqa: E402
from generators.dummy_sound_card import dummy_sound_card  # noqa: E402
from generators.rules import RuleBasedGenerator  # noqa: E402
from wellness_app.engine import LEAD_S  # noqa: E402
from wellness_app.session import SessionOptions, build_engine, run_offline  # noqa: E402


ONE_CORE = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@contextlib.contextmanager
def one_core():
    """Pin this process to one core for the block."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def offline_render_speed(minutes: float) -> dict:
    """x real time of an offline coherent-6 session, wall clock, pinned to one core."""
    with tempfile.TemporaryDirectory() as out, one_core():
        engine, _ = build_engine(SessionOptions(minutes=minutes, out_dir=Path(out), offline=True))
        start, start_cpu = time.perf_counter(), time.process_time()
        run_offline(engine)
        wall, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    return {"value": minutes * 60 / wall, "cpu_value": minutes * 60 / cpu, "synth": type(engine.synth).__name__}


def rule_generator_speed(music_s: float) -> float:
    """Music seconds per CPU second of RuleBasedGenerator at the controls generators.model.evaluate.speed uses
    (60 bpm, density 1, 10-beat breaths)."""
    controls = MusicControls(tempo_bpm=60.0, beats_per_breath=10, inhale_beats=4.0, density=1.0)
    generator = RuleBasedGenerator(seed=1)
    composed, start = 0.0, time.process_time()
    while composed < music_s:
        generator.next_bar(controls)
        composed += controls.beats_per_breath * 60.0 / controls.tempo_bpm
    return composed / (time.process_time() - start)


def model_generator_speed(backend: str, music_s: float) -> float | None:
    """Music seconds per CPU second of the trained ModelGenerator (fresh one-thread process); None without one."""
    from generators.model.evaluate import speed

    try:
        return speed(backend, seconds=music_s)["music_seconds_per_cpu_second"]
    except (subprocess.CalledProcessError, FileNotFoundError):
        return None


def estimator_cost(minutes: float) -> float:
    """Share of one core (%) the estimator needs for every H10 stream, from benchmarks/estimator_cost.py."""
    argv = sys.argv
    sys.argv = [str(HERE / "estimator_cost.py"), str(minutes)]
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            result = runpy.run_path(sys.argv[0])
    finally:
        sys.argv = argv
    return 100.0 * result["cpu"] / result["duration"]


def live_session(minutes: float) -> dict:
    """An instrumented live session (benchmarks/soak.py) in a fresh process on one core, JACK dummy started
    first so that startup counts Heartsong only: Python start, imports, strap connection, first sound."""
    with tempfile.TemporaryDirectory(prefix="heartsong-bench-") as tmp:
        name = f"hs_bench_{os.getpid()}"
        env = os.environ | ONE_CORE | {"JACK_DEFAULT_SERVER": name, "JACK_NO_START_SERVER": "1",
                                       "HEARTSONG_DATA_DIR": str(Path(tmp) / "data"), "PYTHONPATH": str(ROOT)}
        core = min(os.sched_getaffinity(0))
        with dummy_sound_card(name):
            launched = time.monotonic()
            child = subprocess.run([sys.executable, str(HERE / "soak.py"), "--child", "--minutes", str(minutes),
                                    "--out", str(Path(tmp) / "session")], env=env, capture_output=True, text=True,
                                   cwd=ROOT, preexec_fn=lambda: os.sched_setaffinity(0, {core}))
        if child.returncode != 0:
            raise SystemExit(f"bench: the live session failed: {child.stderr.strip()[-2000:]}")
    result = json.loads(child.stdout.strip().splitlines()[-1])
    result["startup_s"] = result["first_sound_monotonic"] - launched
    return result


def app_frame_rate(seconds: float) -> dict | None:
    """``benchmarks/ui_fps.py`` in a child process, under ``xvfb-run`` when no display is set; None when no display
    can be had."""
    command = [sys.executable, str(HERE / "ui_fps.py"), "--seconds", str(seconds), "--warmup", "3", "--json"]
    if not os.environ.get("DISPLAY"):
        if shutil.which("xvfb-run") is None:
            return None
        command = ["xvfb-run", "-a", "-s", "-screen 0 1280x800x24", *command]
    child = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if child.returncode != 0:
        raise SystemExit(f"bench: the app benchmark failed: {child.stderr.strip()[-2000:]}")
    return json.loads(child.stdout.strip().splitlines()[-1])


def _row(name: str, measured: str, goal: str, met: bool | None) -> tuple[str, str, str, str]:
    return name, measured, goal, {True: "yes", False: "NO", None: "-"}[met]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs (noisier figures)")
    args = parser.parse_args()
    if "HEARTSONG_DATA_DIR" not in os.environ:  # benchmark sessions stay out of the user's history
        os.environ["HEARTSONG_DATA_DIR"] = tempfile.mkdtemp(prefix="heartsong-bench-")
    q = args.quick
    rows = []
    render = offline_render_speed(1.0 if q else 5.0)
    rows.append(_row(f"offline render ({render['synth']}, one core)", f"{render['value']:.1f}x real time (CPU time: {render['cpu_value']:.1f}x)",
                     ">= 30x", render["value"] >= 30))
    rules = rule_generator_speed(120.0 if q else 600.0)
    rows.append(_row("generator: RuleBasedGenerator", f"{rules:.0f}x real time", ">= 200x", rules >= 200))
    for backend in ("torch", "numpy"):
        model = model_generator_speed(backend, 3.0 if q else 10.0)
        rows.append(_row(f"generator: ModelGenerator ({backend})",
                         "no checkpoint" if model is None else f"{model:.0f}x real time", ">= 200x",
                         None if model is None else model >= 200))
    cost = estimator_cost(1.0 if q else 5.0)
    rows.append(_row("estimator, all H10 streams", f"{cost:.3f} % of one core", "< 1 %", cost < 1.0))
    live = live_session(0.5 if q else 1.0)
    bar_goal = live["bar_s_mean"] + LEAD_S
    rows += [
        _row("live session CPU (H10 lab + audio)", f"{100 * live['cpu_share']:.1f} % of one core", "< 25 %",
             live["cpu_share"] < 0.25),
        _row("BLE packet -> state latency", f"p50 {1000 * live['packet_to_state_p50_s']:.0f} ms, "
             f"p95 {1000 * live['packet_to_state_p95_s']:.0f} ms ({live['packets_timed']} packets)", "p95 < 100 ms",
             live["packet_to_state_p95_s"] < 0.1),
        _row("state -> audible change", f"p50 {live['state_to_audible_p50_s']:.2f} s, "
             f"p95 {live['state_to_audible_p95_s']:.2f} s (decision -> audible p50 "
             f"{live['decision_to_audible_p50_s']:.2f} s)", f"p95 <= 1 bar + lead = {bar_goal:.1f} s",
             live["state_to_audible_p95_s"] <= bar_goal),
        _row("startup to first sound (virtual H10)", f"{live['startup_s']:.2f} s", "< 5 s", live["startup_s"] < 5),
        _row("peak memory (live session RSS)", f"{live['peak_rss_mb']:.0f} MB", "< 512 MB", live["peak_rss_mb"] < 512),
        _row("live session audio underruns", f"{live['underruns']} in {live['minutes']:g} min", "0",
             live["underruns"] == 0),
    ]
    app = app_frame_rate(10.0 if q else 20.0)
    if app is None:
        rows.append(_row("app frames per second", "no display and no xvfb-run", ">= 30 fps", None))
    else:
        rows += [
            _row(f"app frames per second ({app['display']} {app['size']})",
                 f"{app['fps']:.0f} fps (frame time p95 {app['p95_ms']:.0f} ms)", ">= 30 fps", app["fps"] >= 30),
            _row(f"app audio underruns ({app['mode']} mode)", str(app["underruns"]), "0", app["underruns"] == 0),
            _row("app peak memory (RSS, window + session)", f"{app['peak_mib']:.0f} MiB", "none set", None),
        ]
    widths = [max(len(r[i]) for r in rows + [("measurement", "result", "goal", "met")]) for i in range(4)]
    print(f"Heartsong benchmarks{' (--quick)' if q else ''}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    for row in [("measurement", "result", "goal", "met"), tuple("-" * w for w in widths)] + rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)))


if __name__ == "__main__":
    main()
