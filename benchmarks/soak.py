"""Soak test: a live session from a virtual Polar H10 (Bluetooth lab) into JACK's dummy driver under a competing CPU load,
reporting underruns, memory growth, breath-guide vs music drift and samples recorded vs samples sent.

Run: .venv/bin/python benchmarks/soak.py --minutes 30 [--no-load] [--json] [--faults]

The sound card is JACK's dummy driver (``jackd --no-realtime -d dummy -r 48000 -p 480``), started and stopped
here with ``generators.dummy_sound_card``: a clocked virtual card calling back every 10.0 ms with no underflows of
its own. It replaces a PulseAudio null sink, which stalls for 1-2 s after starting and so counts underruns that are
the sink's, not Heartsong's.
The competing load is a busy-loop process pinned to the other core while the session is pinned to this one.

Measured (goals from issue 8):
- underruns: times the player's buffer ran dry (goal 0), and device underflows PortAudio reported;
- memory growth: RSS at the end vs RSS after the first 20 % of the session (goal < 10 %);
- drift: the breath-guide phase the engine reports at the audible frame vs the phase of the bar schedule at the
  frame really at the DAC (audible frame minus the stream's output latency), in beats (goal < 1 beat);
- samples: RR intervals and PMD samples (ECG, ACC) the virtual strap notified over the link vs rows in the SQLite
  store (goal equal). The strap stops notifying ``QUIET_TAIL_S`` before the end so nothing is in flight at the
  end;
- also CPU share of the session (process CPU / wall), packet-to-state latency (strap notification to the next
  estimator state), state-to-audible latency (a state at any moment to the audible start of the first bar the
  policy decided after it), startup to first non-silent callback, peak RSS: ``benchmarks/run.py`` prints these.

``--faults`` runs the sensor fault drill instead of a quiet strap: garbage and truncated packets, link drops every
few seconds, contact loss and stalled notifications (``biosignals.lab.faults``), for the fault tests.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from generators.dummy_sound_card import DummySoundCardError, dummy_sound_card  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
QUIET_TAIL_S = 3.0  # the strap falls silent this long before the end, so every sent sample can arrive
SAMPLE_EVERY_S = 0.25  # how often the guide phase, audible frame and RSS are sampled


@contextlib.contextmanager
def busy_load(core: int | None):
    """A busy-loop process pinned to ``core`` (None: no load)."""
    if core is None:
        yield None
        return
    process = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    os.sched_setaffinity(process.pid, {core})
    try:
        yield process
    finally:
        process.kill()
        process.wait()


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class SentCounter:
    """Counts what a virtual strap really notified over the link: RR intervals and PMD samples by kind."""

    def __init__(self, strap) -> None:
        from biosignals import pmd

        self.counts = {"rr": 0, "ecg": 0, "acc": 0}
        self.hrm_sent_at: list[float] = []  # host monotonic time of each Heart Rate Measurement sent
        notify = strap._notify

        async def counting_notify(characteristic, value):
            delivered = strap.connection is not None and strap.device is not None
            now = time.monotonic()
            await notify(characteristic, value)
            if not delivered:
                return
            if characteristic is strap.hrs.heart_rate_measurement_characteristic:
                self.hrm_sent_at.append(now)
                rr = getattr(value, "rr_intervals", None)
                if rr and getattr(value, "heart_rate", 0):
                    self.counts["rr"] += len(rr)
            elif characteristic is strap.pmd_data:
                with contextlib.suppress(pmd.PmdParseError, ValueError):
                    frame = pmd.parse_frame(bytes(value))
                    kind = pmd.MeasurementType(frame.measurement_type).name.lower()
                    self.counts[kind] += len(pmd.decode_content(frame))

        strap._notify = counting_notify


async def _fault_drill(strap) -> list[str]:
    """The sensor faults of issue 8, one after another, on lab time; returns what was done."""
    from biosignals.lab import faults

    done = []
    while strap.lab is None:  # not powered on yet
        await asyncio.sleep(0.05)
    await strap.lab.sleep(3.0)
    faults.inject_heart_rate_packets(strap, faults.garbage_packets(4, seed=8) + faults.truncated_heart_rate_packets())
    faults.inject_pmd_frames(strap, faults.garbage_packets(3, seed=9, max_length=12))
    done.append("garbage and truncated packets")
    await strap.lab.sleep(2.0)
    for _ in range(2):
        await faults.drop_link(strap, 1.5)
        done.append("link drop 1.5 s")
        await strap.lab.sleep(2.0)
    await faults.lose_contact(strap, 2.0)
    done.append("contact loss 2 s")
    await strap.lab.sleep(1.0)
    await faults.stall_notifications(strap, 3.0)
    done.append("stalled notifications 3 s")
    return done


async def _observe(engine, player, fault_drill: bool, samples: dict) -> None:
    """Sample the running session; silence the strap ``QUIET_TAIL_S`` before the end; run the fault drill."""
    strap = engine.source._probe  # the strap object exists before the lab powers it on
    drill = asyncio.create_task(_fault_drill(strap)) if fault_drill else None
    while player.frames_played < engine.total_frames and not engine.finished:
        now = time.monotonic()
        audible = player.frames_played
        bar = engine.sounding_bar(audible)
        if bar is not None and player.callbacks:
            samples["guide"].append((now, audible, bar.start_frame + bar.guide_phase(audible) * bar.n_frames))
        samples["rss"].append((now, _rss_mb()))
        # engine.duration_s, not the planned length: the session ends on the breath boundary nearest that
        if audible >= (engine.duration_s - QUIET_TAIL_S) * engine.sample_rate and not strap.faults.stalled:
            strap.faults.stalled = True  # never un-stalled: the drill is over by then
        await asyncio.sleep(SAMPLE_EVERY_S)
    if drill is not None:
        if drill.done():
            samples["faults"] = drill.result()
        else:
            drill.cancel()
            samples["faults"] = ["drill unfinished"]


def _instrument(engine, samples: dict) -> None:
    """Wrap the engine to log decisions (host time, bar) and packet-to-state latency of heart-rate packets."""
    from biosignals.heart_rate_measurement import HEART_RATE_MEASUREMENT_UUID

    compose, handle, estimate = engine._compose_next_bar, engine.handle_packet, engine._estimate
    pending: list[int] = []  # indexes (in send order) of heart-rate packets handled since the last state
    handled = [0]

    def compose_logged(session_t):
        compose(session_t)
        bar = engine.bars[-1]
        controls = bar.decision.controls
        samples["bars"].append((time.monotonic(), bar.start_frame, bar.n_frames, controls.beats_per_breath))

    def handle_logged(packet, session_t):
        handle(packet, session_t)
        if packet.characteristic == HEART_RATE_MEASUREMENT_UUID:
            pending.append(handled[0])  # packets arrive in the order sent: no loss on a quiet link
            handled[0] += 1

    def estimate_logged(t):
        state = estimate(t)
        now = time.monotonic()
        sent = samples["counter"].hrm_sent_at
        samples["packet_to_state_s"].extend(now - sent[i] for i in pending if i < len(sent))
        pending.clear()
        return state

    engine._compose_next_bar, engine.handle_packet, engine._estimate = compose_logged, handle_logged, estimate_logged


def _analyse(engine, player, samples: dict, latency_s: float, counter: SentCounter, cpu_s: float, wall_s: float,
             first_sound_s: float | None) -> dict:
    from wellness_app.storage import Store

    sr = engine.sample_rate
    bars = samples["bars"]
    starts = np.array([b[1] for b in bars])
    contiguous = all(a[1] + a[2] == b[1] for a, b in zip(bars, bars[1:]))
    # Drift: reported guide phase at the audible frame vs the schedule's phase at the frame really at the DAC.
    latency_frames = latency_s * sr
    drift_beats = []
    for _, audible, guide_frame in samples["guide"]:
        dac = audible - latency_frames
        i = int(np.searchsorted(starts, dac, side="right")) - 1
        if i < 0:
            continue
        _, b_start, b_len, beats = bars[i]
        drift_beats.append(abs(guide_frame - dac) / b_len * beats)  # guide position vs heard position, in beats
    # State to audible: a state at time s reaches the ear at the audible start of the first bar decided after s.
    times = np.array([g[0] for g in samples["guide"]])
    frames = np.array([g[1] for g in samples["guide"]], dtype=float)
    def audible_at(frame):  # host time frame ``frame`` reaches the DAC, from the sampled frame clock
        return float(np.interp(frame + latency_frames, frames, times, right=np.nan))
    decided = np.array([b[0] for b in bars])
    state_to_audible = []
    for s in times[::4]:
        i = int(np.searchsorted(decided, s))
        if i < len(bars):
            heard = audible_at(bars[i][1])
            if np.isfinite(heard):
                state_to_audible.append(heard - s)
    decision_to_audible = [audible_at(b[1]) - b[0] for b in bars]
    decision_to_audible = [x for x in decision_to_audible if np.isfinite(x)]
    rss = samples["rss"]
    warm = rss[len(rss) // 5][1] if rss else float("nan")
    with Store() as store:
        sid = engine.record.session_id
        recorded = {"rr": len(store.beats(sid)), "ecg": 0, "acc": 0}
        with sqlite3.connect(store.path) as db:  # counted in SQL: a 30-minute H10 session has ~600 000 samples
            recorded |= dict(db.execute("SELECT kind, COUNT(*) FROM pmd_samples WHERE session_id = ? GROUP BY kind",
                                        (sid,)).fetchall())
        seconds = [r["t_s"] for r in store.seconds(sid)]
        info = store.session(sid)
        events = store.events(sid)
    lat = [x for x in samples["packet_to_state_s"] if np.isfinite(x)]
    pct = lambda xs, q: float(np.percentile(xs, q)) if xs else None  # noqa: E731
    return {
        "minutes": engine.duration_s / 60.0,
        "underruns": player.underruns, "device_underflows": player.device_underflows, "callbacks": player.callbacks,
        "rss_warm_mb": warm, "rss_end_mb": rss[-1][1] if rss else None,
        "memory_growth_pct": 100.0 * (rss[-1][1] - warm) / warm if rss else None,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "drift_beats_max": max(drift_beats) if drift_beats else None, "drift_samples": len(drift_beats),
        "bars_contiguous": contiguous, "output_latency_s": latency_s,
        "sent": counter.counts, "recorded": recorded,
        "seconds_recorded": len(seconds), "seconds_contiguous": seconds == list(range(len(seconds))),
        "status": info.status, "complete": info.complete,
        "event_kinds": sorted({e["kind"] for e in events}),
        "cpu_share": cpu_s / wall_s, "wall_s": wall_s,
        "packet_to_state_p50_s": pct(lat, 50), "packet_to_state_p95_s": pct(lat, 95), "packets_timed": len(lat),
        "state_to_audible_p50_s": pct(state_to_audible, 50), "state_to_audible_p95_s": pct(state_to_audible, 95),
        "decision_to_audible_p50_s": pct(decision_to_audible, 50),
        "decision_to_audible_p95_s": pct(decision_to_audible, 95),
        "bar_s_mean": float(np.mean([b[2] for b in bars])) / sr if bars else None,
        "first_sound_monotonic": first_sound_s,
        "faults": samples.get("faults", []),
    }


def run_session(minutes: float, out_dir: Path, *, fault_drill: bool = False, seed: int = 4) -> dict:
    """One instrumented live session (virtual:h10 into the JACK server named by $JACK_DEFAULT_SERVER); returns
    the measurements. Call in a fresh process: PortAudio reads the JACK server name when it is first loaded."""
    from generators.player import LivePlayer
    from wellness_app.session import SessionOptions, build_engine, run_live

    class TimedPlayer(LivePlayer):
        """A LivePlayer that notes the host time of its first non-silent callback."""

        first_sound: float | None = None

        def _callback(self, outdata, frames, time_info, status):
            super()._callback(outdata, frames, time_info, status)
            if self.first_sound is None and outdata.any():
                self.first_sound = time.monotonic()

    engine, _ = build_engine(SessionOptions(protocol="coherent-6", minutes=minutes, out_dir=out_dir,
                                            sensor="virtual:h10", seed=seed))
    samples = {"guide": [], "rss": [], "bars": [], "packet_to_state_s": []}
    counter = SentCounter(engine.source._probe)
    samples["counter"] = counter
    _instrument(engine, samples)
    player = TimedPlayer(sample_rate=engine.sample_rate).open()
    latency_s = float(player._stream.latency)

    async def main():
        observer = asyncio.create_task(_observe(engine, player, fault_drill, samples))
        try:
            await run_live(engine, player)
        finally:
            await observer

    wall0, cpu0 = time.monotonic(), time.process_time()
    try:
        asyncio.run(main())
        player.drain(timeout_s=2.0)
    finally:
        player.close()
    wall, cpu = time.monotonic() - wall0, time.process_time() - cpu0
    return _analyse(engine, player, samples, latency_s, counter, cpu, wall, player.first_sound)


def report(result: dict) -> str:
    equal = result["sent"] == result["recorded"]
    return "\n".join([
        f"soak, {result['minutes']:g} min live session, virtual:h10 -> JACK dummy:",
        f"  audio underruns        {result['underruns']} (device underflows {result['device_underflows']}, "
        f"{result['callbacks']} callbacks)   goal 0",
        f"  memory growth          {result['memory_growth_pct']:+.1f} % ({result['rss_warm_mb']:.0f} -> "
        f"{result['rss_end_mb']:.0f} MB RSS)   goal < 10 %",
        f"  guide vs music drift   {result['drift_beats_max']:.3f} beats max over {result['drift_samples']} samples "
        f"(output latency {1000 * result['output_latency_s']:.1f} ms)   goal < 1 beat",
        f"  samples recorded/sent  {result['recorded']} / {result['sent']}   goal equal: {'yes' if equal else 'NO'}",
        f"  seconds recorded       {result['seconds_recorded']} (contiguous: {result['seconds_contiguous']}), "
        f"status {result['status']}",
        f"  CPU share              {100 * result['cpu_share']:.1f} % of one core",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--no-load", action="store_true", help="no competing busy-loop on the other core")
    parser.add_argument("--faults", action="store_true", help="run the sensor fault drill (see the module doc)")
    parser.add_argument("--json", action="store_true", help="print the measurements as one JSON line")
    parser.add_argument("--out", default=None, help="session folder (default: a temporary one)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:  # the session itself: JACK server, data dir and core chosen by the parent
        result = run_session(args.minutes, Path(args.out), fault_drill=args.faults)
        print(json.dumps(result))
        return
    cores = sorted(os.sched_getaffinity(0))
    session_core, load_core = cores[0], (cores[-1] if len(cores) > 1 else None)
    with tempfile.TemporaryDirectory(prefix="heartsong-soak-") as tmp:
        out = Path(args.out) if args.out else Path(tmp) / "session"
        name = f"hs_soak_{os.getpid()}"
        env = os.environ | {"JACK_DEFAULT_SERVER": name, "JACK_NO_START_SERVER": "1",
                            "HEARTSONG_DATA_DIR": os.environ.get("HEARTSONG_DATA_DIR", str(Path(tmp) / "data")),
                            "PYTHONPATH": str(ROOT)}
        command = [sys.executable, str(Path(__file__).resolve()), "--child", "--minutes", str(args.minutes),
                   "--out", str(out)] + (["--faults"] if args.faults else [])
        try:
            with dummy_sound_card(name), busy_load(None if args.no_load else load_core):
                child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                         cwd=ROOT, preexec_fn=lambda: os.sched_setaffinity(0, {session_core}))
                stdout, stderr = child.communicate()
        except DummySoundCardError as error:
            raise SystemExit(f"soak: {error}") from None
        if child.returncode != 0:
            raise SystemExit(f"soak: the session failed (exit {child.returncode}): {stderr.strip()[-2000:]}")
        result = json.loads(stdout.strip().splitlines()[-1])
    print(json.dumps(result) if args.json else report(result))


if __name__ == "__main__":
    main()
