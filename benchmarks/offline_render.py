"""Renders a 10-minute --offline coherent-6 session and prints its speed as a ratio to real time, on one core.

Run: .venv/bin/python benchmarks/offline_render.py [--minutes 10] [--synth auto|fluidsynth|builtin]
Goal (issue 2): at least 30x real time.
"""
import os

for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[variable] = "1"

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from wellness_app.session import SessionOptions, build_engine, run_offline  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--synth", default="auto")
    args = parser.parse_args()
    if "HEARTSONG_DATA_DIR" not in os.environ:  # benchmark sessions stay out of the user's history
        os.environ["HEARTSONG_DATA_DIR"] = tempfile.mkdtemp(prefix="heartsong-bench-")
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    with tempfile.TemporaryDirectory() as out:
        options = SessionOptions(protocol="coherent-6", minutes=args.minutes, out_dir=Path(out), synth=args.synth,
                                 offline=True)
        engine, notices = build_engine(options)
        started_wall, started_cpu = time.perf_counter(), time.process_time()
        run_offline(engine)
        wall, cpu = time.perf_counter() - started_wall, time.process_time() - started_cpu
    music_s = args.minutes * 60
    print(f"offline render, {args.minutes:g} min coherent-6, synth {type(engine.synth).__name__}, one core:")
    print(f"  {music_s / wall:6.1f}x real time (wall)   {music_s / cpu:6.1f}x real time (CPU)   goal >= 30x")


if __name__ == "__main__":
    main()
