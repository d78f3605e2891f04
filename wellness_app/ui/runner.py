"""Runs a session for the app on the app's asyncio loop and gives the screens one consistent view of it per frame.

Three ways to run, chosen in this order (each is honest about what the listener gets):

- ``live``: music through the sound card (``generators.player.LivePlayer``) while the sensor streams on host
  time; the engine's own ``run_live`` on the app's loop.
- ``files``: no sound card could be opened. The same ``run_live`` runs in real time against a
  ``WallClockPlayer`` that consumes frames at the wall-clock rate and plays nothing; the music is still
  written to session.wav / session.mid, and the breath guide on screen still guides.
- ``accelerated`` (virtual strap only; for demos, tests and benchmarks): the engine's offline path
  (``step_offline``, music clock = simulated time, virtual listener advanced on it) is stepped block by block
  on the app's loop, paced to ``speed`` x real time. Nothing is played; the WAV is written; every value on screen is the one the
  engine computed at that point of simulated time.

The breath guide shown is always the guide of the bar at the *audible* frame (live/files: the player's
``frames_played``; accelerated: the last frame rendered), i.e. the same phase that shapes the music's swell.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path

from biosignals.types import PhysioState
from wellness_app.storage import data_dir

SIGNAL_LOST_AFTER_S = 5.0  # no beat for this long -> "sensor signal lost" (music continues on plan)
SIGNAL_BACK_SHOWN_S = 5.0  # after a lost signal returns, say so for this long
STOP_FADE_S = 2.5  # a stop pressed by the listener fades the music out over this long


def sessions_dir() -> Path:
    """Where the app saves sessions: ``wellness_app.storage.data_dir() / "sessions"``."""
    return data_dir() / "sessions"


def new_session_dir(protocol: str, now: dt.datetime | None = None) -> Path:
    stamp = (now or dt.datetime.now()).strftime("%Y%m%d-%H%M%S")
    return sessions_dir() / f"{stamp}-{protocol}"


class WallClockPlayer:
    """Stands in for the sound card when none can be opened: consumes frames at the wall-clock rate and
    discards them (session.wav keeps them). Same surface as ``LivePlayer`` as the engine uses it.

    ``underruns`` counts how often the clock passed the frames written: a late engine, i.e. what would
    have been an audible dropout on a real device.
    """

    def __init__(self, sample_rate: int, buffer_s: float = 2.0) -> None:
        self.sample_rate = sample_rate
        self.capacity = int(buffer_s * sample_rate)
        self.frames_written = 0
        self.underruns = 0
        self.device_underflows = 0  # there is no device
        self.callbacks = 0  # clock readings, the stand-in for audio callbacks
        self.error: Exception | None = None
        self._ending = False
        self._played_before_pause = 0
        self._resumed_at: float | None = None

    def open(self) -> None:
        self._resumed_at = time.monotonic()

    def close(self) -> None:
        self.pause()

    @property
    def frames_played(self) -> int:
        self.callbacks += 1
        played = self._played_before_pause
        if self._resumed_at is not None:
            played += int((time.monotonic() - self._resumed_at) * self.sample_rate)
        if played > self.frames_written:
            if self.frames_written and not self._ending:
                self.underruns += 1
            # the device would have played silence: the clock waits for the music, as a real stream does
            self._played_before_pause, played = self.frames_written, self.frames_written
            if self._resumed_at is not None:
                self._resumed_at = time.monotonic()
        return played

    def free_frames(self) -> int:
        return self.capacity - (self.frames_written - self.frames_played)

    def write(self, block) -> None:
        self.frames_written += len(block)

    def end_of_stream(self) -> None:
        """Everything has been written: the clock running past it now is the end, not an underrun."""
        self._ending = True

    def check_alive(self) -> None:
        """The wall clock cannot vanish the way a sound device can: nothing to check."""

    def pause(self) -> None:
        self._played_before_pause = self.frames_played
        self._resumed_at = None

    def resume(self) -> None:
        if self._resumed_at is None:
            self._resumed_at = time.monotonic()


@dataclass
class SessionView:
    """Everything the session screen shows, taken at one instant. Unknown values are None."""

    mode: str  # "live", "files" or "accelerated"
    status: str  # "starting", "running", "paused", "stopping", "finished", "failed"
    elapsed_s: float
    total_s: float
    state: PhysioState
    guide_phase: float | None = None  # 0-1 in the guided breath, 0 = start of inhale
    inhale_fraction: float | None = None
    guide_rate_bpm: float | None = None
    tempo_bpm: float | None = None
    music_mode: str | None = None
    protocol_phase: str | None = None
    signal_lost: bool = False
    signal_back: bool = False  # the strap was lost and has been heard again within SIGNAL_BACK_SHOWN_S
    notices: list[str] = field(default_factory=list)

    @property
    def time_left_s(self) -> float:
        return max(self.total_s - self.elapsed_s, 0.0)


class SessionRunner:
    """One session for the app: start it, then read ``view()`` every frame; pause/resume/stop/volume on request."""

    def __init__(self, engine, *, mode: str, player=None, speed: float = 1.0, notices: list[str] | None = None,
                 detail_notices: list[str] | None = None) -> None:
        if mode not in ("live", "files", "accelerated"):
            raise ValueError(f"session mode {mode!r} is unknown: use live, files or accelerated")
        self.engine = engine
        self.mode = mode
        self.player = player
        self.speed = speed
        self.notices = list(notices or [])  # in plain words, always shown
        self.detail_notices = list(detail_notices or [])  # the technical why (device errors, file paths): Details
        self.status = "starting"
        self.volume = 1.0
        self.error: Exception | None = None
        self._task: asyncio.Task | None = None
        self._snapshot: tuple[float, PhysioState, object, int] | None = None  # accelerated: t, state, bar, frame
        self._resume = asyncio.Event()
        self._resume.set()
        self._stop = asyncio.Event()
        self._paused_wall = 0.0
        self._start_wall = 0.0
        self._was_lost = False
        self._back_at_s: float | None = None  # session time the lost signal was heard again
        engine.record.on_notice = self._recording_trouble

    def _recording_trouble(self, message: str) -> None:
        """The record tells this once when the database or an output file refuses a write; the session plays on."""
        self.notices.append("This device's storage refused part of the session, so not all of it is being saved. "
                            "The music goes on.")
        self.detail_notices.append(message)

    # -- building -----------------------------------------------------------------------------------
    @classmethod
    def create(cls, options, *, accelerated_speed: float | None = None, device=None) -> "SessionRunner":
        """Build the engine from ``wellness_app.session.SessionOptions`` and pick the mode (module docstring).

        Raises ``SessionSetupError`` (one line) for bad options.
        """
        from wellness_app.session import build_engine

        engine, notices = build_engine(options)
        if accelerated_speed is not None:
            return cls(engine, mode="accelerated", speed=accelerated_speed, notices=notices)
        from generators.player import AudioDeviceError, LivePlayer

        try:
            player = LivePlayer(sample_rate=engine.sample_rate, device=device)
            player.open()
            return cls(engine, mode="live", player=player, notices=notices)
        except AudioDeviceError as error:
            reason = str(error).split(";")[0]
        notices.append("No sound output was found, so the music cannot be heard; the breath guide still guides "
                       "you and the music is saved with the session.")
        player = WallClockPlayer(engine.sample_rate)
        player.open()
        return cls(engine, mode="files", player=player, notices=notices,
                   detail_notices=[f"Sound output: {reason}. Music saved to {engine.out_dir / 'session.wav'} "
                                   "(files mode, real time)."])

    # -- control ------------------------------------------------------------------------------------
    def start(self) -> asyncio.Task:
        """Schedule the session on the running loop; returns its task (done when the session has ended)."""
        self._start_wall = time.monotonic()
        self.status = "running"
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self._task

    async def _run(self) -> None:
        from wellness_app.session import run_live

        try:
            if self.mode == "accelerated":
                await self._run_accelerated()
            else:
                await run_live(self.engine, self.player)
            self.status = "finished"
        except asyncio.CancelledError:
            self.status = "finished"
        except Exception as error:  # shown to the user on the session screen; the record is saved by finish()
            self.error = error
            self.status = "failed"
            self.notices.append(f"The session ended early: {error}")
        finally:
            if self.player is not None:
                self.player.close()

    async def _run_accelerated(self) -> None:
        """The offline engine stepped on the app's loop, one block per step, paced to ``speed`` x real time."""
        from generators.output import WavWriter

        engine = self.engine
        with WavWriter(engine.out_dir / "session.wav", engine.sample_rate) as wav:
            while True:
                if self._stop.is_set():
                    engine.request_stop(0.0)
                if not self._resume.is_set():
                    paused_at = time.monotonic()
                    await self._resume.wait()
                    self._paused_wall += time.monotonic() - paused_at
                if not engine.step_offline(wav, blocks=1):
                    break
                t = engine.rendered_frames / engine.sample_rate
                self._snapshot = (t, engine.state, engine.sounding_bar(engine.rendered_frames - 1),
                                  engine.rendered_frames - 1)
                ahead = (self._start_wall + self._paused_wall + t / self.speed) - time.monotonic()
                await asyncio.sleep(max(ahead, 0.0))

    def pause(self) -> None:
        """Hold the music clock (the sensor keeps streaming, so the estimates stay current)."""
        if self.status != "running":
            return
        if self.mode == "accelerated":
            self._resume.clear()
        else:
            self.player.pause()
        self.status = "paused"

    def resume(self) -> None:
        if self.status != "paused":
            return
        if self.mode == "accelerated":
            self._resume.set()
        else:
            self.player.resume()
        self.status = "running"

    def set_volume(self, volume: float) -> None:
        """Listener's volume 0-1 (linear). Live: applied at the output (``LivePlayer.set_gain``), heard within
        one audio callback, and the saved WAV keeps the music as composed. Without a sound card it shapes the
        saved music through the master stage."""
        self.volume = min(max(volume, 0.0), 1.0)
        if self.mode == "live":
            self.player.set_gain(self.volume)
        else:
            self.engine.master.set_volume(self.volume)

    async def stop(self) -> None:
        """Fade out and end the session; everything so far is saved (the record is marked incomplete)."""
        if self._task is None or self._task.done():
            return
        self.resume()
        self.status = "stopping"
        if self.mode == "accelerated":
            self._stop.set()
            self._resume.set()
        else:
            self.engine.request_stop(STOP_FADE_S)
        await asyncio.gather(self._task, return_exceptions=True)

    async def abort(self) -> None:
        """End now, without the fade (the app is closing); everything so far is saved."""
        if self._task is None or self._task.done():
            return
        self._stop.set()
        self._resume.set()
        if self.mode != "accelerated":
            self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    @property
    def done(self) -> bool:
        return self._task is not None and self._task.done()

    # -- reading --------------------------------------------------------------------------------------
    def view(self) -> SessionView:
        engine = self.engine
        sample_rate = engine.sample_rate
        if self.mode == "accelerated":
            if self._snapshot is None:
                return SessionView(self.mode, self.status, 0.0, engine.duration_s, PhysioState(t=0.0),
                                   notices=self.notices)
            _, state, bar, frame = self._snapshot
            now_s = state.t
        else:
            frame = self.player.frames_played
            bar = engine.sounding_bar(frame)
            state = engine.state
            now_s = self.session_t()
        view = SessionView(self.mode, self.status, min(frame / sample_rate, engine.duration_s), engine.duration_s,
                           state, notices=self.notices)
        if bar is not None:
            controls = bar.decision.controls
            view.guide_phase = bar.guide_phase(frame)
            view.inhale_fraction = controls.inhale_fraction
            view.guide_rate_bpm = controls.breath_rate_bpm
            view.tempo_bpm = controls.tempo_bpm
            view.music_mode = controls.mode
            view.protocol_phase = bar.decision.phase_name
        view.signal_lost = self._signal_lost(now_s)
        if self._was_lost and not view.signal_lost:
            self._back_at_s = now_s
        self._was_lost = view.signal_lost
        view.signal_back = self._back_at_s is not None and 0 <= now_s - self._back_at_s < SIGNAL_BACK_SHOWN_S
        return view

    def beats(self, last: int = 200) -> list[dict]:
        """The most recent beats of the record (t_s, rr_ms, after_gap), oldest first."""
        return self.engine.record.beats[-last:]

    def seconds(self) -> list[dict]:
        """The per-second record rows so far."""
        return self.engine.record.seconds[:]

    def session_t(self) -> float:
        """'Now' on the beats' time axis (``beats()[i]['t_s']``)."""
        if self.mode == "accelerated":
            return self._snapshot[1].t if self._snapshot else 0.0
        if not self.engine.t0_host:
            return 0.0  # the sensor is still connecting: the session's clock has not started
        return time.monotonic() - self.engine.t0_host

    def _signal_lost(self, now_s: float) -> bool:
        """Nothing from the strap for ``SIGNAL_LOST_AFTER_S``: no beat and no heart rate of its own (an HR-only
        strap sends no beats), the same freshness rule that turns the heart rate shown into --."""
        engine = self.engine
        heard = [engine.record.beats[-1]["t_s"]] if engine.record.beats else []
        if engine.decoder.last_reported_hr is not None:
            heard.append(engine.decoder.last_reported_hr[0] - engine.t0_host)
        started = now_s > SIGNAL_LOST_AFTER_S
        return started and (not heard or now_s - max(heard) > SIGNAL_LOST_AFTER_S)
