"""Reusable widgets: text, buttons, panels, form fields, the breath guide, line charts, the RR tachogram and the coherence meter."""
from __future__ import annotations

import math

from kivy.graphics import Color, Ellipse, Line, RoundedRectangle, SmoothLine
from kivy.properties import BooleanProperty, ListProperty, NumericProperty, ObjectProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.button import Button
from kivy.uix.label import Label
from kivy.uix.spinner import Spinner
from kivy.uix.textinput import TextInput
from kivy.uix.widget import Widget

from wellness_app.ui import theme


class Text(Label):
    """A wrapping label in the app's type scale; height follows its text so it stacks in scroll views."""

    def __init__(self, text: str = "", *, size: float = theme.FONT_BODY, colour=theme.TEXT, bold: bool = False,
                 halign: str = "left", fit_height: bool = True, **kwargs) -> None:
        super().__init__(text=text, font_size=size, color=colour, bold=bold, halign=halign, valign="middle",
                         markup=True, **kwargs)
        self.bind(width=lambda *_: setattr(self, "text_size", (self.width, None)))
        if fit_height:
            self.size_hint_y = None
            self.bind(texture_size=self._fit)
            self._fit()

    def _fit(self, *_):
        self.height = self.texture_size[1] + theme.GAP / 2 if self.text else 0


class Panel(BoxLayout):
    """A rounded surface that groups related content."""

    surface = ListProperty(theme.SURFACE)

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("orientation", "vertical")
        kwargs.setdefault("padding", theme.PAD)
        kwargs.setdefault("spacing", theme.GAP)
        super().__init__(**kwargs)
        with self.canvas.before:
            self._colour = Color(*self.surface)
            self._rect = RoundedRectangle(radius=[theme.RADIUS])
        self.bind(pos=self._redraw, size=self._redraw, surface=self._redraw)

    def _redraw(self, *_):
        self._colour.rgba = self.surface
        self._rect.pos, self._rect.size = self.pos, self.size


class CalmButton(Button):
    """A flat, rounded, large-touch-target button. ``primary`` buttons use the accent colour; a label longer than
    the button wraps onto a second line (phone widths) instead of running past its edges."""

    primary = BooleanProperty(False)

    def __init__(self, text: str = "", *, primary: bool = False, **kwargs) -> None:
        kwargs.setdefault("size_hint_y", None)
        kwargs.setdefault("height", theme.BUTTON_HEIGHT)
        super().__init__(text=text, font_size=theme.FONT_BODY, background_normal="", background_down="",
                         background_color=(0, 0, 0, 0), halign="center", valign="middle", **kwargs)
        self.bind(width=lambda *_: setattr(self, "text_size", (max(self.width - theme.GAP, 1), None)))
        self.primary = primary
        with self.canvas.before:
            self._colour = Color()
            self._rect = RoundedRectangle(radius=[theme.RADIUS])
        self.bind(pos=self._redraw, size=self._redraw, state=self._redraw, primary=self._redraw,
                  disabled=self._redraw)
        self._redraw()

    def _redraw(self, *_):
        base = theme.ACCENT if self.primary else theme.SURFACE_RAISED
        self.color = theme.BACKGROUND if self.primary else theme.TEXT
        factor = 0.8 if self.state == "down" else 1.0
        alpha = 0.4 if self.disabled else 1.0
        self._colour.rgba = (base[0] * factor, base[1] * factor, base[2] * factor, alpha)
        self._rect.pos, self._rect.size = self.pos, self.size


def field(hint: str, **kwargs) -> TextInput:
    """A one-line text field in the app's style; ``hint`` shows while it is empty."""
    return TextInput(hint_text=hint, multiline=False, font_size=theme.FONT_BODY, size_hint_y=None,
                     height=theme.BUTTON_HEIGHT, background_color=theme.SURFACE_RAISED, foreground_color=theme.TEXT,
                     hint_text_color=theme.TEXT_MUTED, cursor_color=theme.ACCENT, padding=[theme.GAP] * 2,
                     write_tab=False, **kwargs)


def choice(value: str, values) -> Spinner:
    """A drop-down in the app's style showing ``value`` of ``values``."""
    return Spinner(text=value, values=list(values), font_size=theme.FONT_BODY, size_hint_y=None,
                   height=theme.BUTTON_HEIGHT, background_normal="", background_color=theme.SURFACE_RAISED,
                   color=theme.TEXT)


