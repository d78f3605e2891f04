"""Session screen: the breath guide in phase with the music, live heart and breath, charts and the controls."""
from __future__ import annotations

import asyncio

from kivy.clock import Clock
from kivy.graphics import Color, Rectangle
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.floatlayout import FloatLayout
from kivy.uix.label import Label
from kivy.uix.screenmanager import Screen
from kivy.uix.slider import Slider

from wellness_app.ui import theme
from wellness_app.ui.widgets import BreathGuide, CalmButton, CoherenceMeter, LineChart, Stat, Tachogram, Text

CHART_REFRESH_S = 0.5  # charts change slowly; redrawing them twice a second keeps frames cheap
COHERENCE_DEFINITION = "coherence, HeartMath-style: peak/(total-peak) power, last 64 s (full gauge: 3)"
COHERENCE_GAUGE_FULL = 3.0  # ratio at which the gauge is full: a well-paced resonance breather reaches it
EYES_CLOSED_DIM = 0.2  # bright enough to follow through half-closed eyes, dark enough to rest them

# a link drop and a strap off the skin look the same from here: say what is true of both
SIGNAL_LOST_NOTICE = "Sensor signal lost: the music carries on as planned until your strap is heard again."
SIGNAL_BACK_NOTICE = "Your strap is heard again."


def clock_text(seconds: float) -> str:
    seconds = max(int(round(seconds)), 0)
    return f"{seconds // 60}:{seconds % 60:02d}"


def _number(value: float | None, digits: int = 0) -> str:
    return "--" if value is None else f"{value:.{digits}f}"


class EyesClosedOverlay(FloatLayout):
    """Dims the whole screen to a faint breath guide; any touch wakes it."""

    def __init__(self, on_wake, **kwargs) -> None:
        super().__init__(**kwargs)
        self.on_wake = on_wake
        with self.canvas.before:
            Color(0, 0, 0, 1)
            self._shade = Rectangle()
        self.bind(pos=lambda *_: setattr(self._shade, "pos", self.pos),
                  size=lambda *_: setattr(self._shade, "size", self.size))
        self.guide = BreathGuide(size_hint=(0.6, 0.6), pos_hint={"center_x": 0.5, "center_y": 0.55},
                                 dim=EYES_CLOSED_DIM)
        self.add_widget(self.guide)
        self.add_widget(Label(text="Eyes closed: the music guides you. Touch to wake.", font_size=theme.FONT_SMALL,
                              color=(*theme.TEXT_MUTED[:3], 0.35), size_hint=(1, None), height=theme.BUTTON_HEIGHT,
                              pos_hint={"x": 0, "y": 0.02}))

    def on_touch_down(self, touch):
        self.on_wake()
        return True


