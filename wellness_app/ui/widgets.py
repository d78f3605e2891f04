"""Reusable widgets: text, buttons, panels, form fields, the breath guide, line charts, the RR tachogram and the coherence meter."""
from __future__ import annotations

import math
import re

from kivy.graphics import Color, Ellipse, Line, Rectangle, RoundedRectangle, SmoothLine, Triangle
from kivy.properties import BooleanProperty, ListProperty, NumericProperty, ObjectProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.button import Button
from kivy.uix.gridlayout import GridLayout
from kivy.uix.label import Label
from kivy.uix.slider import Slider
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
    """A flat, rounded, large-touch-target button. ``primary`` is the screen's main action, the only thing in the
    accent colour; ``selected`` marks the chosen one of several (a minute chip, a tab) with an outline. A label
    longer than the button wraps between words; a single word too wide for it (a phone's narrow column) makes the
    type smaller instead of breaking it. ``fit_height``: the button grows with a label that wraps to more lines."""

    primary = BooleanProperty(False)
    selected = BooleanProperty(False)

    def __init__(self, text: str = "", *, primary: bool = False, selected: bool = False, fit_height: bool = False,
                 halign: str = "center", **kwargs) -> None:
        kwargs.setdefault("size_hint_y", None)
        kwargs.setdefault("height", theme.BUTTON_HEIGHT)
        kwargs.setdefault("font_size", theme.FONT_BODY)
        super().__init__(text=text, background_normal="", background_down="", background_disabled_normal="",
                         background_color=(0, 0, 0, 0), halign=halign, valign="middle", markup=True, **kwargs)
        self.body_size = self.font_size
        self.min_height = self.height
        self.fit_height = fit_height
        self.primary, self.selected = primary, selected
        with self.canvas.before:
            self._colour = Color()
            self._rect = RoundedRectangle(radius=[theme.RADIUS])
            self._outline_colour = Color(0, 0, 0, 0)
            self._outline = SmoothLine(width=1.5)
        self.bind(pos=self._redraw, size=self._redraw, state=self._redraw, primary=self._redraw,
                  selected=self._redraw, disabled=self._redraw)
        self.bind(width=self._fit_text, text=self._fit_text)
        self.bind(texture_size=self._fit_to_text)
        self._redraw()

    def _fit_text(self, *_):
        width = max(self.width - 2 * theme.GAP, 1)
        self.text_size = (width, None)
        self.font_size = fitting_font_size(self.text, width, self.body_size, markup=True)

    def _fit_to_text(self, *_):
        if self.fit_height:
            self.height = max(self.min_height, self.texture_size[1] + 2 * theme.GAP)

    def _redraw(self, *_):
        base = theme.ACCENT if self.primary else theme.SURFACE_RAISED
        self.color = theme.BACKGROUND if self.primary else theme.TEXT
        self.disabled_color = (*self.color[:3], 0.7)
        factor = 0.8 if self.state == "down" else 1.0
        alpha = 0.4 if self.disabled else 1.0
        self._colour.rgba = (base[0] * factor, base[1] * factor, base[2] * factor, alpha)
        self._rect.pos, self._rect.size = self.pos, self.size
        outlined = self.selected and not self.primary
        self._outline_colour.rgba = theme.TEXT
        if outlined:
            self._outline.rounded_rectangle = (self.x + 1, self.y + 1, max(self.width - 2, 1),
                                               max(self.height - 2, 1), theme.RADIUS)
        else:
            self._outline.points = []  # not drawn at all: a transparent line still costs a software GL its pixels


def fitting_font_size(text: str, width: float, size: float, *, markup: bool = False,
                      smallest: float = theme.FONT_SMALL * 0.8) -> float:
    """The largest font size up to ``size`` (px) at which every word of ``text`` fits ``width`` px, so wrapping
    happens between words only; ``smallest`` at the least."""
    from kivy.core.text import Label as CoreLabel

    words = (re.sub(r"\[/?[a-z]+[^\]]*\]", "", text) if markup else text).split()
    if not words:
        return size
    longest = max(words, key=len)
    while size > smallest:
        if CoreLabel(text=longest, font_size=size, bold=True).get_extents(longest)[0] <= width:
            break
        size -= 1
    return size


