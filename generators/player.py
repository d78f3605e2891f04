"""LivePlayer: streams rendered blocks to the sound card through a sounddevice callback fed from a
preallocated ring buffer."""
from __future__ import annotations

import threading
import time

import numpy as np


class AudioDeviceError(RuntimeError):
    """No usable audio output; ``str()`` is one line naming the problem and the fix."""


GAIN_GLIDE_S = 0.05  # volume changes and pause fades take this long at most


class LivePlayer:
    """Single producer (``write``) / single consumer (the PortAudio callback) stereo float32 player.

    ``buffer_s`` seconds of audio can be queued. The callback copies from the ring buffer into PortAudio's
    buffer without allocating. Playback starts once ``prefill_s`` seconds are queued (or the stream is
    ended), so a slow first bar cannot starve it; when the buffer runs dry after that it plays silence and
    counts an underrun. ``frames_played`` counts the rendered frames the callback has handed to the device.
    """

    def __init__(self, sample_rate: int = 48000, channels: int = 2, buffer_s: float = 3.0,
                 blocksize: int = 0, device: int | str | None = None, prefill_s: float = 0.5) -> None:
        self.sample_rate = sample_rate
        self.channels = channels
        self.blocksize = blocksize
        self.device = device
        self.capacity = int(buffer_s * sample_rate)
        self.prefill_frames = min(int(prefill_s * sample_rate), self.capacity)
        self._playing = False
        self._paused = False
        self.gain = 1.0  # target set by set_gain
        self._gain_now = 1.0
        self._max_step = 1.0 / (GAIN_GLIDE_S * sample_rate)  # gain change per frame at most
        self._steps = np.arange(1, 8193, dtype=np.float32)  # preallocated: no allocation in the callback
        self._ramp = np.empty(8192, dtype=np.float32)
        self._ring = np.zeros((self.capacity, channels), dtype=np.float32)
        self._written = 0  # frames ever written (producer-owned)
        self._read = 0  # frames ever read (callback-owned)
        self._space = threading.Event()
        self.underruns = 0  # the buffer ran dry: the producer fell behind
        self.device_underflows = 0  # PortAudio reported an underflow (the audio system itself was late)
        self.callbacks = 0
        self.error: Exception | None = None
        self._watch = (0, time.monotonic())  # (callbacks, host time) when the callback count last moved
        self._stream = None
        self._ending = False

    @property
    def frames_played(self) -> int:
        return self._read

    def free_frames(self) -> int:
        """Frames ``write`` accepts now without blocking."""
        return self.capacity - (self._written - self._read)

    def open(self) -> "LivePlayer":
        """Open and start the output stream; raises AudioDeviceError when there is no usable output device."""
        try:
            import sounddevice  # noqa: PLC0415 - PortAudio is loaded only when playing live
        except OSError as error:
            raise AudioDeviceError(f"no audio output device: PortAudio is missing ({error}); "
                                   "use --offline to render files") from None
        try:
            if not any(d["max_output_channels"] > 0 for d in sounddevice.query_devices()):
                raise AudioDeviceError("no audio output device: PortAudio lists none; use --offline to render files")
            self._stream = sounddevice.OutputStream(
                samplerate=self.sample_rate, channels=self.channels, dtype="float32", blocksize=self.blocksize,
                device=self.device, callback=self._callback, finished_callback=self._finished)
            self._stream.start()
        except (sounddevice.PortAudioError, OSError, ValueError) as error:
            self._stream = None
            raise AudioDeviceError(f"no audio output device: {str(error).splitlines()[0]}; "
                                   "use --offline to render files") from None
        return self

    def write(self, block: np.ndarray, timeout_s: float | None = None) -> None:
        """Queue ``block`` float (frames, channels); blocks while the ring buffer is full."""
        block = np.asarray(block, dtype=np.float32)
        if block.ndim != 2 or block.shape[1] != self.channels:
            raise ValueError(f"LivePlayer.write expects (frames, {self.channels}) blocks, got {block.shape}")
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        done = 0
        while done < len(block):
            free = self.free_frames()
            if free == 0:
                if self.error is not None:
                    raise self.error
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimeoutError("LivePlayer.write: the audio device stopped consuming audio")
                self._space.clear()  # cleared before re-checking, so a wake-up from the callback is never lost
                if self.free_frames() == 0:
                    self._space.wait(0.05)
                continue
            n = min(free, len(block) - done)
            start = self._written % self.capacity
            first = min(n, self.capacity - start)
            self._ring[start:start + first] = block[done:done + first]
            self._ring[:n - first] = block[done + first:done + n]
            self._written += n  # published last, so the callback never reads unwritten frames
            done += n

    def pause(self) -> None:
        """Fade out over ``GAIN_GLIDE_S`` and then hold: nothing is consumed, so ``frames_played`` (the music
        clock) stands still and the queued music resumes where it stopped. Not an underrun."""
        self._paused = True

    def resume(self) -> None:
        self._paused = False

    def set_gain(self, gain: float) -> None:
        """The listener's volume 0-1 (linear), applied at the output, so it is heard within one callback;
        it glides at most 1 per ``GAIN_GLIDE_S`` so a change never clicks."""
        if not 0 <= gain <= 1:
            raise ValueError(f"gain {gain} out of range: use 0-1")
        self.gain = gain

    def _callback(self, outdata, frames, time_info, status) -> None:
        self.callbacks += 1
        if status.output_underflow:
            self.device_underflows += 1
        available = self._written - self._read
        if not self._playing:
            self._playing = available >= self.prefill_frames or self._ending
        if not self._playing or (self._paused and self._gain_now == 0.0):
            outdata[:] = 0.0
            return
        n = min(frames, available)
        start = self._read % self.capacity
        first = min(n, self.capacity - start)
        outdata[:first] = self._ring[start:start + first]
        outdata[first:n] = self._ring[:n - first]
        outdata[n:] = 0.0
        if n < frames and not self._ending:
            self.underruns += 1
        self._read += n
        self._apply_gain(outdata, frames)
        self._space.set()

    def _apply_gain(self, outdata, frames: int) -> None:
        """Ramp from the current gain toward the target (0 while paused) across this callback, slope-limited."""
        target = 0.0 if self._paused else self.gain
        if target == self._gain_now == 1.0:
            return
        step = min(max(target - self._gain_now, -frames * self._max_step), frames * self._max_step)
        if frames <= len(self._steps):
            ramp = self._ramp[:frames]
            np.multiply(self._steps[:frames], step / frames, out=ramp)
            ramp += self._gain_now
            outdata *= ramp[:, None]
        else:
            outdata *= self._gain_now + step
        self._gain_now = float(self._gain_now + step)
        if abs(self._gain_now - target) < 1e-6:
            self._gain_now = target

    def _finished(self) -> None:
        if not self._ending:
            self.error = AudioDeviceError("audio output stopped unexpectedly; use --offline to render files")

    def check_alive(self, stall_s: float = 4.0) -> None:
        """Set ``error`` when the device, having started, has not called back for ``stall_s`` seconds: the sound
        server or device vanished without PortAudio ending the stream (a killed JACK server does this).
        Before its first callback a device may take a while to start on a busy machine: no verdict then."""
        now = time.monotonic()
        if self.callbacks != self._watch[0]:
            self._watch = (self.callbacks, now)
        elif (self._stream is not None and self.error is None and self.callbacks > 0
              and now - self._watch[1] > stall_s):
            self.error = AudioDeviceError(f"the audio device stopped calling back for {stall_s:g} s (sound server or "
                                          "device gone); use --offline to render files")

    def end_of_stream(self) -> None:
        """Nothing more will be written: the buffer running empty from now on is the end, not an underrun."""
        self._ending = True

    def drain(self, timeout_s: float = 10.0) -> None:
        """Wait until everything written has been played (or ``timeout_s`` passes); see ``end_of_stream``."""
        self.end_of_stream()
        deadline = time.monotonic() + timeout_s
        while self._read < self._written and time.monotonic() < deadline and self.error is None:
            time.sleep(0.01)

    def close(self) -> None:
        self._ending = True
        if self._stream is not None:
            if self.error is not None and not self._stream.active:
                # The device vanished under PortAudio (a killed JACK server): stop(), close() and PortAudio's
                # exit handler would wait forever for a callback that never comes, so the stream is abandoned
                # and the operating system reclaims it when the process exits.
                import atexit

                import sounddevice

                atexit.unregister(sounddevice._exit_handler)
            else:
                self._stream.stop()
                self._stream.close()
            self._stream = None

    def __enter__(self) -> "LivePlayer":
        return self.open()

    def __exit__(self, *exc_info) -> None:
        self.close()
