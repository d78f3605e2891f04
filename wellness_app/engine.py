"""The session engine: sensor -> estimator -> policy -> generator -> arranger -> synth -> output, on one loop.

The music clock is the audio frame counter. Music is composed one breath-locked bar at a time (one bar = one
guided breath), so the breath guide's phase is the position inside the bar being heard, and control changes
land on bar boundaries. Offline, simulated time is the music clock and the virtual strap is advanced to it;
live, the sensor runs on host time, the music is rendered up to ``LEAD_S`` ahead and the guide the listener
hears is the one at the audible frame.
"""
from __future__ import annotations

import asyncio
import collections
import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from biosignals.estimator import PhysioEstimator
from biosignals.packet_decoder import HostSamples, PacketDecoder
from biosignals.sources.base import SensorSource
from biosignals.types import Beat, PhysioState, SensorPacket
from generators.arranger import Arranger
from generators.base import Generator
from generators.controls import MusicControls
from generators.form import Composer
from generators.mastering import Master
from generators.output import WavWriter, truncate_messages, write_midi
from generators.sequencer import Sequencer
from generators.synth.base import Synth
from therapy_profiles.policy import Policy, PolicyDecision
from wellness_app.record import SessionRecord

BLOCK_FRAMES = 4800  # 100 ms at 48 kHz: the granularity of sensor and guide updates offline, and of writes live
LEAD_S = 1.5  # live: how far ahead of the audible frame the music is rendered


@dataclass(frozen=True)
class ScheduledBar:
    """A bar placed on the music clock, with the decision that shaped it."""

    start_frame: int
    n_frames: int
    decision: PolicyDecision

    def guide_phase(self, frame: int) -> float:
        """Breath-guide phase 0-1 at ``frame``: the position in this bar, since one bar is one breath."""
        return min(max((frame - self.start_frame) / self.n_frames, 0.0), 1.0 - 1e-9)


