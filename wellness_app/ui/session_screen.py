"""Session screen: the breath guide in phase with the music, live heart and breath, and the controls; the charts
and the technical lines (tempo, mode, the coherence formula) behind Details on a phone."""
from __future__ import annotations

import asyncio

from kivy.clock import Clock
from kivy.graphics import Color, Rectangle
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.floatlayout import FloatLayout
from kivy.uix.label import Label
from kivy.uix.screenmanager import Screen

from wellness_app.record import sure_breathing
from wellness_app.ui import theme
from wellness_app.ui.names import UNSURE, breathing_text, phase_title
from wellness_app.ui.widgets import (BreathGuide, CalmButton, CalmSlider, CoherenceMeter, LineChart, Stat, Tachogram,
                                     Text, scrolling_column)

CHART_REFRESH_S = 0.5  # charts change slowly; redrawing them twice a second keeps frames cheap
COHERENCE_DEFINITION = "coherence, HeartMath-style: peak/(total-peak) power, last 64 s (full gauge: 3)"
COHERENCE_PLAIN = "coherence: how evenly your heart rate rises and falls with your breath"
# seconds of beats each figure needs before it can be shown; until then it reads "measuring…" with the time left
READY_AFTER_S = {"heart rate": 10.0, "breathing": 40.0, "coherence": 64.0}
MEASURING = "measuring…"
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