def captioned(caption: str, widget) -> BoxLayout:
    """``widget`` with a small caption above it, so a filled field still says what it holds."""
    box = BoxLayout(orientation="vertical", size_hint_y=None)
    box.bind(minimum_height=box.setter("height"))
    box.add_widget(Text(caption, size=theme.FONT_SMALL, colour=theme.TEXT_MUTED))
    box.add_widget(widget)
    return box


def smooth_step(x: float) -> float:
    """Raised-cosine ease 0->1 over x in 0-1: zero slope at both ends, like a breath."""
    x = min(max(x, 0.0), 1.0)
    return 0.5 - 0.5 * math.cos(math.pi * x)


def guide_expansion(phase: float, inhale_fraction: float) -> float:
    """How full the breath guide is, 0 (empty lungs) to 1, at breath ``phase`` 0-1.

    Rises over the inhale (phase < inhale_fraction) and falls over the exhale, continuous at both joins.
    """
    if phase < inhale_fraction:
        return smooth_step(phase / inhale_fraction)
    return 1.0 - smooth_step((phase - inhale_fraction) / (1.0 - inhale_fraction))


class BreathGuide(Widget):
    """A circle that grows on the inhale and shrinks on the exhale.

    ``phase`` (0-1, 0 = start of inhale) and ``inhale_fraction`` come from the bar being heard, the same
    numbers that shape the music's swell, so the picture and the sound breathe together.
    """

    phase = NumericProperty(0.0)
    inhale_fraction = NumericProperty(0.4)
    caption = StringProperty("")
    dim = NumericProperty(1.0)  # 1 = full brightness; eyes-closed mode lowers it

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        with self.canvas:
            self._halo_colour = Color(*theme.GRID)
            self._halo = SmoothLine(width=1.6)
            self._fill_colour = Color(*theme.INHALE)
            self._fill = Ellipse()
            self._edge = SmoothLine(width=1.0)  # anti-aliases the disc without multisampling
        self._label = Label(font_size=theme.FONT_LARGE, bold=True, size_hint=(None, None))
        self.add_widget(self._label)
        self.bind(pos=self._redraw, size=self._redraw, phase=self._redraw, inhale_fraction=self._redraw,
                  dim=self._redraw)

    @property
    def inhaling(self) -> bool:
        return self.phase < self.inhale_fraction

    @property
    def expansion(self) -> float:
        return guide_expansion(self.phase, self.inhale_fraction)

    def _redraw(self, *_):
        caption_h = theme.FONT_LARGE * 1.6  # the words sit under the circle, readable at any circle size
        cx, cy = self.center_x, self.y + caption_h + (self.height - caption_h) / 2
        r_max = 0.47 * min(self.width, self.height - caption_h)
        r_min = 0.36 * r_max
        r = r_min + (r_max - r_min) * self.expansion
        colour = theme.INHALE if self.inhaling else theme.EXHALE
        self._halo_colour.rgba = (*theme.GRID[:3], self.dim)
        self._halo.circle = (cx, cy, max(r_max, 1))
        self._fill_colour.rgba = (colour[0] * self.dim, colour[1] * self.dim, colour[2] * self.dim, 1)
        self._fill.pos, self._fill.size = (cx - r, cy - r), (2 * r, 2 * r)
        self._edge.circle = (cx, cy, max(r, 1))
        self._label.text = self.caption or ("breathe in" if self.inhaling else "breathe out")
        self._label.color = (*colour[:3], self.dim)
        self._label.size = (self.width, caption_h)
        self._label.pos = (self.x, self.y)