class SessionEngine:
    """Runs one session. Build it with the parts, then call ``run_offline()`` or ``await run_live(player)``."""

    def __init__(
        self,
        *,
        source: SensorSource,
        policy: Policy,
        generator: Generator,
        synth: Synth,
        record: SessionRecord,
        out_dir: Path,
        duration_s: float,
        sample_rate: int = 48000,
        on_progress: Callable[[float, PhysioState, ScheduledBar], None] | None = None,
    ) -> None:
        self.source = source
        self.policy = policy
        self.generator = generator
        self.synth = synth
        self.record = record
        self.out_dir = out_dir
        self.duration_s = duration_s
        self.sample_rate = sample_rate
        self.on_progress = on_progress

        self.arranger = Arranger(sample_rate)
        self.composer = Composer(generator)  # the phrase plan: form, harmony, held beats per breath, final cadence
        self.sequencer = Sequencer(synth)
        self.master = Master(sample_rate, makeup_db=synth.makeup_db)
        self.decoder = PacketDecoder()
        self.estimator = PhysioEstimator()
        self.midi_messages = []
        self.tempo_changes: list[tuple[int, float]] = []
        self.bars: collections.deque[ScheduledBar] = collections.deque()
        self.rendered_frames = 0
        self.composed_frames = 0
        self.next_second = 0
        self.t0_host = 0.0  # host time of frame 0 (live)
        self.state = PhysioState(t=0.0)
        self.fading_out = False
        self.stopped_early = False
        self.finished = False
        self.listener = getattr(source, "listener", None)  # the simulated body of a virtual strap, if any

        initial = self.arranger.initial_messages()
        self.sequencer.schedule(initial)
        self.midi_messages.extend(initial)

    # -- sensor side ------------------------------------------------------------------------------
    def handle_packet(self, packet: SensorPacket, session_t: float) -> None:
        """Route one notification: beats and ECG/ACC samples to the estimator, notices to the record.
        A bad packet is logged, never fatal."""
        for item in self.decoder.feed(packet):
            if isinstance(item, Beat):
                self._add_beat(item, session_t)
            elif isinstance(item, HostSamples):
                if item.kind == "ecg":
                    self.estimator.add_ecg(item.values, item.times_s, item.r_peaks)
                else:
                    self.estimator.add_acc(item.values, item.times_s)
                for t, values in zip(item.times_s - self.t0_host, item.values.tolist()):
                    self.record.add_pmd(float(t), item.kind, values if isinstance(values, list) else [values])
            elif item.kind == "gap":
                self.record.add_event(session_t, "sensor_lost",
                                      f"{item.message}; the music continues on the plan while the strap reconnects")
            else:
                self.record.add_event(session_t, item.kind, item.message)

    def _add_beat(self, beat: Beat, session_t: float) -> None:
        self.estimator.add_beat(beat)
        self.record.add_beat({
            "t_s": round(beat.t - self.t0_host, 4), "rr_raw": beat.rr_raw, "rr_ms": round(beat.rr_ms, 2),
            "after_gap": beat.after_gap,
        })
        if beat.after_gap:
            self.record.add_event(session_t, "gap", "beat stream resumed after a gap; HRV windows restart")

    def _estimate(self, t: float) -> PhysioState:
        """The estimator's state; when no beats are coming (an HR-only strap) the strap's own HR field stands in
        for heart rate, and HRV and breathing stay None: no claims without RR intervals."""
        self.estimator.set_contact(self.decoder.timeline.contact)
        state = self.estimator.state(t)
        reported = self.decoder.last_reported_hr
        if state.heart_rate_bpm is None and reported and t - reported[0] < 5.0:
            state = dataclasses.replace(state, heart_rate_bpm=float(reported[1]))
        return state

    # -- music side -------------------------------------------------------------------------------
    def _compose_next_bar(self, session_t: float) -> None:
        decision = self.policy.step(self.state, session_t)
        final = self._is_final_breath(decision.controls)
        controls, bar, _ = self.composer.next_bar(decision.controls, final)
        decision = dataclasses.replace(decision, controls=controls)  # the beats per breath and tempo played
        messages, n_frames = self.arranger.arrange(bar, controls, self.composed_frames)
        self.sequencer.schedule(messages)
        self.midi_messages.extend(messages)
        self._add_tempo_map(self.arranger.beat_frames)
        if final:
            self._end_with_breath(self.composed_frames, n_frames)
        self.bars.append(ScheduledBar(self.composed_frames, n_frames, decision))
        self.record.add_decision({
            "t_s": round(self.composed_frames / self.sample_rate, 3),
            "phase": decision.phase_name,
            "guide_rate_bpm": round(controls.breath_rate_bpm, 3),
            "tempo_bpm": round(controls.tempo_bpm, 3),
            "beats_per_breath": controls.beats_per_breath,
            "inhale_beats": controls.inhale_beats,
            "mode": controls.mode,
            "density": controls.density,
            "volume": controls.volume,
            "reason": decision.reason,
        })
        self.composed_frames += n_frames

    def _is_final_breath(self, controls: MusicControls) -> bool:
        """Whether the next breath's end is the breath boundary nearest the session's planned end."""
        if self.fading_out:
            return False
        period = controls.breath_period_s * self.sample_rate
        return self.composed_frames + 1.5 * period >= self.total_frames

    def _end_with_breath(self, start_frame: int, n_frames: int) -> None:
        """The session ends with this breath (its cadence), fading out over it, up to half a breath earlier or
        later than planned."""
        self.duration_s = (start_frame + n_frames) / self.sample_rate
        self.master.begin_fade_out(n_frames / self.sample_rate, start_frame)
        self.fading_out = True

    def _add_tempo_map(self, beat_frames: list[int]) -> None:
        """Tempo at every beat of the bar just arranged (the glides included), for the MIDI file."""
        for frame, following in zip(beat_frames, beat_frames[1:]):
            bpm = 60.0 * self.sample_rate / max(following - frame, 1)
            if not self.tempo_changes or abs(self.tempo_changes[-1][1] - bpm) > 0.05:
                self.tempo_changes.append((frame, bpm))

    def _render_block(self, n_frames: int, session_t: float) -> np.ndarray:
        while self.composed_frames < self.rendered_frames + n_frames:
            self._compose_next_bar(session_t)
        end_frame = self.rendered_frames + n_frames
        block = self.master.process(self.sequencer.render(n_frames))
        self.rendered_frames = end_frame
        return block

    def bar_at(self, frame: int) -> ScheduledBar:
        """The bar sounding at ``frame``; bars already heard are dropped from the schedule."""
        while len(self.bars) > 1 and self.bars[1].start_frame <= frame:
            self.bars.popleft()
        return self.bars[0]

    def _guide_listener(self, frame: int) -> None:
        """The audible breath guide goes to the estimator (it judges whether breathing follows it) and, with a
        virtual strap, to the simulated listener, who hears the guide and the tempo."""
        if not self.bars:
            return
        bar = self.bar_at(frame)
        controls = bar.decision.controls
        self.estimator.set_guide(controls.breath_rate_bpm, bar.guide_phase(frame), self.t0_host + frame / self.sample_rate)
        if self.listener is not None:
            self.listener.set_pacer(controls.breath_rate_bpm, bar.guide_phase(frame))
            self.listener.set_hr_pull(controls.tempo_bpm)

    def _record_seconds(self, audible_frame: int) -> None:
        while self.bars and self.next_second * self.sample_rate < audible_frame:
            frame = self.next_second * self.sample_rate
            bar = self.bar_at(frame)
            controls: MusicControls = bar.decision.controls
            row = {
                "t_s": self.next_second,
                "heart_rate_bpm": _round(self.state.heart_rate_bpm, 2),
                "rr_ms": _round(self.state.rr_ms, 1),
                "rmssd_ms": _round(self.state.rmssd_ms, 2),
                "breathing_rate_bpm": _round(self.state.breathing_rate_bpm, 2),
                "breathing_confidence": _round(self.state.breathing_confidence, 3),
                "guide_rate_bpm": round(controls.breath_rate_bpm, 3),
                "guide_phase": round(bar.guide_phase(frame), 4),
                "inhale_fraction": round(controls.inhale_fraction, 4),
                "tempo_bpm": round(controls.tempo_bpm, 3),
                "beats_per_breath": controls.beats_per_breath,
                "mode": controls.mode,
                "density": controls.density,
                "volume": controls.volume,
                "phase": bar.decision.phase_name,
                "coherence": _round(self.state.coherence, 3),
                "lf_hf": _round(self.state.lf_hf, 3),
                "signal_quality": _round(self.state.signal_quality, 3),
                "breathing_source": self.state.breathing_source,
                "following_guide": self.state.following_guide,
            }
            if self.listener is not None:
                row["virtual_breathing_rate_bpm"] = round(self.listener.breathing_rate_bpm, 3)
                row["virtual_heart_rate_bpm"] = round(self.listener.heart_rate_bpm, 2)
            self.record.add_second(row)
            self.next_second += 1

    # -- drivers ----------------------------------------------------------------------------------
    def run_offline(self, wav: WavWriter) -> None:
        """Render the whole session as fast as the machine allows, the virtual strap advanced on the music clock."""
        while self.step_offline(wav, blocks=100):
            pass

    def step_offline(self, wav: WavWriter, blocks: int = 1) -> bool:
        """Render up to ``blocks`` blocks of the offline session (for callers that pace it, such as the app's
        accelerated mode on its event loop); returns False once the session is finished."""
        if not hasattr(self.source, "packets_until"):
            raise TypeError("offline sessions need a simulated sensor: the virtual strap or a recording")
        for _ in range(blocks):
            total = self.total_frames
            if self.rendered_frames >= total:
                self.finish()
                return False
            n = min(BLOCK_FRAMES, total - self.rendered_frames)
            t = self.rendered_frames / self.sample_rate
            self._guide_listener(self.rendered_frames)
            for packet in self.source.packets_until(t):
                self.handle_packet(packet, t)
            self.state = self._estimate(t)
            block = self._render_block(n, t)
            wav.write(block)
            self._record_seconds(self.rendered_frames)
            if self.on_progress:
                self.on_progress(t, self.state, self.bar_at(self.rendered_frames - 1))
        return True

    @property
    def total_frames(self) -> int:
        return int(round(self.duration_s * self.sample_rate))

    def request_stop(self, fade_s: float = 3.0) -> None:
        """End the session early: fade out from the next rendered frame and stop once the fade is over.
        The record keeps everything and says the listener stopped it."""
        if self.stopped_early:
            return
        self.stopped_early = True
        self.record.add_event(self.rendered_frames / self.sample_rate, "stopped", "stopped by the listener")
        self.master.begin_fade_out(fade_s)
        self.fading_out = True
        self.duration_s = min(self.duration_s, self.rendered_frames / self.sample_rate + fade_s)

    def sounding_bar(self, frame: int) -> ScheduledBar | None:
        """The scheduled bar containing ``frame``, read without changing the schedule (None before any bar)."""
        found = None
        for bar in list(self.bars):
            if bar.start_frame > frame:
                break
            found = bar
        return found if found is not None else (self.bars[0] if self.bars else None)

    async def run_live(self, player, wav: WavWriter) -> None:
        """Play through ``player`` (a started LivePlayer) while the sensor streams on host time."""
        self.t0_host = time.monotonic()
        sensor_task = asyncio.create_task(self._consume_sensor())
        try:
            while True:
                total = self.total_frames  # shrinks when the listener stops early
                audible = player.frames_played
                if audible >= total:
                    break
                session_t = audible / self.sample_rate
                self._guide_listener(audible)
                self.state = self._estimate(time.monotonic())
                self._record_seconds(audible)
                lead_target = min(total, audible + int(LEAD_S * self.sample_rate))
                while self.rendered_frames < lead_target and player.free_frames() >= BLOCK_FRAMES:
                    n = min(BLOCK_FRAMES, total - self.rendered_frames)
                    block = self._render_block(n, session_t)
                    player.write(block)
                    wav.write(block)
                    if self.rendered_frames >= total:
                        player.end_of_stream()
                if self.on_progress:
                    self.on_progress(session_t, self.state, self.bar_at(audible))
                player.check_alive()
                if player.error is not None:
                    self.record.add_event(session_t, "audio_error", str(player.error))
                    raise player.error
                await asyncio.sleep(0.02)
        finally:
            self.record.add_event(player.frames_played / self.sample_rate, "audio",
                                  f"{player.underruns} underruns (buffer ran dry), {player.device_underflows} device "
                                  f"underflows, in {player.callbacks} audio callbacks")
            sensor_task.cancel()
            await asyncio.gather(sensor_task, return_exceptions=True)
            self.finish()

    async def _consume_sensor(self) -> None:
        async for packet in self.source.packets():
            self.handle_packet(packet, packet.t_arrival - self.t0_host)

    def finish(self) -> None:
        """Write the MIDI file and the final record. Runs once, also after an error, so nothing is lost."""
        if self.finished:
            return
        self.finished = True
        self.record.complete = not self.stopped_early and self.rendered_frames >= self.total_frames
        self.record.save()  # the record first: on a full disk the database still gets everything
        heard = truncate_messages(self.midi_messages, self.rendered_frames)
        tempo_changes = [(frame, bpm) for frame, bpm in self.tempo_changes if frame < self.rendered_frames]
        write_midi(self.out_dir / "session.mid", heard, self.sample_rate, tempo_changes, end_frame=self.rendered_frames)


def _round(value: float | None, digits: int) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(value, digits)