def measuring_hint(what: str, elapsed_s: float) -> str | None:
    """"about 30 s" while ``what`` (a READY_AFTER_S key) is still being measured, None once it should be known."""
    left = READY_AFTER_S[what] - elapsed_s
    if left <= -30:
        return None  # well past the time it needs: a missing value now means no clear signal, shown as --
    return f"about {max(5, 5 * round(left / 5)):.0f} s" if left > 0 else "almost ready"


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
    NAME = "session"

    def __init__(self, app, **kwargs) -> None:
        super().__init__(name=self.NAME, **kwargs)
        self.app = app
        self._frame_event = None
        self._chart_event = None
        self._ending = False
        self.last_view = None  # the SessionView drawn in the latest frame
        self._known: set[str] = set()  # the figures shown with a value so far this session
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
        self.side.bind(minimum_height=lambda side, h: side.size_hint_y is None and setattr(side, "height", h))
        self.stats = BoxLayout(spacing=theme.GAP, size_hint_y=None, height=Stat.HEIGHT)
        self.hr_stat = Stat("heart rate, beats/min", colour=theme.HEART)
        self.breath_stat = Stat("breathing, breaths/min", colour=theme.BREATH)
        self.stats.add_widget(self.hr_stat)
        self.stats.add_widget(self.breath_stat)
        self.side.add_widget(self.stats)
        self.coherence = CoherenceMeter(size_hint_y=None, definition=COHERENCE_PLAIN, maximum=COHERENCE_GAUGE_FULL)
        self.side.add_widget(self.coherence)
        self.tachogram = Tachogram()
        self.breath_chart = LineChart(title="Breathing", y_unit="breaths/min", x_unit="min", x_scale=60.0,
                                      legend=[("you", theme.BREATH), ("guide", theme.INHALE)])
        self.charts = (self.tachogram, self.breath_chart)
        # a phone with Details: the guide above a scrolling column of the numbers and charts
        self.side_scroll, self.side_column = scrolling_column()
        self.body.add_widget(self.guide)
        self.body.add_widget(self.side)
        root.add_widget(self.body)

        self.volume = CalmSlider(min=0, max=1, value=app.settings.get("volume", 1.0))
        self.volume.bind(value=lambda _s, v: app.runner and app.runner.set_volume(v))
        self.volume_row = BoxLayout(spacing=theme.GAP, size_hint_y=None, height=theme.BUTTON_HEIGHT)
        self.volume_row.add_widget(Text("Volume", size=theme.FONT_SMALL, colour=theme.TEXT_MUTED, fit_height=False,
                                        size_hint_x=None, width=theme.BUTTON_HEIGHT * 1.2))
        self.volume_row.add_widget(self.volume)
        self.pause_button = CalmButton("Pause")
        self.pause_button.bind(on_release=lambda *_: self.toggle_pause())
        self.stop_button = CalmButton("Stop")
        self.stop_button.bind(on_release=lambda *_: self.stop())
        self.eyes_button = CalmButton("Eyes closed")
        self.eyes_button.bind(on_release=lambda *_: self.eyes_closed(True))
        self.details_button = CalmButton("Details")
        self.details_button.bind(on_release=lambda *_: app.set_details(not app.show_details))
        self.buttons = BoxLayout(spacing=theme.GAP, size_hint_y=None, height=theme.BUTTON_HEIGHT)
        self.controls = BoxLayout(orientation="vertical", size_hint_y=None, spacing=theme.GAP)
        self.controls.bind(minimum_height=self.controls.setter("height"))
        root.add_widget(self.controls)
        self.layer.add_widget(root)
        self.add_widget(self.layer)
        self.bind(size=self.arrange)

    @property
    def portrait(self) -> bool:
        return self.height > self.width

    def arrange(self, *_):
        """Side by side on a landscape window, charts beside the guide; on a portrait phone the guide fills the
        screen above the numbers, and the charts (and the technical lines) come with Details."""
        portrait, details = self.portrait, self.app.show_details
        charts = details or not portrait
        stacked = portrait and details
        self.body.orientation = "vertical" if portrait else "horizontal"
        for widget in (self.stats, self.coherence, *self.charts):
            if widget.parent is not None:
                widget.parent.remove_widget(widget)
        self.body.clear_widgets()
        self.body.add_widget(self.guide)
        self.body.add_widget(self.side_scroll if stacked else self.side)
        column = self.side_column if stacked else self.side
        for widget in (self.stats, self.coherence, *(self.charts if charts else ())):
            column.add_widget(widget)
        for chart in self.charts:
            chart.size_hint_y, chart.height = (None, theme.ROW_HEIGHT * 2.4) if stacked else (1, chart.height)
        if stacked:
            self.guide.size_hint = (1, 0.42)
            self.side_scroll.size_hint = (1, 0.58)
        elif portrait:
            self.guide.size_hint = (1, 1)
            self.side.size_hint = (1, None)
            self.side.height = self.side.minimum_height
        else:
            self.guide.size_hint, self.side.size_hint = (0.48, 1), (0.52, 1)
        self.coherence.definition = COHERENCE_DEFINITION if details else COHERENCE_PLAIN
        self.details_button.selected = details
        self.hr_stat.caption = "heart rate, beats/min" + (" (mean, last 10 s)" if details else "")
        self.controls.clear_widgets()
        for widget in (self.volume_row, self.details_button):
            if widget.parent is not None:
                widget.parent.remove_widget(widget)
        self.buttons.clear_widgets()
        buttons = (self.pause_button, self.stop_button, self.eyes_button)
        if portrait:  # the volume and Details on one line, the session's buttons on the next
            self.details_button.size_hint_x, self.details_button.width = None, theme.BUTTON_HEIGHT * 1.8
            self.volume_row.add_widget(self.details_button)
            self.controls.add_widget(self.volume_row)
            rows = buttons
        else:
            self.details_button.size_hint_x = 1
            rows = (self.volume_row, *buttons, self.details_button)
        for widget in rows:
            self.buttons.add_widget(widget)
        self.controls.add_widget(self.buttons)
        self.update_frame()

    def details_changed(self) -> None:
        self.arrange()
        self.update_charts()

    def on_enter(self, *_):
        self._ending = False
        self._known = set()
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
        elapsed = view.elapsed_s
        guide = _number(view.guide_rate_bpm, 1)
        lost = view.signal_lost
        self._show_stat(self.hr_stat, _number(state.heart_rate_bpm), "heart rate", elapsed, "", lost)
        breathing = breathing_text(state.breathing_rate_bpm, state.breathing_confidence)
        self._show_stat(self.breath_stat, breathing, "breathing", elapsed,
                        f"guide {guide}" if view.guide_rate_bpm is not None else "", lost)
        self.coherence.value = state.coherence
        hint = self._measuring("coherence", state.coherence is None, elapsed, lost)
        _set(self.coherence, "waiting", f"{MEASURING} {hint}" if hint else "")
        status = {"paused": "Paused · ", "stopping": "Ending gently · "}.get(view.status, "")
        protocol = runner.engine.policy.protocol
        _set(self.phase_label, "text", f"{status}{phase_title(protocol, view.protocol_phase)}")
        _set(self.time_label, "text", f"{clock_text(view.time_left_s)} left")
        details = self.app.show_details
        if view.tempo_bpm is not None and details:
            _set(self.music_label, "text", f"music {view.tempo_bpm:.0f} beats/min, {view.music_mode} · "
                                           f"guide {view.guide_rate_bpm:.1f} breaths/min · {view.mode} mode")
        elif not details:
            _set(self.music_label, "text", "")
        # the sensor's line is kept even when empty, so the breath guide never jumps as the signal goes and returns
        sensor_line = SIGNAL_LOST_NOTICE if view.signal_lost else SIGNAL_BACK_NOTICE if view.signal_back else " "
        notices = [*view.notices, *(runner.detail_notices if details else ())]
        _set(self.notice, "text", "\n".join([*notices, sensor_line]))
        if runner.done and not self._ending:
            self._ending = True
            self.app.show_summary()

    def _measuring(self, what: str, unknown: bool, elapsed_s: float, signal_lost: bool) -> str | None:
        """The time ``what`` still needs while it has never been known in this session; None once it has been
        (a value missing later, e.g. while the strap is lost, is shown as -- rather than as measuring)."""
        if not unknown:
            self._known.add(what)
            return None
        return None if signal_lost or what in self._known else measuring_hint(what, elapsed_s)

    def _show_stat(self, stat: Stat, value: str, what: str, elapsed_s: float, note: str, signal_lost: bool) -> None:
        """A figure, or "measuring…" and the time it still needs while it cannot be known yet (an unsure breathing
        rate too, until a sure one has been shown)."""
        hint = self._measuring(what, value in ("--", UNSURE), elapsed_s, signal_lost)
        _set(stat, "value", MEASURING if hint else value)
        _set(stat, "note", hint or note)

    def update_charts(self, _dt=0.0) -> None:
        runner = self.app.runner
        if runner is None or self.tachogram.parent is None:
            return
        self.tachogram.show_beats(runner.beats(), runner.session_t())
        rows = runner.seconds()[-600:]
        self.breath_chart.series = [
            ([(r["t_s"], r["guide_rate_bpm"]) for r in rows], theme.INHALE),
            ([(r["t_s"], sure_breathing(r)) for r in rows], theme.BREATH),
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