class LineChart(Widget):
    """Time-series chart: several coloured series over a shared x axis, with light grid lines and labels.

    ``series`` is a list of (points, rgba) where points is a list of (x, y); ``None`` y values break the
    line (unknown values are gaps, never interpolated). Axes fit the data unless ``y_range`` is given.
    """

    series = ListProperty([])
    y_range = ObjectProperty(None, allownone=True)  # (low, high) or None to fit
    x_range = ObjectProperty(None, allownone=True)
    y_unit = StringProperty("")
    title = StringProperty("")

    GRID_LINES = 4  # horizontal grid lines on a tall chart; a short one (phone) gets 2

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._labels = [Label(font_size=theme.FONT_SMALL, color=theme.TEXT_MUTED, size_hint=(None, None))
                        for _ in range(self.GRID_LINES + 1)]
        self._title = Label(font_size=theme.FONT_SMALL, color=theme.TEXT, size_hint=(None, None), halign="left")
        for label in (*self._labels, self._title):
            self.add_widget(label)
        self.bind(pos=self.redraw, size=self.redraw, series=self.redraw, y_range=self.redraw,
                  x_range=self.redraw, title=self.redraw)

    @property
    def point_count(self) -> int:
        return sum(sum(1 for _, y in points if y is not None) for points, _ in self.series)

    def _ranges(self):
        xs = [x for points, _ in self.series for x, y in points if y is not None]
        ys = [y for points, _ in self.series for x, y in points if y is not None]
        if self.x_range:
            x0, x1 = self.x_range
        else:
            x0, x1 = (min(xs), max(xs)) if xs else (0.0, 1.0)
        if self.y_range:
            y0, y1 = self.y_range
        elif ys:
            y0, y1 = min(ys), max(ys)
            margin = max((y1 - y0) * 0.15, 1.0)
            y0, y1 = y0 - margin, y1 + margin
        else:
            y0, y1 = 0.0, 1.0
        return x0, max(x1, x0 + 1e-6), y0, max(y1, y0 + 1e-6)

    def redraw(self, *_):
        self.canvas.before.clear()
        left = self.x + theme.FONT_SMALL * 3.2
        bottom = self.y + theme.GAP
        top = self.top - theme.FONT_SMALL * 1.8
        width, height = max(self.right - left - theme.GAP, 1), max(top - bottom, 1)
        x0, x1, y0, y1 = self._ranges()
        lines = self.GRID_LINES if height > theme.FONT_SMALL * 7 else 2
        with self.canvas.before:
            Color(*theme.GRID)
            for i, label in enumerate(self._labels):
                label.opacity = 1 if i <= lines else 0
                if i > lines:
                    continue
                y = bottom + height * i / lines
                Line(points=[left, y, left + width, y], width=1)
                _set_label(label, f"{y0 + (y1 - y0) * i / lines:.{0 if y1 - y0 >= 2 * lines else 1}f}")
                label.right, label.center_y = left - theme.GAP / 2, y
            for points, colour in self.series:
                Color(*colour)
                for run in _runs(points):
                    flat = []
                    for x, y in run:
                        flat += [left + width * (x - x0) / (x1 - x0), bottom + height * (min(max(y, y0), y1) - y0) / (y1 - y0)]
                    if len(flat) >= 4:
                        SmoothLine(points=flat, width=1.8)
                    elif flat:
                        Ellipse(pos=(flat[0] - 3, flat[1] - 3), size=(6, 6))
        _set_label(self._title, self.title + (f"  ({self.y_unit})" if self.y_unit else ""))
        self._title.x, self._title.top = left, self.top


def _set_label(label: Label, text: str) -> None:
    """Size a label to its text, rendering the text only when it changed (text rendering dominates chart cost)."""
    if label.text != text or not label.texture:
        label.text = text
        label.texture_update()
        label.size = label.texture_size


def _runs(points):
    """Split points at None values so unknown stretches stay gaps."""
    run = []
    for x, y in points:
        if y is None:
            if run:
                yield run
            run = []
        else:
            run.append((x, y))
    if run:
        yield run


class Tachogram(LineChart):
    """RR intervals (ms) against beat time (s) over the last ``window_s`` seconds: the heart's rhythm, beat by beat."""

    window_s = NumericProperty(60.0)

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("title", "RR tachogram, last 60 s")
        kwargs.setdefault("y_unit", "ms")
        super().__init__(**kwargs)

    def show_beats(self, beats: list[dict], now_s: float) -> None:
        """``beats`` are session-record rows (t_s, rr_ms, after_gap); a gap breaks the line."""
        points = []
        for beat in beats:
            if beat["t_s"] < now_s - self.window_s:
                continue
            if beat.get("after_gap") and points:
                points.append((beat["t_s"], None))
            points.append((beat["t_s"], beat["rr_ms"]))
        self.x_range = (now_s - self.window_s, now_s)
        self.series = [(points, theme.HEART)]


