"""Demand alert rules: one per level per window, hysteresis, escalation, all-clear, useful text."""

from plantems.analytics.alerts import DemandAlerter, DemandReading, Level

T0 = 1_795_000_500 * 10**9  # the start of a 15-minute block (1_795_000_500 = 1_994_445 x 900)
S = 10**9


def alerter(**kw):
    return DemandAlerter(site="cs", group="incomers", limit_kw=10_000, levels=[Level("critical", 1.0),
                                                                               Level("warning", 0.9)], **kw)


def reading(t_s, demand, projected=None, shiftable=()):
    return DemandReading(T0 + int(t_s * S), demand, projected if projected is not None else demand, 4, shiftable)


def levels(alerts):
    return [a.level for a in alerts]


def test_levels_fire_once_per_window_and_clear_with_hysteresis():
    a = alerter(hysteresis=0.03)
    assert levels(a.update(reading(0, 8000))) == []
    assert levels(a.update(reading(5, 9100))) == ["warning"]
    assert levels(a.update(reading(10, 9200))) == []  # same level, same window: no repeat
    assert levels(a.update(reading(15, 8900))) == []  # below 90 % but inside the hysteresis band
    assert levels(a.update(reading(20, 9150))) == []  # not re-armed, so no repeat
    assert levels(a.update(reading(25, 10_100))) == ["critical"]
    assert levels(a.update(reading(30, 8500))) == ["clear"]  # under 87 %: all clear
    assert levels(a.update(reading(35, 9100))) == []  # re-armed, but this window already had a warning
    assert levels(a.update(reading(35 + 900, 9100))) == ["warning"]  # next window


def test_projection_alerts_before_the_limit_is_broken():
    a = alerter()
    alerts = a.update(reading(0, 8000, projected=10_300, shiftable=[("comp-1", 240.0), ("mill-2", 2400.0)]))
    assert levels(alerts) == ["warning", "critical"]
    critical = alerts[1]
    assert "10,300 kW projected against a limit of 10,000 kW, 4 min left" in critical.title
    assert "largest first: mill-2 2,400 kW, comp-1 240 kW" in critical.text
    # and in Chinese for the shift
    assert critical.title.endswith("需量超限") and alerts[0].title.endswith("需量预警")
    assert "可转移负荷（运行中，按功率从大到小）：mill-2 2,400 kW, comp-1 240 kW" in critical.text
    assert "剩余 4 分钟" in critical.text


def test_escalation_when_still_above_after_n_minutes():
    a = alerter(escalate_after_min=5)
    assert levels(a.update(reading(0, 10_200))) == ["warning", "critical"]
    assert levels(a.update(reading(240, 10_200))) == []
    assert levels(a.update(reading(300, 10_200))) == ["critical-escalated"]  # the highest level held only
    assert levels(a.update(reading(360, 10_200))) == []  # escalates once


def test_no_shiftable_load_says_so():
    (alert,) = alerter().update(reading(0, 9500))
    assert "No shiftable load is running" in alert.text


def test_restored_alerts_are_not_repeated_after_a_restart():
    a = alerter()
    a.restore("warning", T0 + 60 * S)  # sent by the previous process, this window
    a.restore("warning-escalated", T0)  # not a level: ignored
    assert levels(a.update(reading(120, 9500))) == []
    assert levels(a.update(reading(180, 10_100))) == ["critical"]
    assert levels(a.update(reading(240, 8000))) == ["clear"]
