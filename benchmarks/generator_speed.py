"""Prints how many times faster than real time the learned generator composes (music seconds per CPU second)
at default controls, one thread, for the torch and NumPy backends, with load time and peak memory."""
from __future__ import annotations

from generators.model.evaluate import speed

GOAL = 200.0  # times real time, the goal

if __name__ == "__main__":
    for backend in ("torch", "numpy"):
        s = speed(backend, seconds=5.0)
        print(f"{backend:6s} {s['music_seconds_per_cpu_second']:7.0f}x real time (goal {GOAL:.0f}x: "
              f"{s['music_seconds_per_cpu_second'] / GOAL:.1f}x the goal), {s['ms_per_token']:.3f} ms/token, "
              f"load {s['load_seconds']:.2f} s, peak RSS {s['peak_rss_mb']:.0f} MB")