class ButtonRow(GridLayout):
    """Buttons side by side; on a narrow screen on several even lines (none narrower than ``min_width`` px)."""

    def __init__(self, buttons, *, min_width: float = theme.BUTTON_HEIGHT * 1.7, **kwargs) -> None:
        super().__init__(cols=len(buttons), size_hint_y=None, spacing=theme.GAP, **kwargs)
        self.bind(minimum_height=self.setter("height"))
        self.min_width = min_width
        for button in buttons:
            self.add_widget(button)
        self.bind(width=self._arrange)

    def _arrange(self, *_):
        count = len(self.children)
        fit = max(int((self.width + theme.GAP) // (self.min_width + theme.GAP)), 1)
        lines = math.ceil(count / fit)
        self.cols = math.ceil(count / lines)  # as even as the lines can be: 4 buttons are 2 + 2, not 3 + 1


def positive_number(text: str, from_undo: bool) -> str:
    """A TextInput filter for numbers that cannot be negative: digits and one decimal point, nothing else."""
    return "".join(c for c in text if c.isdigit() or c == ".")


def field(hint: str, **kwargs) -> TextInput:
    """A one-line text field in the app's style; ``hint`` shows while it is empty. ``input_filter="float"`` is
    taken as a number that cannot be negative (a minus sign is refused as typed)."""
    if kwargs.get("input_filter") == "float":
        kwargs["input_filter"] = positive_number
    return TextInput(hint_text=hint, multiline=False, font_size=theme.FONT_BODY, size_hint_y=None,
                     height=theme.BUTTON_HEIGHT, background_color=theme.SURFACE_RAISED, foreground_color=theme.TEXT,
                     hint_text_color=theme.TEXT_MUTED, cursor_color=theme.ACCENT, padding=[theme.GAP] * 2,
                     write_tab=False, **kwargs)


class ChoiceOption(Button):
    """One line of a drop-down, in the app's colours."""

    def __init__(self, **kwargs) -> None:
        super().__init__(background_normal="", background_down="", background_color=theme.SURFACE_RAISED,
                         color=theme.TEXT, font_size=theme.FONT_BODY, size_hint_y=None, height=theme.BUTTON_HEIGHT,
                         halign="left", valign="middle", **kwargs)
        with self.canvas.before:
            Color(*theme.GRID)
            self._rule = Line(width=1)
        self.bind(pos=self._redraw, size=self._redraw)

    def _redraw(self, *_):
        self._rule.points = [self.x, self.y, self.right, self.y]
        self.text_size = (max(self.width - 2 * theme.GAP, 1), None)  # a long title wraps, as in the drop-down


class Choice(Spinner):
    """A drop-down in the app's style: a rounded raised surface with a small arrow; its list in the same colours.

    ``labels`` maps a value to the words shown for it (e.g. a protocol's title); ``value`` is the chosen value."""

    value = StringProperty("")

    def __init__(self, value: str, values, *, labels: dict | None = None, **kwargs) -> None:
        self.labels = dict(labels or {})
        self._by_label = {self.labels.get(v, v): v for v in values}
        super().__init__(text=self.labels.get(value, value), values=list(self._by_label), font_size=theme.FONT_BODY,
                         size_hint_y=None, height=theme.BUTTON_HEIGHT, background_normal="", background_down="",
                         background_color=(0, 0, 0, 0), color=theme.TEXT, option_cls=ChoiceOption,
                         halign="left", valign="middle", **kwargs)
        self.value = value
        with self.canvas.before:
            Color(*theme.SURFACE_RAISED)
            self._rect = RoundedRectangle(radius=[theme.RADIUS])
            Color(*theme.TEXT_MUTED)
            self._arrow = Triangle()
        self.bind(pos=self._redraw, size=self._redraw)
        self.bind(text=lambda _s, text: setattr(self, "value", self._by_label.get(text, text)))

    def _redraw(self, *_):
        self._rect.pos, self._rect.size = self.pos, self.size
        self.text_size = (max(self.width - 4 * theme.GAP, 1), None)  # a long title wraps onto a second line
        self.padding = (theme.GAP, 0)
        s, cx, cy = theme.GAP * 0.6, self.right - 1.6 * theme.GAP, self.center_y
        self._arrow.points = [cx - s, cy + s / 2, cx + s, cy + s / 2, cx, cy - s / 2]

    def choose(self, value: str) -> None:
        self.text = self.labels.get(value, value)


def choice(value: str, values, **kwargs) -> Choice:
    """A drop-down in the app's style showing ``value`` of ``values``."""
    return Choice(value, values, **kwargs)


class CalmSlider(Slider):
    """A slider drawn in the app's colours: a muted track, the filled part and a round knob."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.canvas.clear()  # Kivy's default images are a grey bar and a white knob
        with self.canvas:
            Color(*theme.GRID)
            self._track = RoundedRectangle(radius=[theme.GAP / 4])
            Color(*theme.EXHALE)
            self._filled = RoundedRectangle(radius=[theme.GAP / 4])
            Color(*theme.TEXT)
            self._knob = Ellipse()
        self.bind(pos=self._redraw, size=self._redraw, value=self._redraw, min=self._redraw, max=self._redraw)

    def _redraw(self, *_):
        h, knob = theme.GAP / 2, theme.BUTTON_HEIGHT * 0.4
        left, width = self.x + knob / 2, max(self.width - knob, 1)
        y = self.center_y - h / 2
        x = left + width * self.value_normalized
        self._track.pos, self._track.size = (left, y), (width, h)
        self._filled.pos, self._filled.size = (left, y), (max(x - left, 0), h)
        self._knob.pos, self._knob.size = (x - knob / 2, self.center_y - knob / 2), (knob, knob)


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


def nice_ticks(low: float, high: float, most: int) -> list[float]:
    """Round tick values (steps of 1, 2 or 5 x 10^k) covering ``low``-``high``, at most ``most`` of them."""
    span = max(high - low, 1e-9)
    for exponent in range(math.floor(math.log10(span / max(most, 1))) - 1, 12):
        for mantissa in (1, 2, 2.5, 5):
            step = mantissa * 10 ** exponent
            first = math.ceil(low / step - 1e-9) * step
            ticks = [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]
            if len(ticks) <= most:
                return [round(t, 10) for t in ticks]
    return [low, high]


def tick_text(value: float) -> str:
    """A tick value as few digits as it needs: 1, 1.5, 0.25."""
    return f"{value:.2f}".rstrip("0").rstrip(".") if value % 1 else f"{value:.0f}"


class LineChart(Widget):
    """Time-series chart: several coloured series over a shared x axis, with round ticks on both axes, light grid
    lines and a small legend.

    ``series`` is a list of (points, rgba) where points is a list of (x, y); ``None`` y values break the
    line (unknown values are gaps, never interpolated). Axes fit the data unless ``y_range``/``x_range`` is given.
    ``x_scale`` divides x for its tick labels (60: seconds shown as minutes) and ``x_unit`` names them;
    ``legend`` is a list of (name, rgba) drawn under the title.
    """

    series = ListProperty([])
    y_range = ObjectProperty(None, allownone=True)  # (low, high) or None to fit
    x_range = ObjectProperty(None, allownone=True)
    y_unit = StringProperty("")
    x_unit = StringProperty("")
    x_scale = NumericProperty(1.0)
    title = StringProperty("")
    legend = ListProperty([])

    MAX_TICKS = 6

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._y_labels = [self._small_label() for _ in range(self.MAX_TICKS)]
        self._x_labels = [self._small_label() for _ in range(self.MAX_TICKS)]
        self._title = Label(font_size=theme.FONT_SMALL, color=theme.TEXT, bold=True, size_hint=(None, None))
        self._legend_labels = [Label(font_size=theme.FONT_SMALL, color=theme.TEXT_MUTED, size_hint=(None, None))
                               for _ in range(3)]
        for label in (*self._y_labels, *self._x_labels, self._title, *self._legend_labels):
            self.add_widget(label)
        from kivy.clock import Clock

        # drawn once per frame, after the layout has settled (a chart in a scrolling column is sized in passes)
        trigger = Clock.create_trigger(self.redraw, -1)
        self.bind(pos=trigger, size=trigger, series=trigger, y_range=trigger, x_range=trigger, title=trigger,
                  legend=trigger)

    @staticmethod
    def _small_label() -> Label:
        return Label(font_size=theme.FONT_SMALL, color=theme.TEXT_MUTED, size_hint=(None, None))

    @property
    def point_count(self) -> int:
        return sum(sum(1 for _, y in points if y is not None) for points, _ in self.series)

    @property
    def x_tick_texts(self) -> list[str]:
        return [label.text for label in self._x_labels if label.opacity]

    def _ranges(self):
        xs = [x for points, _ in self.series for x, y in points if y is not None]
        ys = [y for points, _ in self.series for x, y in points if y is not None]
        if self.x_range:
            x0, x1 = self.x_range
        else:
            x0, x1 = (min(xs), max(xs)) if xs else (0.0, 1.0)
            x1 = max(x1, x0 + (self.x_scale or 1.0))  # at least one unit shown (a minute, a day): round ticks
        if self.y_range:
            y0, y1 = self.y_range
        elif ys:
            y0, y1 = min(ys), max(ys)
            margin = max((y1 - y0) * 0.15, 1.0)
            y0, y1 = y0 - margin, y1 + margin
        else:
            y0, y1 = 0.0, 1.0
        x0, x1, y0, y1 = float(x0), float(x1), float(y0), float(y1)  # numpy floats do not convert to Kivy numbers
        return x0, max(x1, x0 + 1e-6), y0, max(y1, y0 + 1e-6)

    def redraw(self, *_):
        self.canvas.before.clear()
        line_h = theme.FONT_SMALL * 1.3
        _set_label(self._title, self.title + (f" ({self.y_unit})" if self.y_unit else ""))
        self._title.x, self._title.top = self.x, self.top
        legend_top = self._place_legend(self._title.right + theme.GAP, self.top)
        top = legend_top - line_h * 0.6
        bottom = self.y + line_h * 1.7  # room for the time ticks under the lowest value's label
        x0, x1, y0, y1 = self._ranges()
        height = max(top - bottom, 1)
        y_ticks = nice_ticks(y0, y1, max(min(int(height / (line_h * 1.6)) + 1, self.MAX_TICKS), 2))
        y_texts = [tick_text(t) for t in y_ticks]
        for label, text in zip(self._y_labels, y_texts):
            _set_label(label, text)
        left = self.x + max((label.width for label in self._y_labels[:len(y_ticks)]), default=0) + theme.GAP / 2
        width = max(self.right - left - theme.GAP, 1)
        scale = self.x_scale or 1.0
        x_ticks = nice_ticks(x0 / scale, x1 / scale, max(min(int(width / (theme.FONT_SMALL * 4)), self.MAX_TICKS), 2))
        with self.canvas.before:
            Color(*theme.GRID)
            for i, label in enumerate(self._y_labels):
                label.opacity = 1 if i < len(y_ticks) else 0
                if i >= len(y_ticks):
                    continue
                y = bottom + height * (y_ticks[i] - y0) / (y1 - y0)
                Line(points=[left, y, left + width, y], width=1)
                label.right, label.center_y = left - theme.GAP / 2, y
            unit = f" {self.x_unit}" if self.x_unit else ""
            placed = []
            for i, label in enumerate(self._x_labels):
                label.opacity = 1 if i < len(x_ticks) else 0
                if i >= len(x_ticks):
                    continue
                x = left + width * (x_ticks[i] * scale - x0) / (x1 - x0)
                last = i == len(x_ticks) - 1
                _set_label(label, tick_text(x_ticks[i]) + ((unit.removesuffix("s") if x_ticks[i] == 1 else unit)
                                                           if last else ""))
                label.center_x, label.y = x, self.y
                label.x = min(max(label.x, left), self.right - label.width)
                Line(points=[x, bottom, x, bottom - theme.GAP / 2], width=1)
                placed.append(label)
            right_edge = math.inf  # from the right (the tick with the unit): drop a label that would touch the next
            for label in reversed(placed):
                if label.right > right_edge - theme.GAP / 2:
                    label.opacity = 0
                else:
                    right_edge = label.x
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
            for (name, colour), label in zip(self.legend, self._legend_labels):
                Color(*colour)
                Rectangle(pos=(label.x - theme.GAP * 1.6, label.center_y - 1.5), size=(theme.GAP * 1.2, 3))

    def _place_legend(self, x: float, top: float) -> float:
        """Legend entries after the title while they fit, else on the next line; returns the lowest top used."""
        line_h = self._title.height
        lowest = top - line_h
        for i, label in enumerate(self._legend_labels):
            if i >= len(self.legend):
                label.opacity = 0
                _set_label(label, "")
                continue
            label.opacity = 1
            _set_label(label, self.legend[i][0])
            swatch = theme.GAP * 2
            if x + swatch + label.width > self.right:
                x, top = self.x, top - line_h
                lowest = top - line_h
            label.x, label.top = x + swatch, top
            x = label.right + theme.GAP
        return lowest


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
        kwargs.setdefault("title", "Beat-to-beat intervals")
        kwargs.setdefault("y_unit", "ms")
        kwargs.setdefault("x_unit", "min")
        kwargs.setdefault("x_scale", 60.0)
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
        self.x_range = (max(now_s - self.window_s, 0.0), max(now_s, self.window_s))  # the first minute: 0-1 min
        self.series = [(points, theme.HEART)]


class CoherenceMeter(Widget):
    """A horizontal gauge for the coherence score; ``None`` shows ``waiting`` (e.g. "measuring…, about 40 s") or
    "--" (too few clean beats to say).

    ``maximum`` is the top of the scale; ``definition`` is the caption under the gauge (the plain name, or with
    details the formula). With ``size_hint_y=None`` its height follows the wrapped caption.
    """

    value = ObjectProperty(None, allownone=True)
    maximum = NumericProperty(1.0)
    definition = StringProperty("")
    waiting = StringProperty("")

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._number = Label(font_size=theme.FONT_LARGE, color=theme.TEXT, bold=True, size_hint=(None, None))
        self._caption = Label(font_size=theme.FONT_SMALL, color=theme.TEXT_MUTED, size_hint=(None, None),
                              halign="left", valign="top")
        self.add_widget(self._number)
        self.add_widget(self._caption)
        from kivy.clock import Clock

        # drawn once per frame after the layout settles (its height follows its caption, which moves it again)
        trigger = Clock.create_trigger(self._redraw, -1)
        self.bind(pos=trigger, size=trigger, value=trigger, maximum=trigger, definition=trigger, waiting=trigger)

    @property
    def shown_text(self) -> str:
        return (self.waiting or "--") if self.value is None else f"{self.value:.2f}"

    def _redraw(self, *_):
        self.canvas.before.clear()
        bar_h = theme.GAP * 1.2
        bar_y = self.top - theme.FONT_LARGE * 1.6
        waiting = self.value is None and self.waiting
        self._number.font_size = theme.FONT_SMALL if waiting else theme.FONT_LARGE
        _set_label(self._number, self.shown_text)
        self._number.x, self._number.center_y = self.x, bar_y + bar_h / 2
        left = max(self.x + theme.FONT_LARGE * 3.5, self._number.right + theme.GAP)
        width = max(self.right - left, 1)
        fill = 0.0 if self.value is None else min(max(self.value / self.maximum, 0.0), 1.0)
        with self.canvas.before:
            Color(*theme.GRID)
            RoundedRectangle(pos=(left, bar_y), size=(width, bar_h), radius=[bar_h / 2])
            Color(*theme.INHALE)
            if fill > 0:
                RoundedRectangle(pos=(left, bar_y), size=(max(width * fill, bar_h), bar_h), radius=[bar_h / 2])
        self._caption.text_size = (self.width, None)
        self._caption.text = self.definition
        self._caption.texture_update()
        self._caption.size = self._caption.texture_size
        self._caption.x, self._caption.top = self.x, bar_y - theme.GAP / 2
        needed = theme.FONT_LARGE * 1.6 + theme.GAP / 2 + self._caption.height
        if self.size_hint_y is None and abs(self.height - needed) > 1:
            self.height = needed


def is_figure(text: str) -> bool:
    """A number or "--" (shown large), not a word such as "measuring…" or "unsure" (shown in body type)."""
    return text.replace(".", "", 1).isdigit() or text == "--"


class Stat(BoxLayout):
    """A big number with a caption beneath: "62" / "heart rate, beats/min". A value that is not a number yet
    ("measuring…") is shown in body type, with ``note`` (e.g. "about 20 s") under the caption."""

    value = StringProperty("--")
    caption = StringProperty("")
    note = StringProperty("")
    HEIGHT = theme.FONT_NUMBER * 1.25 + theme.FONT_SMALL * 2.8

    def __init__(self, caption: str, *, colour=theme.TEXT, **kwargs) -> None:
        super().__init__(orientation="vertical", size_hint_y=None, height=self.HEIGHT, **kwargs)
        self._value = Label(font_size=theme.FONT_NUMBER, color=colour, bold=True, size_hint_y=None,
                            height=theme.FONT_NUMBER * 1.25)
        self._caption = Label(font_size=theme.FONT_SMALL, color=theme.TEXT_MUTED, size_hint_y=None,
                              height=theme.FONT_SMALL * 2.8, halign="center", valign="top")
        self._caption.bind(size=lambda w, s: setattr(w, "text_size", s))
        self.add_widget(self._value)
        self.add_widget(self._caption)
        self.bind(value=self._show, caption=self._show, note=self._show)
        self.caption = caption
        self._show()

    def _show(self, *_):
        self._value.font_size = theme.FONT_NUMBER if is_figure(self.value) else theme.FONT_BODY
        self._value.text = self.value
        self._caption.text = self.caption + (f"\n{self.note}" if self.note else "")


class Header(BoxLayout):
    """A screen's title row: an optional back button and the title in large type."""

    def __init__(self, title: str, *, on_back=None, action=None, **kwargs) -> None:
        """``action``: a widget at the right end (e.g. a Details button)."""
        super().__init__(orientation="horizontal", size_hint_y=None, height=theme.BUTTON_HEIGHT,
                         spacing=theme.GAP, **kwargs)
        if on_back is not None:
            back = CalmButton("< Back", size_hint_x=None, width=theme.BUTTON_HEIGHT * 1.45)
            back.bind(on_release=lambda *_: on_back())
            self.add_widget(back)
        self.title = Label(text=title, font_size=theme.FONT_TITLE, color=theme.TEXT, bold=True, halign="left",
                           valign="middle", shorten=True, shorten_from="right")
        self.title.bind(size=lambda w, s: setattr(w, "text_size", s))
        self.add_widget(self.title)
        if action is not None:
            self.add_widget(action)


def scrolling_column(**kwargs):
    """A vertical stack inside a ScrollView; returns (scroll_view, column). Add children to the column."""
    from kivy.uix.scrollview import ScrollView

    kwargs.setdefault("padding", (0, 0, theme.GAP, 0))  # the scroll bar draws over the right edge: keep it clear
    column = BoxLayout(orientation="vertical", size_hint_y=None, spacing=theme.GAP, **kwargs)
    column.bind(minimum_height=column.setter("height"))
    view = ScrollView(do_scroll_x=False, bar_width=theme.GAP / 2)
    view.add_widget(column)
    return view, column
