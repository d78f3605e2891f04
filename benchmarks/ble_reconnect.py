"""Measure, in real time through bleak + Bumble: reconnect time after a link drop and packet-to-estimate latency.

Reconnect time: from the virtual strap becoming reachable again (advertising) to the first new RR interval
arriving at the app, median over ``--drops`` drops. Goal (issue 3): median under 5 s.
Packet-to-estimate: (a) notification arrival -> PhysioState that includes it (parse + back-date + estimate,
host CPU time); (b) heart beat -> that estimate (includes the strap's ~1 s notification cadence).

    .venv/bin/python benchmarks/ble_reconnect.py --drops 5 --down 2
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from biosignals.beat_timing import BeatTimeline
from biosignals.estimator import RRStateEstimator
from biosignals.heart_rate_measurement import HEART_RATE_MEASUREMENT_UUID, HeartRateParseError, parse_heart_rate_measurement
from biosignals.lab import faults
from biosignals.sources import open_source
from biosignals.sources.ble import GAP_CHARACTERISTIC


async def run(kind: str, drops: int, down_s: float, settle_s: float) -> None:
    source = open_source(f"virtual:{kind}", seed=7)
    await source.start()
    lab = source.lab
    timeline, estimator = BeatTimeline(), RRStateEstimator()
    rr_arrivals: list[float] = []  # lab time of every packet carrying RR
    compute_s: list[float] = []
    beat_to_estimate_s: list[float] = []

    async def consume() -> None:
        async for packet in source.packets():
            arrived = lab.now()
            if packet.characteristic == GAP_CHARACTERISTIC:
                timeline.mark_gap()
                continue
            if packet.characteristic != HEART_RATE_MEASUREMENT_UUID:
                continue
            t0 = time.perf_counter()
            try:
                hrm = parse_heart_rate_measurement(packet.data)
            except HeartRateParseError:
                continue
            beats = timeline.add(packet.t_arrival, hrm)
            for beat in beats:
                estimator.add_beat(beat)
            estimator.state(packet.t_arrival)
            compute_s.append(time.perf_counter() - t0)
            if hrm.rr_raw:
                rr_arrivals.append(arrived)
                fired = [b for b in source.strap.beats_fired if b <= arrived]
                beat_to_estimate_s.append(lab.now() - fired[-1])

    consumer = asyncio.create_task(consume())
    await lab.sleep(settle_s)
    reconnect_s = []
    for _ in range(drops):
        t_back = await faults.drop_link(source.strap, down_s)
        while not any(t > t_back for t in rr_arrivals):
            await asyncio.sleep(0.05)
        reconnect_s.append(min(t for t in rr_arrivals if t > t_back) - t_back)
        await lab.sleep(settle_s)
    await source.stop()
    await consumer

    def summary(values: list[float], unit: float, name: str) -> str:
        q = statistics.quantiles(values, n=20, method="inclusive") if len(values) > 1 else values * 19
        return f"{name}: median {statistics.median(values) * unit:.2f}, p95 {q[18] * unit:.2f}, max {max(values) * unit:.2f}"

    print(f"virtual:{kind}, {drops} drops of {down_s:g} s, real time")
    print(summary(reconnect_s, 1.0, "reconnect, reachable -> first new RR (s)") + f"  goal < 5 s: ratio {statistics.median(reconnect_s) / 5.0:.2f}")
    print("  each:", ", ".join(f"{v:.2f}" for v in reconnect_s))
    print(summary(compute_s, 1000.0, f"packet -> estimate, host compute (ms, {len(compute_s)} packets)"))
    print(summary(beat_to_estimate_s, 1000.0, "beat -> estimate including it (ms)"))
    print("strap reconnects seen by the source:", len(source.reconnects))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", default="hrs", choices=["hrs", "h10", "hr-only"])
    parser.add_argument("--drops", type=int, default=5)
    parser.add_argument("--down", type=float, default=2.0, help="seconds out of range per drop")
    parser.add_argument("--settle", type=float, default=4.0, help="seconds of normal streaming between drops")
    args = parser.parse_args()
    asyncio.run(run(args.kind, args.drops, args.down, args.settle))


if __name__ == "__main__":
    main()