class CoherenceMeter(Widget):
    """A horizontal gauge for the coherence score; ``None`` shows "--" (too few clean beats to say).

    ``maximum`` is the top of the scale; the definition text names the formula so the number means something.
    With ``size_hint_y=None`` its height follows the wrapped definition.
    """

    value = ObjectProperty(None, allownone=True)
    maximum = NumericProperty(1.0)
    definition = StringProperty("")

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._number = Label(font_size=theme.FONT_LARGE, color=theme.TEXT, bold=True, size_hint=(None, None))
        self._caption = Label(font_size=theme.FONT_SMALL, color=theme.TEXT_MUTED, size_hint=(None, None),
                              halign="left", valign="top")
        self.add_widget(self._number)
        self.add_widget(self._caption)
        self.bind(pos=self._redraw, size=self._redraw, value=self._redraw, maximum=self._redraw,
                  definition=self._redraw)

    @property
    def shown_text(self) -> str:
        return "--" if self.value is None else f"{self.value:.2f}"

    def _redraw(self, *_):
        self.canvas.before.clear()
        bar_h = theme.GAP * 1.2
        bar_y = self.top - theme.FONT_LARGE * 1.6
        left = self.x + theme.FONT_LARGE * 3.5
        width = max(self.right - left, 1)
        fill = 0.0 if self.value is None else min(max(self.value / self.maximum, 0.0), 1.0)
        with self.canvas.before:
            Color(*theme.GRID)
            RoundedRectangle(pos=(left, bar_y), size=(width, bar_h), radius=[bar_h / 2])
            Color(*theme.INHALE)
            if fill > 0:
                RoundedRectangle(pos=(left, bar_y), size=(max(width * fill, bar_h), bar_h), radius=[bar_h / 2])
        _set_label(self._number, self.shown_text)
        self._number.x, self._number.center_y = self.x, bar_y + bar_h / 2
        self._caption.text_size = (self.width, None)
        self._caption.text = self.definition
        self._caption.texture_update()
        self._caption.size = self._caption.texture_size
        self._caption.x, self._caption.top = self.x, bar_y - theme.GAP / 2
        needed = theme.FONT_LARGE * 1.6 + theme.GAP / 2 + self._caption.height
        if self.size_hint_y is None and abs(self.height - needed) > 1:
            self.height = needed


class Stat(BoxLayout):
    """A big number with a caption beneath: "62" / "heart rate, bpm"."""

    value = StringProperty("--")
    caption = StringProperty("")
    HEIGHT = theme.FONT_NUMBER * 1.25 + theme.FONT_SMALL * 2.6

    def __init__(self, caption: str, *, colour=theme.TEXT, **kwargs) -> None:
        super().__init__(orientation="vertical", size_hint_y=None, height=self.HEIGHT, **kwargs)
        self._value = Label(font_size=theme.FONT_NUMBER, color=colour, bold=True, size_hint_y=None,
                            height=theme.FONT_NUMBER * 1.25)
        self._caption = Label(font_size=theme.FONT_SMALL, color=theme.TEXT_MUTED, size_hint_y=None,
                              height=theme.FONT_SMALL * 2.6, halign="center", valign="top")
        self._caption.bind(size=lambda w, s: setattr(w, "text_size", s))
        self.add_widget(self._value)
        self.add_widget(self._caption)
        self.bind(value=lambda *_: setattr(self._value, "text", self.value),
                  caption=lambda *_: setattr(self._caption, "text", self.caption))
        self.value, self.caption = "--", caption
        self._value.text, self._caption.text = self.value, caption


class Header(BoxLayout):
    """A screen's title row: an optional back button and the title in large type."""

    def __init__(self, title: str, *, on_back=None, **kwargs) -> None:
        super().__init__(orientation="horizontal", size_hint_y=None, height=theme.BUTTON_HEIGHT,
                         spacing=theme.GAP, **kwargs)
        if on_back is not None:
            back = CalmButton("< Back", size_hint_x=None, width=theme.BUTTON_HEIGHT * 2)
            back.bind(on_release=lambda *_: on_back())
            self.add_widget(back)
        self.title = Label(text=title, font_size=theme.FONT_TITLE, color=theme.TEXT, bold=True, halign="left",
                           valign="middle", shorten=True, shorten_from="right")
        self.title.bind(size=lambda w, s: setattr(w, "text_size", s))
        self.add_widget(self.title)


def scrolling_column(**kwargs):
    """A vertical stack inside a ScrollView; returns (scroll_view, column). Add children to the column."""
    from kivy.uix.scrollview import ScrollView

    column = BoxLayout(orientation="vertical", size_hint_y=None, spacing=theme.GAP, **kwargs)
    column.bind(minimum_height=column.setter("height"))
    view = ScrollView(do_scroll_x=False, bar_width=theme.GAP / 2)
    view.add_widget(column)
    return view, column
