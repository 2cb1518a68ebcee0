"""Peak-demand alert rules (pure): levels, one alert per level per window, hysteresis,
escalation and an all-clear, with a text that tells a shift supervisor what to do."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from plantems.analytics.notify.base import Alert

__all__ = ["DemandAlerter", "DemandReading", "Level"]

_NS_PER_MIN = 60 * 1_000_000_000
_WINDOW_NS = 15 * _NS_PER_MIN
_LEVEL_ZH = {"warning": "预警", "critical": "超限", "clear": "解除"}  # other level names stay as configured


@dataclass(frozen=True)
class Level:
    name: str  # "warning", "critical"
    fraction: float  # of the limit, e.g. 0.9


@dataclass(frozen=True)
class DemandReading:
    time_ns: int
    demand_kw: float  # the sliding window ending now
    projected_kw: float  # the highest projection of the windows ending in the next minutes
    minutes_left: int  # until the window that projection is for ends
    shiftable_kw: Sequence[tuple[str, float]] = ()  # shiftable loads running now


@dataclass
class _LevelState:
    armed: bool = True
    raised_ns: int | None = None
    escalated: bool = False
    blocks_alerted: set[int] = field(default_factory=set)


class DemandAlerter:
    """Feed it readings every few seconds; it returns the alerts to send (usually none)."""

    def __init__(self, *, site: str, group: str, limit_kw: float, levels: Sequence[Level],
                 hysteresis: float = 0.03, escalate_after_min: float = 5.0) -> None:
        self.site, self.group, self.limit_kw = site, group, limit_kw
        self.levels = sorted(levels, key=lambda level: level.fraction)
        self.hysteresis, self.escalate_after_ns = hysteresis, int(escalate_after_min * _NS_PER_MIN)
        self.state = {level.name: _LevelState() for level in self.levels}
        self._rank = {level.name: rank for rank, level in enumerate(self.levels)}
        self._alerted_since_clear = False

    def restore(self, level: str, time_ns: int) -> None:
        """Take an alert sent before a restart as this process's own: no repeat in its window."""
        state = self.state.get(level)
        if state is None:
            return  # an escalation, an all-clear, or a level no longer configured
        state.armed, state.raised_ns = False, time_ns
        state.blocks_alerted.add(time_ns // _WINDOW_NS)
        self._alerted_since_clear = True

    def update(self, reading: DemandReading) -> list[Alert]:
        metric = max(reading.demand_kw, reading.projected_kw)
        block = reading.time_ns // _WINDOW_NS  # one alert per level per 15-minute block
        alerts = []
        highest_above = max((lv.name for lv in self.levels if metric >= lv.fraction * self.limit_kw),
                            key=lambda name: self._rank[name], default=None)
        for level in self.levels:
            state = self.state[level.name]
            above = metric >= level.fraction * self.limit_kw
            if not above and metric < (level.fraction - self.hysteresis) * self.limit_kw:
                state.armed, state.raised_ns, state.escalated = True, None, False
            if above and state.armed and block not in state.blocks_alerted:
                state.armed, state.raised_ns = False, reading.time_ns
                state.blocks_alerted.add(block)
                alerts.append(self._alert(level.name, reading, metric))
            elif (level.name == highest_above and state.raised_ns is not None and not state.escalated
                  and reading.time_ns - state.raised_ns >= self.escalate_after_ns):
                # only the highest level held escalates: one reminder, not one per level
                state.escalated = True
                alerts.append(self._alert(f"{level.name}-escalated", reading, metric))
        lowest = self.levels[0].fraction
        if alerts:
            self._alerted_since_clear = True
        elif self._alerted_since_clear and metric < (lowest - self.hysteresis) * self.limit_kw:
            self._alerted_since_clear = False
            alerts.append(self._alert("clear", reading, metric))
        return alerts

    def _alert(self, level: str, reading: DemandReading, metric: float) -> Alert:
        """English first, then the same in Chinese for the shift (the title keeps a short Chinese tag)."""
        base = level.removesuffix("-escalated")
        tag = _LEVEL_ZH.get(base, base) + ("（持续）" if level.endswith("-escalated") else "")
        if level == "clear":
            title = (f"Demand back to {reading.demand_kw:,.0f} kW (limit {self.limit_kw:,.0f} kW): all clear"
                     f" · 需量{tag}")
            text = (f"{self.group}: the 15-minute demand is below {self.levels[0].fraction:.0%} of the limit again.\n"
                    f"{self.group}：15分钟需量已回落到限值的{self.levels[0].fraction:.0%}以下。")
        else:
            title = (f"Demand {level}: {metric:,.0f} kW projected against a limit of {self.limit_kw:,.0f} kW, "
                     f"{reading.minutes_left} min left in the window · 需量{tag}")
            loads = sorted(reading.shiftable_kw, key=lambda item: -item[1])
            listed = ", ".join(f"{device} {kw:,.0f} kW" for device, kw in loads)
            if loads:
                advice = (f"Shiftable loads running now, largest first: {listed}\n"
                          f"可转移负荷（运行中，按功率从大到小）：{listed}")
            else:
                advice = ("No shiftable load is running: hold starts of large loads until the window ends.\n"
                          "当前无可转移负荷运行：本需量窗口结束前请暂缓启动大负荷。")
            text = (f"{self.group}: demand now {reading.demand_kw:,.0f} kW, projected {reading.projected_kw:,.0f} kW "
                    f"at the end of the window ({reading.minutes_left} min).\n"
                    f"{self.group}：当前需量 {reading.demand_kw:,.0f} kW，预计窗口结束时 {reading.projected_kw:,.0f} kW"
                    f"（限值 {self.limit_kw:,.0f} kW，剩余 {reading.minutes_left} 分钟）。\n{advice}")
        return Alert(site=self.site, rule="demand", level=level, title=title, text=text, value=metric,
                     threshold=self.limit_kw, time_ns=reading.time_ns, group=self.group)