class SessionScreen(Screen):
    def __init__(self, app, **kwargs) -> None:
        super().__init__(name="session", **kwargs)
        self.app = app
        self._frame_event = None
        self._chart_event = None
        self._ending = False
        self.last_view = None  # the SessionView drawn in the latest frame
        self.overlay: EyesClosedOverlay | None = None
        self.layer = FloatLayout()
        root = BoxLayout(orientation="vertical", padding=theme.PAD, spacing=theme.GAP)

        top = BoxLayout(size_hint_y=None, height=theme.BUTTON_HEIGHT, spacing=theme.GAP)
        self.phase_label = Text("", size=theme.FONT_LARGE, bold=True, fit_height=False)
        self.time_label = Text("", size=theme.FONT_LARGE, halign="right", fit_height=False, size_hint_x=0.45)
        top.add_widget(self.phase_label)
        top.add_widget(self.time_label)
        root.add_widget(top)
        self.music_label = Text("", size=theme.FONT_SMALL, colour=theme.TEXT_MUTED)
        root.add_widget(self.music_label)
        self.notice = Text("", size=theme.FONT_SMALL, colour=theme.NOTICE)
        root.add_widget(self.notice)

        self.body = BoxLayout(spacing=theme.GAP)
        self.guide = BreathGuide(size_hint=(1, 1))
        self.side = BoxLayout(orientation="vertical", spacing=theme.GAP)
        stats = BoxLayout(spacing=theme.GAP, size_hint_y=None, height=Stat.HEIGHT)
        self.hr_stat = Stat("heart rate, beats/min\n(mean of the last 10 s)", colour=theme.HEART)
        self.breath_stat = Stat("breathing, breaths/min", colour=theme.BREATH)
        stats.add_widget(self.hr_stat)
        stats.add_widget(self.breath_stat)
        self.side.add_widget(stats)
        self.coherence = CoherenceMeter(size_hint_y=None, definition=COHERENCE_DEFINITION,
                                        maximum=COHERENCE_GAUGE_FULL)
        self.side.add_widget(self.coherence)
        self.tachogram = Tachogram(size_hint_y=0.35)
        self.breath_chart = LineChart(size_hint_y=0.35, title="breathing (lavender) vs guide (green)",
                                      y_unit="breaths/min")
        self.side.add_widget(self.tachogram)
        self.side.add_widget(self.breath_chart)
        self.body.add_widget(self.guide)
        self.body.add_widget(self.side)
        root.add_widget(self.body)

        self.controls = BoxLayout(size_hint_y=None, height=theme.BUTTON_HEIGHT, spacing=theme.GAP)
        volume_row = BoxLayout(spacing=theme.GAP)
        volume_row.add_widget(Label(text="Volume", font_size=theme.FONT_SMALL, color=theme.TEXT_MUTED,
                                    size_hint_x=None, width=theme.BUTTON_HEIGHT * 1.3))
        self.volume = Slider(min=0, max=1, value=app.settings.get("volume", 1.0),
                             cursor_size=(theme.BUTTON_HEIGHT * 0.5,) * 2)
        self.volume.bind(value=lambda _s, v: app.runner and app.runner.set_volume(v))
        volume_row.add_widget(self.volume)
        buttons = BoxLayout(spacing=theme.GAP)
        self.pause_button = CalmButton("Pause")
        self.pause_button.bind(on_release=lambda *_: self.toggle_pause())
        self.stop_button = CalmButton("Stop")
        self.stop_button.bind(on_release=lambda *_: self.stop())
        self.eyes_button = CalmButton("Eyes closed")
        self.eyes_button.bind(on_release=lambda *_: self.eyes_closed(True))
        for button in (self.pause_button, self.stop_button, self.eyes_button):
            button.size_hint_y = 1
            buttons.add_widget(button)
        self.controls.add_widget(volume_row)
        self.controls.add_widget(buttons)
        root.add_widget(self.controls)
        self.layer.add_widget(root)
        self.add_widget(self.layer)
        self.bind(size=self._arrange)

    def _arrange(self, *_):
        """Side by side on a landscape window; guide above the numbers on a portrait phone."""
        portrait = self.height > self.width
        self.body.orientation = "vertical" if portrait else "horizontal"
        self.guide.size_hint = (1, 0.36) if portrait else (0.48, 1)
        self.side.size_hint = (1, 0.64) if portrait else (0.52, 1)
        # a phone has room for one chart: the tachogram; breathing vs target stays in the breathing caption
        if portrait and self.breath_chart.parent is self.side:
            self.side.remove_widget(self.breath_chart)
        elif not portrait and self.breath_chart.parent is None:
            self.side.add_widget(self.breath_chart)
        self.controls.orientation = "vertical" if portrait else "horizontal"
        self.controls.height = theme.BUTTON_HEIGHT * 2 + theme.GAP if portrait else theme.BUTTON_HEIGHT

    def on_enter(self, *_):
        self._ending = False
        self.pause_button.text = "Pause"
        self.stop_button.disabled = False
        self._frame_event = Clock.schedule_interval(self.update_frame, 0)
        self._chart_event = Clock.schedule_interval(self.update_charts, CHART_REFRESH_S)

    def on_leave(self, *_):
        for event in (self._frame_event, self._chart_event):
            if event is not None:
                event.cancel()
        self.eyes_closed(False)

    def update_frame(self, _dt=0.0) -> None:
        """Every frame: the guide's phase at the audible frame, the numbers, and the end of the session."""
        runner = self.app.runner
        if runner is None:
            return
        view = self.last_view = runner.view()
        if view.guide_phase is not None:
            for guide in (self.guide, *( [self.overlay.guide] if self.overlay else [])):
                guide.inhale_fraction = view.inhale_fraction
                guide.phase = view.guide_phase
        state = view.state
        _set(self.hr_stat, "value", _number(state.heart_rate_bpm))
        breathing = _number(state.breathing_rate_bpm, 1)
        target = _number(view.guide_rate_bpm, 1)
        _set(self.breath_stat, "value", breathing)
        _set(self.breath_stat, "caption", f"breathing, breaths/min · guide {target}")
        self.coherence.value = state.coherence
        status = {"paused": "Paused · ", "stopping": "Ending gently · "}.get(view.status, "")
        _set(self.phase_label, "text", f"{status}{(view.protocol_phase or 'starting').replace('-', ' ')}")
        _set(self.time_label, "text", f"{clock_text(view.time_left_s)} left")
        if view.tempo_bpm is not None:
            _set(self.music_label, "text", f"music {view.tempo_bpm:.0f} beats/min, {view.music_mode} · "
                                           f"guide {view.guide_rate_bpm:.1f} breaths/min · {view.mode} mode")
        # the sensor's line is kept even when empty, so the breath guide never jumps as the signal goes and returns
        sensor_line = SIGNAL_LOST_NOTICE if view.signal_lost else SIGNAL_BACK_NOTICE if view.signal_back else " "
        _set(self.notice, "text", "\n".join([*view.notices, sensor_line]))
        if runner.done and not self._ending:
            self._ending = True
            self.app.show_summary()

    def update_charts(self, _dt=0.0) -> None:
        runner = self.app.runner
        if runner is None:
            return
        self.tachogram.show_beats(runner.beats(), runner.session_t())
        rows = runner.seconds()[-600:]
        self.breath_chart.series = [
            ([(r["t_s"], r["guide_rate_bpm"]) for r in rows], theme.INHALE),
            ([(r["t_s"], r["breathing_rate_bpm"]) for r in rows], theme.BREATH),
        ]

    def toggle_pause(self) -> None:
        runner = self.app.runner
        if runner.status == "paused":
            runner.resume()
            self.pause_button.text = "Pause"
        else:
            runner.pause()
            self.pause_button.text = "Resume"

    def stop(self) -> None:
        self.stop_button.disabled = True
        asyncio.get_event_loop().create_task(self.app.runner.stop())

    def eyes_closed(self, closed: bool) -> None:
        if closed and self.overlay is None:
            self.overlay = EyesClosedOverlay(on_wake=lambda: self.eyes_closed(False))
            self.layer.add_widget(self.overlay)
        elif not closed and self.overlay is not None:
            self.layer.remove_widget(self.overlay)
            self.overlay = None


def _set(widget, name: str, value) -> None:
    """Assign only on change: a label re-renders its texture on every assignment."""
    if getattr(widget, name) != value:
        setattr(widget, name, value)
