"""Server-rendered SVG charts: geometry computed here, markup in templates.

No script runs in the browser (a content security policy forbids inline scripts, and
none is needed): the template draws polylines and rectangles from the coordinates
below, and the stylesheet colours them with the admin's CSS variables, so light and
dark themes both work. Every chart also carries its numbers as a table.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.formats import get_format
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language, gettext, pgettext

WIDTH = 720
HEIGHT = 220
LEFT = 70  # room for y labels
RIGHT = 12
TOP = 12
BOTTOM = 28  # room for x labels
MAX_POINTS = 240


@dataclass(frozen=True)
class Series:
    name: str
    points: tuple[tuple[dt.datetime, float], ...]


@dataclass(frozen=True)
class Line:
    name: str
    css: str
    points: str  # "x,y x,y ..." for <polyline points>
    last_label: str


@dataclass(frozen=True)
class Tick:
    pos: float
    label: str
    anchor: str = "middle"  # SVG text-anchor: the outer labels stay inside the chart


@dataclass(frozen=True)
class LineChart:
    title: str
    lines: tuple[Line, ...]
    y_ticks: tuple[Tick, ...]
    x_ticks: tuple[Tick, ...]
    table: tuple[tuple[str, ...], ...]  # header row first
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right_edge: int = WIDTH - RIGHT
    top: int = TOP
    bottom_edge: int = HEIGHT - BOTTOM

    @property
    def empty(self) -> bool:
        return not self.lines

    @functools.cached_property
    def table_body(self) -> SafeString:
        """The data table's rows as ``<tr><td>`` markup, every cell escaped.

        Built here rather than by two nested template loops: a dashboard shows three
        tables of fifty rows, and the template engine spent 4 ms a view on them.
        """
        return mark_safe(  # noqa: S308 -- every cell is escaped just below
            "".join(
                "<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>"
                for row in self.table[1:]
            )
        )


def _nice_step(span: float, count: int = 4) -> float:
    raw = span / count if span > 0 else 1.0
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude


def _downsample(points: Sequence[tuple[dt.datetime, float]]) -> list[tuple[dt.datetime, float]]:
    if len(points) <= MAX_POINTS:
        return list(points)
    stride = math.ceil(len(points) / MAX_POINTS)
    kept = list(points[::stride])
    if kept[-1] != points[-1]:
        kept.append(points[-1])
    return kept


def _time_label(moment: dt.datetime, span: dt.timedelta) -> str:
    moment = timezone.localtime(moment) if timezone.is_aware(moment) else moment
    if span <= dt.timedelta(hours=20):
        return date_format(moment, "H:i")
    if span <= dt.timedelta(days=4):
        # Weekday and month names in the active language (strftime's are the C locale's).
        return date_format(moment, "D H:i")
    # Translators: a chart axis date, in the format of Django's date filter.
    return date_format(moment, pgettext("chart axis date", "M d"))


@functools.lru_cache(maxsize=4096)
def _table_time(moment: dt.datetime, pattern: str, zone: dt.tzinfo, language: str) -> str:
    """A data table's time, in the reader's zone, format and language (all in the key).

    Cached: Django formats a date in about 70 µs, a dashboard view shows the same 150
    hours for an hour and a diagnostics page the same snapshots until the next one.
    """
    if timezone.is_aware(moment):
        moment = moment.astimezone(zone)
    return date_format(moment, pattern)


def line_chart(title: str, series: Sequence[Series], fmt: Callable[[float], str]) -> LineChart:
    """Lines over time on one y axis starting at zero."""
    series = [s for s in series if s.points]
    header = (gettext("time"), *[s.name for s in series])
    if not series:
        return LineChart(title, (), (), (), (header,))
    all_points = [p for s in series for p in s.points]
    t0 = min(p[0] for p in all_points)
    t1 = max(p[0] for p in all_points)
    span = t1 - t0
    seconds = span.total_seconds() or 1.0
    top_value = max(p[1] for p in all_points)
    step = _nice_step(top_value)
    y_max = step * max(1, math.ceil(top_value / step)) if top_value > 0 else 1.0
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM

    def x(moment: dt.datetime) -> float:
        if span.total_seconds() == 0:
            return LEFT + plot_w / 2
        return LEFT + (moment - t0).total_seconds() / seconds * plot_w

    def y(value: float) -> float:
        return TOP + plot_h - value / y_max * plot_h

    lines = []
    for index, s in enumerate(series):
        pts = _downsample(s.points)
        lines.append(
            Line(
                name=s.name,
                css=f"s{index % 6}",
                points=" ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in pts),
                last_label=fmt(s.points[-1][1]),
            )
        )
    y_ticks = []
    value = 0.0
    while value <= y_max + step / 2:
        y_ticks.append(Tick(round(y(value), 1), fmt(value)))
        value += step
    x_ticks = []
    if span.total_seconds() == 0:
        x_ticks.append(Tick(round(x(t0), 1), _time_label(t0, span)))
    else:
        for i in range(5):
            moment = t0 + span * (i / 4)
            anchor = "start" if i == 0 else "end" if i == 4 else "middle"
            x_ticks.append(Tick(round(x(moment), 1), _time_label(moment, span), anchor))
    # The table lists the series side by side at each captured time (last 50 rows).
    times = sorted({p[0] for p in all_points})[-50:]
    lookup = [{t: v for t, v in s.points} for s in series]
    pattern = str(get_format("SHORT_DATETIME_FORMAT"))
    zone = timezone.get_current_timezone()
    language = get_language()
    rows = [
        (
            _table_time(t, pattern, zone, language),
            *[fmt(m[t]) if t in m else "" for m in lookup],
        )
        for t in times
    ]
    return LineChart(title, tuple(lines), tuple(y_ticks), tuple(x_ticks), (header, *rows))


@dataclass(frozen=True)
class Bar:
    label: str
    value_label: str
    y: float
    width: float
    text_y: float
    href: str | None = None


@dataclass(frozen=True)
class BarChart:
    title: str
    bars: tuple[Bar, ...]
    width: int
    height: int
    label_width: int
    bar_height: int

    @property
    def empty(self) -> bool:
        return not self.bars


def bar_chart(
    title: str, items: Sequence[tuple[str, float]], fmt: Callable[[float], str]
) -> BarChart:
    """Horizontal bars, largest first; labels are shortened to fit."""
    label_width, bar_height, gap, value_room = 300, 18, 6, 90
    width = WIDTH
    items = sorted(items, key=lambda item: item[1], reverse=True)
    top_value = max((v for _, v in items), default=0) or 1.0
    plot_w = width - label_width - value_room
    bars = []
    for i, (label, value) in enumerate(items):
        y = TOP + i * (bar_height + gap)
        short = " ".join(label.split())
        if len(short) > 42:
            short = short[:41] + "…"
        bars.append(
            Bar(
                label=short,
                value_label=fmt(value),
                y=y,
                width=max(value / top_value * plot_w, 1.0),
                text_y=y + bar_height - 5,
            )
        )
    height = TOP * 2 + len(items) * (bar_height + gap)
    return BarChart(title, tuple(bars), width, height, label_width, bar_height)
